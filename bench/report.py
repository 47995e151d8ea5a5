"""What the benchmarks share: a report's "Conditions" lines (date, machine and its load, threads, versions,
command), how it is published (printed, and written to bench/results/ on request; the view benches end theirs with
the Conditions section, publish_with_conditions), and the OpenMP wait policies
that speed.py and reverse_view.py compare by running themselves in fresh processes (run_under).

It imports torch: a benchmark calls explorer.threads.configure_threads before importing it.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from explorer.training import pick_device

ROOT = Path(__file__).resolve().parents[1]

# OpenMP wait policies to compare, as environments for fresh processes. libgomp (torch's OpenMP on Linux) spins
# GOMP_SPINCOUNT times before sleeping: 0 when PASSIVE, 300000 by default (no OMP_WAIT_POLICY), "forever" when
# ACTIVE. GOMP_SPINCOUNT overrides the policy, so the default's entry sets it: a child importing
# explorer.app.runtime would otherwise be PASSIVE.
SHORT_SPIN = "spin 3000 times, then sleep (a short spin)"  # a candidate middle ground between the first two
WAIT_POLICIES = {"PASSIVE (the app's)": {"OMP_WAIT_POLICY": "PASSIVE"},
                 "spin 300000 times, then sleep (libgomp's default)": {"GOMP_SPINCOUNT": "300000"},
                 "ACTIVE (spin)": {"OMP_WAIT_POLICY": "ACTIVE"},
                 SHORT_SPIN: {"GOMP_SPINCOUNT": "3000"}}


def run_under(policy: dict[str, str], module: str, *args: str):
    """Run `python -m module args` from the repository root in a fresh process whose OpenMP wait settings are
    `policy` (one of WAIT_POLICIES, replacing this process's) and return the JSON its last line of output prints."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=True,
                         env={**env, **policy}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def conditions(script: str, argv: list[str], load_before: float, extra: str = "") -> list[str]:
    """Markdown bullet lines: when, where (with the load average around the run), with what, and how to rerun."""
    import numpy

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_name()}, {os.cpu_count()} CPUs visible, {affinity} in the affinity mask; load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run (1 min; other processes share the "
        "CPUs when it is above 0)",
        f"- torch {torch.__version__} with {torch.get_num_threads()} threads (set by explorer.threads, "
        f"CPU_CORES={os.environ.get('CPU_CORES', 'unset')}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        f"{', GOMP_SPINCOUNT=' + os.environ['GOMP_SPINCOUNT'] if 'GOMP_SPINCOUNT' in os.environ else ''}, "
        f"device: {pick_device().type}; numpy {numpy.__version__}, gradio {importlib.metadata.version('gradio')}, "
        f"Python {platform.python_version()}{extra}",
        f"- command: `{' '.join(['python', '-m', script.removesuffix('.py').replace('/', '.'), *argv])}`",
    ]


# Benchmarks write numbers; what they mean is written by a person above this line, and a rerun keeps it.
MARKER = "<!-- Written by hand above this line; everything below is the benchmark's output, replaced on each run. -->"


def publish(report: str, path: Path | None) -> str:
    """Print the report and, when `path` is given, write it there below MARKER, keeping the hand-written text
    above the marker of an existing file (folders created); returns the report."""
    sys.stdout.write(report + "\n")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text() if path.is_file() else ""
        head = old.split(MARKER)[0] if MARKER in old else ""
        path.write_text(f"{head}{MARKER}\n\n{report}\n")
    return report


def publish_with_conditions(lines: list[str], script: str, argv: list[str], load_before: float,
                            path: Path | None) -> str:
    """`lines`, then a "## Conditions" section (`conditions` of `script` run with `argv`), joined and published
    (`publish`: printed, and written to `path` when given); returns the report."""
    return publish("\n".join([*lines, "## Conditions", "", *conditions(script, argv, load_before)]), path)
