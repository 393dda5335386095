#!/usr/bin/env bash
# One-command GPU check (see gpu_check.py): prints one table in at most ~8 minutes on one GPU.
#   bash analysis/benchmarks/gpu_check.sh          # CUDA
#   bash analysis/benchmarks/gpu_check.sh --cpu    # reduced mode on CPU (run by the test suite)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
cd "$ROOT"
exec timeout 480 "$PY" -m analysis.benchmarks.gpu_check "$@"
