"""Training throughput: our trainer's step (torch.compile, channels_last, EMA, clipping) against a plain eager
loop on the same network, batch and data, interleaved in one process so machine noise hits both alike.

    python bench/training_speed.py                      # default model, writes bench/results/training_speed.md
    python bench/training_speed.py --quick --out-dir /tmp/x   # tiny sizes, seconds (used by the tests)

The plain loop is what a tutorial writes: eager, contiguous memory, AdamW, the same loss and label dropout.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.losses import diffusion_loss  # noqa: E402
from explorer.training import TrainConfig, Trainer  # noqa: E402


def make_trainer(model: str, batch: int, compile_mode: str, out_dir: Path) -> Trainer:
    config = TrainConfig(dataset="fashion-mnist", model=model, batch_size=batch, compile=compile_mode,
                         sample_every=0, out=str(out_dir / f"bench_{compile_mode}.safetensors"),
                         run_dir=str(out_dir / f"bench_{compile_mode}"))
    return Trainer(config, force=True)


def plain_step_fn(trainer: Trainer):
    """A plain eager loop on a fresh copy of the same network and data."""
    net = type(trainer.ema)(trainer.ema.config).train()  # same architecture, eager, contiguous
    opt = torch.optim.AdamW(net.parameters(), lr=trainer.config.lr)
    c, images, labels = trainer.config, trainer.images, trainer.labels
    g = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(len(images), (c.batch_size,), generator=g)
        x0, y = images[idx], labels[idx]
        y = torch.where(torch.rand(c.batch_size, generator=g) < c.p_uncond, net.null_label, y)
        loss = diffusion_loss(lambda x, t, yy: net(x, t / c.T, yy), trainer.schedule, x0, c.objective, y,
                              c.min_snr_gamma, g)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def measure(model: str, batch: int, rounds: int, steps_per_round: int, out_dir: Path, compile_mode: str) -> dict:
    ours = make_trainer(model, batch, compile_mode, out_dir)
    plain = plain_step_fn(ours)
    build = time.perf_counter()
    ours.train_step_with_fallback()  # torch.compile builds here
    compile_s = time.perf_counter() - build
    plain()
    times = {"ours": [], "plain": []}
    for _ in range(rounds):  # interleaved: A B A B ...
        times["ours"].append(timed(ours.train_step, steps_per_round))
        times["plain"].append(timed(plain, steps_per_round))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"batch": batch, "compile_s": compile_s, "compiled": ours.forward is not ours.net,
            "ours_img_s": batch / med["ours"], "plain_img_s": batch / med["plain"],
            "ratio": med["plain"] / med["ours"], "rounds": rounds, "steps_per_round": steps_per_round}


def peak_rss_mb(which: str, model: str, batch: int, steps: int, compile_mode: str) -> float:
    """Peak resident memory of a fresh process running `steps` steps of one loop (MB)."""
    code = (f"import sys, resource, tempfile, pathlib; sys.path.insert(0, {str(ROOT)!r}); "
            "from bench.training_speed import make_trainer, plain_step_fn; "
            f"t = make_trainer({model!r}, {batch}, {compile_mode!r}, pathlib.Path(tempfile.mkdtemp())); "
            f"f = t.train_step_with_fallback if {which == 'ours'} else plain_step_fn(t); "
            f"[f() for _ in range({steps})]; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny model, few steps, no torch.compile: checks the harness, not speed")
    p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    model, batch, rounds, per_round = ("tiny", 8, 2, 2) if args.quick else ("small", 128, 6, 5)
    compile_mode = "off" if args.quick else "auto"
    with tempfile.TemporaryDirectory() as tmp:
        r = measure(model, batch, rounds, per_round, Path(tmp), compile_mode)
    mem = {w: peak_rss_mb(w, model, batch, 3, compile_mode) for w in ("ours", "plain")}
    command = "python bench/training_speed.py" + (" --quick" if args.quick else "")
    text = f"""# Training throughput: our trainer vs a plain eager loop

- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC
- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, {platform.processor() or platform.platform()}
- torch {torch.__version__}; command: `{command}`
- model preset `{model}`, batch {batch}, Fashion-MNIST 28x28, v-objective, min-SNR 5, label dropout 0.1
- timing: {rounds} interleaved rounds of {per_round} steps each, medians; torch.compile build time excluded
  ({r['compile_s']:.0f} s, compiled: {r['compiled']})

| loop | images/s | peak RSS (fresh process, 3 steps) |
|---|---|---|
| ours (Trainer.train_step: compile, channels_last, EMA, grad clip) | {r['ours_img_s']:.1f} | {mem['ours']:.0f} MB |
| plain eager loop (same net, data, loss) | {r['plain_img_s']:.1f} | {mem['plain']:.0f} MB |

Speed-up of ours over the plain loop: **{r['ratio']:.2f}x**.
"""
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training_speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
