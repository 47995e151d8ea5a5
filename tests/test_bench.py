"""The benchmark scripts run end to end in their quick modes (tiny sizes; no timing is asserted)."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def test_speed_quick_writes_every_section(tmp_path):
    from bench.speed import main
    assert main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "speed.md").read_text()
    for heading in ("## What the numbers say", "## Peak", "## Sampling", "## Training", "## App", "## Time to a classroom grid",
                    "## OpenMP wait policy", "## Profiles (ours)"):
        assert heading in text
    assert re.search(r"fp32 matrix multiply, n = 256: \*\*\d+ GFLOP/s\*\*", text)
    # ours and the diffusers peer, each at both batch sizes, with the ratio on our rows
    assert len(re.findall(r"^\| ours \| \d+ \| DDIM-5 \|.*\*\*[\d.]+x\*\* \|$", text, re.M)) == 1
    assert len(re.findall(r"^\| diffusers \| \d+ \|", text, re.M)) == 2
    for loop in ("ours (Trainer", "plain eager loop", "diffusers peer in the same plain loop"):
        assert re.search(rf"^\| {re.escape(loop)}.*\| [\d.]+x \|.*\| \d+ MB \|$", text, re.M), loop


def test_speed_findings_are_computed_from_the_numbers():
    """The verdicts in speed.md's summary: shares of the peak from GFLOP per call and milliseconds, with the
    wait-policy table's idle spin-wait time beside the served (passive) one."""
    from bench.speed import SHORT_SPIN, WAIT_POLICIES, findings
    passive, spin = list(WAIT_POLICIES)[:2]
    r = {"peak": 140.0,
         "sampling": [{"who": "ours", "batch": 16, "sampler": "DDIM-50", "peak_share": 0.28, "vs_peer": 1.07,
                       "gflop": 7.0},
                      {"who": "ours", "batch": 1, "sampler": "DDIM-50", "peak_share": 0.10, "vs_peer": 1.17,
                       "gflop": 0.44}],
         "profile": {"Network call, batch 1": {"ops_share": 0.8}},
         "training": {"img_s": {"ours": 60.0, "plain": 50.0, "diffusers": 40.0},
                      "gflop_per_image": {"plain": 1.4}},
         "grid": [{"network": "fashion_v_cosine", "sampler": "dpm-solver++-5", "guidance": 1.0, "calls": 5,
                   "wall": 0.7, "quality": {"cfid": 6.15, "floor": 0.909, "accuracy": 0.808}, "met": False},
                  {"network": "fashion_v_cosine", "sampler": "ddim-50-eta1", "guidance": 1.0, "calls": 50,
                   "wall": 7.0, "quality": None, "met": None}],
         "omp": {(passive, False): {"1": 50.0, "16": 250.0}, (spin, False): {"1": 16.0, "16": 100.0},
                 (passive, True): {"1": 20.0, "16": 200.0}, (spin, True): {"1": 40.0, "16": 400.0},
                 (SHORT_SPIN, False): {"1": 17.0, "16": 82.0}, (SHORT_SPIN, True): {"1": 44.0, "16": 196.0}}}
    lines = findings(r)
    assert lines[0].startswith("- Efficiency at batch 16 (DDIM-50): 28% of the matmul peak (goal 85%): **missed**")
    assert "one call takes 100 ms on an idle machine, 50% of the peak" in lines[0]  # 7 GFLOP / 0.1 s / 140
    batch1 = lines.pop(1)
    assert "10% of the matmul peak (goal 60%): **missed**; 1.17x the diffusers peer's speed (goal 1.5x: **missed**: " \
        "Python and dispatch are 20% of our batch-1 call, so without any we would be at most 1.25x" in batch1
    assert "ours 1.20x the plain eager loop" in lines[1] and "runs at 50% of the matmul peak" in lines[1]
    assert "(goal: 0.5 s and the quality targets: **missed**): fastest dpm-solver++-5 of fashion_v_cosine in " \
        "0.70 s (cFID 6.77x the floor, class accuracy 80.8%); no measured setting meets" in lines[2]
    assert "allows 3.6 calls" in lines[2]
    assert "takes 3.1x the time of libgomp's default" in lines[3] and "(2.5x at batch 16)" in lines[3]
    assert "the default takes 2.0x passive's (2.0x at 16)" in lines[3]
    assert "17 ms per batch-1 call idle (passive 50 ms) but 2.2x passive's time beside one busy process (1.0x at " \
        "batch 16)" in lines[4]


def test_speed_classroom_grid_verdict_needs_time_and_quality():
    """Met only where one setting is both within 0.5 s and within issue 7's quality targets."""
    from bench.speed import grid_finding, quality_met
    good = {"cfid": 1.2, "floor": 1.0, "accuracy": 0.96}
    assert quality_met(good, 1.0) and not quality_met(good, 3.0)  # w = 3 asks 99 % of the classes
    assert not quality_met({**good, "cfid": 1.6}, 1.0) and quality_met(None, 1.0) is None
    row = {"network": "lean", "sampler": "ddim-20-eta1", "guidance": 1.0, "calls": 20, "quality": good, "met": True}
    assert "**met**" in grid_finding([{**row, "wall": 0.4}])
    slow = grid_finding([{**row, "wall": 0.8}, {**row, "sampler": "dpm-solver++-5", "wall": 0.3, "met": False}])
    assert "**missed**" in slow and "meets the quality targets: ddim-20-eta1 of lean in 0.80 s" in slow


def test_product_does_not_import_diffusers():
    """diffusers is a benchmark-only dependency (requirements-bench.txt)."""
    sources = [p for p in (ROOT / "explorer").rglob("*.py")] + [ROOT / "app.py", ROOT / "train.py"]
    assert sources and not [p for p in sources if re.search(r"^\s*(from|import) diffusers", p.read_text(), re.M)]
    assert "diffusers" not in (ROOT / "requirements.txt").read_text()


def run_script(script: str, *args: str) -> str:
    """A benchmark run as a user runs it (its own process: the view benches launch the app)."""
    import subprocess
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_forward_view_bench_quick():
    out = run_script("forward_view.py", "--repeats", "4")
    assert re.search(r"\| 28x28 gallery image \| 30 ms \| \*\*[\d.]+ ms\*\* \|", out)
    assert "- command: `python bench/forward_view.py --repeats 4`" in out


def test_reverse_view_bench_quick():
    out = run_script("reverse_view.py", "--quick", "--policies")
    assert "# Reverse view: first frame and a DDIM-4 run of 2 images" in out
    assert re.search(r"^\| median \|.*\| \*\*[\d.]+\*\* \|", out, re.M)  # the wall / network-calls ratios
    assert "through gradio_client (submit to x_T received" in out
    # the served comparison of OpenMP waiting: one row per policy, from children that ran under it
    assert re.search(r"^\| PASSIVE \(the app's and train.py's\) \| [\d.]+ s \|.* ms \|$", out, re.M)
    assert re.search(r"^\| spin 300000 times, then sleep \(libgomp's default\) \| [\d.]+ s \|.* ms \|$", out, re.M)


def test_toy_lab_bench_quick():
    out = run_script("toy_lab.py", "--quick")
    assert "## Live training: two moons" in out and re.search(r"^\| median \|", out, re.M)


def test_toy_checkpoints_bench_small():
    out = run_script("toy_checkpoints.py", "--n", "100", "--seeds", "1")
    assert len(re.findall(r"^\| `toy_[a-z0-9-]+_(eps|x0|v)\.safetensors` \| \d+ \|", out, re.M)) == 15
    assert "--n 100 --seeds 1" in out
