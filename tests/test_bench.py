"""The benchmark scripts run end to end in their quick modes (tiny sizes; no timing is asserted)."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_speed_quick_writes_every_section(tmp_path):
    from bench.report import MARKER
    from bench.speed import DEVICE, main
    from explorer.checkpoint import native_bf16
    head = "# Speed\n\nWhat the numbers mean, written by a person.\n\n"
    (tmp_path / "speed.md").write_text(f"{head}{MARKER}\n\nlast run's tables\n")
    assert main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "speed.md").read_text()
    assert text.startswith(head + MARKER) and "last run's tables" not in text  # the hand-written part is kept
    for heading in ("## Peak", "## Sampling", "## Training", "## Time to a classroom grid",
                    "## OpenMP wait policy", "## Profiles (ours)"):
        assert heading in text
    assert re.search(r"n = 256, best of 2: fp32 \*\*\d+ GFLOP/s\*\*, bf16 \*\*\d+ GFLOP/s\*\*", text)
    # ours and the diffusers peer, each at both batch sizes, with the ratio on our rows
    assert len(re.findall(r"^\| ours \| \d+ \| DDIM-5 \|.*\| [\d.]+x \|$", text, re.M)) == 1
    assert len(re.findall(r"^\| diffusers \| \d+ \|", text, re.M)) == 2
    # the four training loops, each against the reference, with its share of its precision's peak and its memory
    for loop in ("ours: Trainer.train_step", "reference: minimal loop", "plain eager loop, fp32", "diffusers peer"):
        assert re.search(rf"^\| {re.escape(loop)}.*\| [\d.]+x \|.*\| \d+% of (fp32|bf16) \|.*\| \d+ MB \|$",
                         text, re.M), loop
    assert re.search(r"^\| reference: .*\| 1\.00x \|", text, re.M)
    assert "Training step of ours, batch 8" in text
    # the classroom grid in float32 and, where the app samples in bf16 on this CPU, in bf16 beside it
    precisions = re.findall(r"^\| untrained tiny \([\d.]+ M parameters\) \| (fp32|bf16) \| dpm-solver", text, re.M)
    assert precisions == ["fp32"] * 2 + ["bf16"] * 2 * native_bf16(DEVICE)
    assert "## App" not in text  # the app's latencies are the view benches'


def test_library_benches_do_not_import_the_app():
    for bench in ("speed.py", "quality.py", "toy_checkpoints.py", "report.py"):
        source = (ROOT / "bench" / bench).read_text()
        assert not re.search(r"^\s*(from|import) (gradio|explorer\.app|bench\.(forward|reverse)_view)|"
                             r"^\s*import .*\bgradio\b", source, re.M), bench


def test_product_does_not_import_diffusers():
    """diffusers is a benchmark-only dependency (requirements-bench.txt)."""
    sources = [p for p in (ROOT / "explorer").rglob("*.py")] + [ROOT / "app.py", ROOT / "train.py"]
    assert sources and not [p for p in sources if re.search(r"^\s*(from|import) diffusers", p.read_text(), re.M)]
    assert "diffusers" not in (ROOT / "requirements.txt").read_text()


def run_script(script: str, *args: str) -> str:
    """A benchmark run as a user runs it (its own process: the view benches launch the app)."""
    import subprocess
    done = subprocess.run([sys.executable, "-m", f"bench.{script.removesuffix('.py')}", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_forward_view_bench_quick():
    out = run_script("forward_view.py", "--repeats", "4")
    assert re.search(r"\| 28x28 gallery image \| 30 ms \| \*\*[\d.]+ ms\*\* \|", out)
    assert "- command: `python -m bench.forward_view --repeats 4`" in out


def test_reverse_view_bench_quick():
    out = run_script("reverse_view.py", "--quick", "--policies")
    assert "# Reverse view: first frame and a DDIM-4 run of 2 images" in out
    assert re.search(r"^\| median \|.*\| \*\*[\d.]+\*\* \|", out, re.M)  # the wall / network-calls ratios
    assert "through gradio_client (submit to x_T received" in out
    # the served comparison of OpenMP waiting: one row per policy, from children that ran under it
    assert re.search(r"^\| PASSIVE \(the app's\) \| [\d.]+ s \|.* ms \|$", out, re.M)
    assert re.search(r"^\| spin 300000 times, then sleep \(libgomp's default\) \| [\d.]+ s \|.* ms \|$", out, re.M)


def test_toy_lab_bench_quick():
    out = run_script("toy_lab.py", "--quick")
    assert "## Live training: two moons" in out and re.search(r"^\| median \|", out, re.M)


def test_toy_checkpoints_bench_small():
    out = run_script("toy_checkpoints.py", "--n", "100", "--seeds", "1")
    assert len(re.findall(r"^\| `toy_[a-z0-9-]+_(eps|x0|v)\.safetensors` \| \d+ \|", out, re.M)) == 15
    assert "--n 100 --seeds 1" in out


def test_load_bench_quick():
    out = run_script("load.py", "--quick")
    assert "# Load: 2 users for 15 s against `python app.py`" in out
    for heading in ("## Requests per endpoint", "## Runs per user", "## Server memory", "## Conditions"):
        assert heading in out
    assert ("| endpoint | requests | answered | queue full | other failures | p50 | p95 | first output p50 "
            "| first output p95 |") in out
    rows = re.findall(r"^\| (/\w+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", out, re.M)
    assert [r[0] for r in rows] == ["/forward", "/upload", "/generate", "/stop", "/toy_train", "/toy_stop_training"]
    assert [r[4] for r in rows] == ["0"] * 6, out  # no failure but a full queue's refusal
    users = re.findall(r"^\| (\d) \| \d+ \| (yes|no) \|.* \| (\d+) \|$", out, re.M)
    assert [(walked, failed) for _, walked, failed in users] == [("yes", "0")] * 2, out
    assert "Exceptions in the app's output" not in out, out
    assert re.search(r"start \*\*\d+ MB\*\*.*, peak \*\*\d+ MB\*\*, end \*\*\d+ MB\*\*", out)
    assert "- command: `python -m bench.load --quick`" in out
