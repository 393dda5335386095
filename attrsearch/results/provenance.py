"""What a sweep's answer depends on, for ``best.yaml``'s header and the report: package versions (and
attrsearch's git commit when it runs from a checkout), the sampler, the scheduler and the seeds.

The lines are YAML comments, so ``attrsearch train best.yaml`` reads the same experiment; the report
reads them back with ``read_block``.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("attrsearch", "torch", "ray", "optuna", "wandb")
PREFIX = "# Reproducibility: "


def git_commit() -> str | None:
    """The short commit of the attrsearch checkout this code runs from (None outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
        return run.stdout.strip()

    try:
        out = git("rev-parse", "--short=10", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{out}{'+modified' if dirty else ''}" if out else None


def versions() -> dict[str, str]:
    """Installed versions of ``PACKAGES`` ("not installed" for a missing one); attrsearch with its commit."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    commit = git_commit()
    if commit:
        out["attrsearch"] += f" (git {commit})"
    return out


def settings(mapping: dict[str, Any]) -> str:
    """``{"name": "asha", "grace_period": 1}`` -> ``asha (grace_period=1)``; unset entries left out."""
    rest = ", ".join(f"{k}={v}" for k, v in mapping.items() if k != "name" and v is not None)
    name = str(mapping.get("name", "?"))
    return f"{name} ({rest})" if rest else name


def block(search_alg: dict[str, Any], scheduler: dict[str, Any], seeds: list[int] | None) -> dict[str, str]:
    """The reproducibility facts of a sweep run now: versions, sampler, scheduler, seeds."""
    return {
        "versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
        "search_alg": settings(search_alg),
        "scheduler": settings(scheduler),
        "seeds": str(list(seeds)) if seeds else "none (one run per trial, the base's seed)",
    }


def comment_lines(facts: dict[str, str]) -> str:
    """``facts`` as ``best.yaml`` comment lines (``read_block`` reads them back)."""
    return "".join(f"{PREFIX}{k}: {v}\n" for k, v in facts.items())


def read_block(text: str) -> dict[str, str]:
    """The facts ``comment_lines`` wrote into a file's text ({} when absent)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(PREFIX) and ": " in line[len(PREFIX) :]:
            key, _, value = line[len(PREFIX) :].partition(": ")
            out[key] = value
    return out
