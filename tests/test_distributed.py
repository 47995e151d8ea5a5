"""train.py as users launch it, in fresh processes: data parallel under torchrun (gloo, 2 processes on loopback)
equals one process step for step, resumes exactly on any number of processes, and a run killed with SIGKILL
resumes from its last checkpoint to the same weights as an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
# a toy run whose learning rate does not depend on --steps (no decay), so a run may be extended on resume
TOY = ["--dataset", "two-moons", "--model", "tiny", "--T", "50", "--batch-size", "64", "--warmup", "2",
       "--lr-decay", "none", "--compile", "off", "--sample-every", "0", "--ckpt-every", "3"]
ENV = {**os.environ, "CPU_CORES": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def train(run: Path, *args: str, procs: int = 1) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                if procs > 1 else [sys.executable])
    done = subprocess.run([*launcher, "train.py", *TOY, "--out", str(run / "model.safetensors"),
                           "--run-dir", str(run), *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def state(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "state.safetensors")


def losses(run: Path) -> list[float]:
    return [float(line.split(",")[1]) for line in (run / "log.csv").read_text().splitlines()[1:]]


def assert_same_training(a: Path, b: Path, exact: bool) -> None:
    sa, sb = state(a), state(b)
    weights = [k for k in sa if k.startswith(("net.", "ema.", "opt."))]
    assert weights and sa.keys() == sb.keys()
    for k in weights:
        if exact:
            assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-6, msg=k)
    assert losses(a) == pytest.approx(losses(b), rel=1e-4, abs=1e-6)


def test_two_processes_equal_one_step_for_step_and_resume_on_any_world_size(tmp_path):
    train(tmp_path / "one", "--steps", "6")
    two = train(tmp_path / "two", "--steps", "6", procs=2)
    assert two.stderr.count("done at step 6") == 1  # only rank 0 reports (and writes)
    assert_same_training(tmp_path / "one", tmp_path / "two", exact=False)
    assert len(losses(tmp_path / "two")) == 6

    # an interrupted 2-process run (stopped at step 3) resumes exactly, on 2 processes or on 1
    train(tmp_path / "half", "--steps", "3", procs=2)
    for procs in (2, 1):
        resumed = tmp_path / f"resumed_on_{procs}"
        subprocess.run(["cp", "-r", str(tmp_path / "half"), str(resumed)], check=True)
        train(resumed, "--steps", "6", "--resume", procs=procs)
        assert_same_training(tmp_path / "two", resumed, exact=procs == 2)


def saved_step(run: Path) -> int:
    with safe_open(str(run / "state.safetensors"), framework="pt") as f:
        return int(f.metadata()["step"])


def test_a_killed_run_resumes_from_its_last_checkpoint_to_the_same_weights(tmp_path):
    steps = 2000
    straight = tmp_path / "straight"
    train(straight, "--steps", str(steps))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "train.py", *TOY, "--steps", str(steps), "--out",
                             str(killed / "model.safetensors"), "--run-dir", str(killed)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "state.safetensors").is_file() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # mid-run, somewhere after the first checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    saved = saved_step(killed)
    assert 3 <= saved < steps and saved % 3 == 0  # a checkpoint boundary: at most one interval (3 steps) lost
    train(killed, "--steps", str(steps), "--resume")
    sa, sb = state(straight), state(killed)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # weights, EMA, optimizer moments and RNG states
    assert losses(killed) == losses(straight)
