"""CPU threads and OpenMP waiting for one process, set once and explicitly by whoever starts it (app.py through
explorer.app, train.py, the benchmarks), before torch loads: `configure_threads(wait)`.

- wait="passive" (the app): idle OpenMP threads sleep at once (OMP_WAIT_POLICY=PASSIVE). A served app shares the
  CPUs with its own web server and frame encoding, which spinning threads would hold; bench/results/speed.md
  and reverse_view.md measure both policies.
- wait="spin" (a lone trainer or benchmark): libgomp's default, spinning a while before sleeping, which is faster
  when nothing else wants the cores (speed.md). Set OMP_WAIT_POLICY=PASSIVE yourself when training beside other work.
An OMP_WAIT_POLICY or GOMP_SPINCOUNT already in the environment wins over `wait`.
- torch's intra-op threads: `CPU_CORES` if set, else the CPU quota (cgroup v2 `cpu.max` or v1 CFS quota) rounded
  up, else the CPU affinity.
This module imports torch only inside `configure_threads`, after the environment is set.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

WAITS = ("passive", "spin")


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None if unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cpu_threads() -> int:
    """Threads for torch: `CPU_CORES`, else min(CPU affinity, quota rounded up), at least 1."""
    if os.environ.get("CPU_CORES"):
        return max(1, int(os.environ["CPU_CORES"]))
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota()
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def configure_threads(wait: str = "passive") -> int:
    """Set the OpenMP wait policy (only while torch is not loaded yet: libgomp reads it when it loads) and
    torch's intra-op thread count; returns that count."""
    if wait not in WAITS:
        raise ValueError(f"unknown wait {wait!r}; allowed: {', '.join(WAITS)}")
    if "torch" not in sys.modules and wait == "passive" and "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    threads = cpu_threads()
    torch.set_num_threads(threads)
    return threads
