"""Page faults and CPU time per Explainer training step, with and without ``keep_freed_memory``.

Each setting runs in its own fresh process (mallopt cannot be undone), side by side in one
invocation, on the same seeded batch:  python analysis/benchmarks/bench_malloc.py [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
from attrsearch.train.runtime import keep_freed_memory
if sys.argv[1] == "on":
    keep_freed_memory()
torch.set_num_threads(1)
from attrsearch.models import create_explainer, create_explanandum
from attrsearch.objectives.wysiwyc import wysiwyc_loss
from attrsearch.config import WysiwycObjective
torch.manual_seed(0)
clf = create_explanandum("small_cnn", 8, image_size=64).eval().requires_grad_(False)
exp = create_explainer("explanandum_encoder", 8, explanandum=clf)
opt = torch.optim.Adam([p for p in exp.parameters() if p.requires_grad], 1e-3)
x, y = torch.randn(32, 3, 64, 64), (torch.rand(32, 8) < 0.3).float()
cfg = WysiwycObjective()
def step():
    out = wysiwyc_loss(clf, x, y, exp(x), cfg)
    opt.zero_grad(); out.loss.backward(); opt.step()
for _ in range(3):
    step()
steps = int(sys.argv[2])
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
for _ in range(steps):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
print(json.dumps({"faults": (r1.ru_minflt - r0.ru_minflt) / steps, "cpu_ms": 1000 * (t1 - t0) / steps,
                  "sys_ms": 1000 * (r1.ru_stime - r0.ru_stime) / steps}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rows = {}
    for setting in ("off", "on"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, setting, str(args.steps)], capture_output=True, text=True, check=True
        )
        rows[setting] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'keep_freed_memory':18s} {'faults/step':>12s} {'CPU ms/step':>12s} {'kernel ms/step':>15s}")
    for setting, r in rows.items():
        print(f"{setting:18s} {r['faults']:12.0f} {r['cpu_ms']:12.1f} {r['sys_ms']:15.1f}")
    print(f"CPU time ratio off/on: {rows['off']['cpu_ms'] / rows['on']['cpu_ms']:.2f}x")


if __name__ == "__main__":
    main()
