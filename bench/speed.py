"""Speed of our sampling and training beside a peer and beside the machine's peak, measured in one run.

    pip install -r requirements-bench.txt              # diffusers: a benchmark-only dependency
    python -m bench.speed                              # rewrites the tables of bench/results/speed.md
    python -m bench.speed --quick --out-dir /tmp/x     # tiny nets and loops, seconds: checks the harness only

It prints tables of numbers; what they mean is written by hand above the marker line of speed.md (kept on
reruns). Each comparison is interleaved (ours, peer, ours, peer, ...) so that machine noise hits both alike:
- peak: the fp32 and bf16 matrix-multiply rates of this machine (best of several n x n products), the "limit";
- sampling, with the app's thread settings: the default checkpoint's network at batch 1 and 16 through our DDIM-50
  and DDPM-1000 samplers, against a diffusers UNet2DModel of about the same parameters and FLOPs (PEER below)
  through diffusers' DDIMScheduler / DDPMScheduler; wall, per model call, counted FLOPs (torch.utils.flop_counter)
  per call, achieved FLOP/s and its share of the fp32 peak;
- training, in a fresh process with train.py's thread settings (spinning OpenMP waits), the default network at
  batch 128: our Trainer.train_step with its defaults (torch.compile, bf16 autocast where `resolve_precision`
  picks it, channels_last, EMA, gradient clipping), the reference (a minimal loop of the same network, loss and
  AdamW compiled with torch.compile, in the same precision, nothing else), a plain eager fp32 loop, and the
  diffusers peer in that plain loop; images/s, FLOPs per image (forward + backward), share of the peak of the
  precision used, peak memory of each in a fresh process, and a profile of our step;
- classroom grid: 16 class-conditional samples, noise to uint8 grid, of the default checkpoint (and any given
  with --grid-checkpoints, interleaved) for sampler settings bench/quality.py has scored, in float32 and, where
  the app samples in another precision on this machine (checkpoint.fast_precision), in that one too: their
  cFID / floor and class accuracy from bench/results/quality.json stand beside each time;
- OpenMP wait policy: one network call in fresh processes under each policy, idle and beside one busy process;
- profiles: where a network call's time goes (torch.profiler self time per operator; the rest is Python and
  dispatch).
The app's own latencies are bench/forward_view.py's and bench/reverse_view.py's (this bench does not import the
app). The peer's weights are random: only speed is compared, and a network's speed does not depend on its weights.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from explorer.threads import configure_threads

configure_threads("passive")  # the app's settings; the training child runs under GOMP_SPINCOUNT (train.py's)

import torch
from torchvision.utils import make_grid

from bench.quality import label, measured
from bench.report import WAIT_POLICIES, conditions, publish, run_under
from explorer.checkpoint import DEFAULT_CHECKPOINT, DiffusionModel, ModelConfig, fast_precision, load_model
from explorer.losses import diffusion_loss
from explorer.nets import count_flops, count_parameters
from explorer.nets.unet import UNET_PRESETS, UNet
from explorer.samplers import run, sample
from explorer.training import TrainConfig, Trainer, pick_device

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "speed.md"
DEVICE = pick_device()
SPIN = WAIT_POLICIES["spin 300000 times, then sleep (libgomp's default)"]  # train.py's waiting, made explicit
# The diffusers peer of the "lean" UNet: one resnet per level, self-attention (4 heads) in the 7x7 middle block
# only, scale/shift time conditioning and a class embedding with a null class, as ours. 1,159,041 parameters
# (ours 1,181,889), 0.273 GFLOP per 28x28 image (ours 0.263).
PEER = dict(block_out_channels=(24, 48, 80), layers_per_block=1, norm_num_groups=8, attention_head_dim=20,
            down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3)
PEER_TINY = dict(block_out_channels=(8, 16, 32), layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
                 down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3)
# The classroom grid's sampler settings, as bench/quality.py names them (its rows give their quality).
GRID_SETTINGS = [{"method": "dpm-solver++", "steps": s, "guidance": 1.0, "clip_x0": True} for s in (5, 10)] + \
                [{"method": "ddim", "steps": s, "eta": 1.0, "guidance": 1.0, "clip_x0": True} for s in (20, 50)] + \
                [{"method": "ddim", "steps": 50, "eta": 0.0, "guidance": 3.0, "clip_x0": True}]
GRID_QUALITY_N = 500  # the N of the quality rows recorded in bench/results/quality.md
LOOPS = {"ours": "ours: Trainer.train_step (its defaults: compile, {precision}, EMA, clipping)",
         "reference": "reference: minimal loop, torch.compile, {precision}",
         "plain": "plain eager loop, fp32",
         "diffusers": "diffusers peer in the plain eager loop, fp32"}


class PeerNet(torch.nn.Module):
    """diffusers' UNet2DModel behind our net contract net(x_t, s, y) with s = t / T (for the training loop)."""

    def __init__(self, config: dict, T: int, classes: int = 10):
        super().__init__()
        from diffusers import UNet2DModel  # benchmark-only dependency (requirements-bench.txt)

        self.unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, add_attention=True,
                                resnet_time_scale_shift="scale_shift", num_class_embeds=classes + 1, **config)
        self.T, self.null_label = T, classes

    def forward(self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, s * self.T, class_labels=y).sample


# ---------------------------------------------------------------------------------------------- timing helpers
def timed(fn, n: int = 1) -> float:
    """Mean seconds of n calls of fn() (CUDA synchronised)."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def interleaved(fns: dict, rounds: int, n: int = 1) -> dict:
    """Median over `rounds` of the mean time of n calls, taking the functions in turn each round."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, n))
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_matmul(n: int, repeats: int, dtype: torch.dtype) -> float:
    """Best GFLOP/s of an n x n by n x n matrix product (2 n^3 FLOPs) in `dtype`."""
    a, b = (torch.randn(n, n, device=DEVICE).to(dtype) for _ in range(2))
    a @ b
    return max(2 * n**3 / timed(lambda: a @ b, 3) for _ in range(repeats)) / 1e9


def profile(fn, calls: int, top: int = 8) -> dict:
    """Self time per operator over `calls` calls of fn(), and the share of the wall time no operator claims."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    fn()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        wall_us = (time.perf_counter() - start) * 1e6
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_self = sum(e.self_cpu_time_total for e in events)
    rows = [(e.key, e.self_cpu_time_total / wall_us, e.count / calls) for e in events[:top]]
    return {"rows": rows, "ops_share": total_self / wall_us, "per_call_ms": wall_us / calls / 1e3}


# --------------------------------------------------------------------------------------------------- sampling
def our_sampler(model: DiffusionModel, method: str, steps: int, x_T: torch.Tensor, y: torch.Tensor):
    return lambda: run(sample(model, model.schedule, x_T, method=method, steps=steps, objective=model.objective, y=y))


def peer_sampler(peer: PeerNet, method: str, steps: int, x_T: torch.Tensor, y: torch.Tensor, objective: str):
    """diffusers' own loop: scheduler.set_timesteps, then unet(...).sample and scheduler.step per step."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kind = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}[objective]
    common = dict(num_train_timesteps=peer.T, beta_schedule="squaredcos_cap_v2", prediction_type=kind,
                  clip_sample=False, timestep_spacing="trailing")
    scheduler = DDIMScheduler(**common) if method == "ddim" else DDPMScheduler(**common)
    generator = torch.Generator(x_T.device).manual_seed(0)

    def loop():
        scheduler.set_timesteps(steps)
        x = x_T
        for t in scheduler.timesteps:
            out = peer.unet(x, t, class_labels=y).sample
            x = (scheduler.step(out, t, x).prev_sample if method == "ddim"
                 else scheduler.step(out, t, x, generator=generator).prev_sample)
        return x

    return loop


@torch.inference_mode()
def sampling(model: DiffusionModel, peer: PeerNet, cases: list[tuple[int, str, int, int]], peak: float) -> list[dict]:
    rows = []
    for batch, method, steps, rounds in cases:
        x_T = torch.randn(batch, *model.sample_shape, device=DEVICE)
        y = torch.arange(batch, device=DEVICE) % 10
        s = torch.full((batch,), 0.5, device=DEVICE)
        flops = {"ours": count_flops(model.net, x_T, s, y), "diffusers": count_flops(peer, x_T, s, y)}
        fns = {"ours": our_sampler(model, method, steps, x_T, y),
               "diffusers": peer_sampler(peer, method, steps, x_T, y, model.objective)}
        if steps <= 50:  # warm-up (oneDNN primitive caches); a 1000-step run warms itself
            for fn in fns.values():
                fn()
        wall = interleaved(fns, rounds)
        for who in fns:
            per_call = wall[who] / steps
            achieved = flops[who] / per_call / 1e9
            rows.append({"who": who, "batch": batch, "sampler": f"{method.upper()}-{steps}", "wall": wall[who],
                         "per_call_ms": per_call * 1e3, "gflop": flops[who] / 1e9, "gflops": achieved,
                         "peak_share": achieved / peak, "vs_peer": wall["diffusers"] / wall["ours"]})
    return rows


# --------------------------------------------------------------------------------------------------- training
def make_trainer(model: str, batch: int, quick: bool, out_dir: Path) -> Trainer:
    config = TrainConfig(dataset="fashion-mnist", model=model, batch_size=batch, compile="off" if quick else "auto",
                         sample_every=0, out=str(out_dir / "bench.safetensors"), run_dir=str(out_dir / "bench"))
    return Trainer(config, force=True)


def loop_step_fn(trainer: Trainer, net: torch.nn.Module | None = None, compiled: bool = False,
                 precision: str = "fp32"):
    """A loop with nothing but the trainer's data, label dropout, loss and AdamW: eager and fp32 (what a tutorial
    writes), or torch.compile'd in `precision` (the reference). `net` is a fresh copy of the trainer's network
    unless given (the diffusers peer)."""
    net = (net or type(trainer.ema)(trainer.ema.config)).to(trainer.device).train()
    forward = torch.compile(net) if compiled else net
    opt = torch.optim.AdamW(net.parameters(), lr=trainer.config.lr)
    c, images, labels = trainer.config, trainer.images, trainer.labels
    g = torch.Generator().manual_seed(0)
    autocast = (torch.autocast(trainer.device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step():
        idx = torch.randint(len(images), (c.batch_size,), generator=g)
        x0, y = images[idx].to(trainer.device), labels[idx].to(trainer.device)
        y = torch.where(torch.rand(c.batch_size, generator=g).to(y.device) < c.p_uncond, net.null_label, y)
        with autocast:
            loss = diffusion_loss(lambda x, t, yy: forward(x, t / c.T, yy), trainer.schedule, x0, c.objective, y,
                                  c.min_snr_gamma, g)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def training_loops(trainer: Trainer, peer_config: dict, quick: bool) -> dict:
    return {"ours": trainer.train_step_with_fallback,
            "reference": loop_step_fn(trainer, compiled=not quick, precision=trainer.precision),
            "plain": loop_step_fn(trainer),
            "diffusers": loop_step_fn(trainer, PeerNet(peer_config, trainer.config.T))}


def flops_per_image(step, batch: int) -> float:
    """FLOPs of one training step (forward and backward, counted by torch.utils.flop_counter) per image."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / batch


def training(model: str, batch: int, quick: bool) -> dict:
    """Images/s of the four loops (interleaved; compile builds excluded), FLOPs per image and a profile of ours."""
    rounds, per_round, profile_steps = (2, 1, 1) if quick else (5, 3, 3)
    peer_config = PEER_TINY if quick else PEER
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, batch, quick, Path(tmp))
        loops = training_loops(trainer, peer_config, quick)
        build = {}
        for name, fn in loops.items():  # torch.compile builds on the first call
            start = time.perf_counter()
            fn()
            build[name] = time.perf_counter() - start
        flops = {name: flops_per_image(loops[name], batch) for name in ("plain", "diffusers")}
        med = interleaved(loops, rounds, per_round)
        prof = profile(loops["ours"], profile_steps)
        precision = trainer.precision
    flops["ours"] = flops["reference"] = flops["plain"]  # the same network and loss
    return {"img_s": {k: batch / v for k, v in med.items()}, "gflop_per_image": {k: v / 1e9 for k, v in flops.items()},
            "first_step_s": build, "precision": precision, "profile": prof}


def peak_rss_mb(model: str, batch: int, quick: bool) -> dict[str, float]:
    """Peak resident memory (MB) of fresh processes, one per loop, each running 3 steps (all at once: memory,
    not time, is measured)."""
    args = ["--model", model, "--batch", str(batch)] + ["--quick"] * quick
    procs = {loop: subprocess.Popen([sys.executable, "-m", "bench.speed", "--rss-of", loop, *args], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for loop in LOOPS}
    out = {}
    for loop, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"the memory probe of the {loop} loop failed (exit {proc.returncode})")
        out[loop] = float(stdout.strip().splitlines()[-1])
    return out


def rss_of(loop: str, model: str, batch: int, quick: bool) -> float:
    """Peak resident MB while running 3 steps of `loop`, after the data and the networks are loaded (on Linux
    the high-water mark is reset first, so loading's own temporaries do not hide the loop's peak)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, batch, quick, Path(tmp))
        fn = training_loops(trainer, PEER_TINY if quick else PEER, quick)[loop]
        status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")
        if clear.exists():
            clear.write_text("5")  # reset VmHWM (Linux >= 4.0)
        for _ in range(3):
            fn()
        if status.exists():
            return next(int(line.split()[1]) for line in status.read_text().splitlines()
                        if line.startswith("VmHWM")) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- classroom grid
@torch.inference_mode()
def classroom_grid(models: list[tuple[str, DiffusionModel]], settings: list[dict], rounds: int) -> list[dict]:
    """Seconds from noise to a uint8 grid of 16 class-conditional samples (classes 0..9, 0..5) for each (name,
    model) and sampler setting, all interleaved."""
    y = torch.arange(16, device=DEVICE) % 10
    gen = torch.Generator(DEVICE).manual_seed(0)

    def grid(model, o):
        x_T = torch.randn(16, *model.sample_shape, device=DEVICE, generator=gen)
        x0 = run(sample(model, model.schedule, x_T, method=o["method"], steps=o["steps"], eta=o.get("eta", 0.0),
                        objective=model.objective, y=y, guidance=o["guidance"], clip_x0=o["clip_x0"]))
        return make_grid(x0.clamp(-1, 1) * 0.5 + 0.5, nrow=4).mul(255).round().to(torch.uint8).cpu()

    fns = {(j, i): (lambda m=model, o=o: grid(m, o)) for j, (_, model) in enumerate(models)
           for i, o in enumerate(settings)}
    for fn in fns.values():
        fn()
    wall = interleaved(fns, rounds)
    return [{"network": name, "params": count_parameters(model.net), "precision": model.precision, "sampler": label(o),
             "guidance": o["guidance"], "calls": o["steps"] * (1 if o["guidance"] in (0, 1) else 2),
             "wall": wall[(j, i)], "options": o}
            for j, (name, model) in enumerate(models) for i, o in enumerate(settings)]


# ------------------------------------------------------------------------------------------ OpenMP wait policy
def network_call(net: torch.nn.Module, batch: int):
    x = torch.randn(batch, 1, 28, 28, device=DEVICE)
    s, y = torch.full((batch,), 0.5, device=DEVICE), torch.arange(batch, device=DEVICE) % 10
    return torch.inference_mode()(lambda: net(x, s, y))


def network_call_ms(net: torch.nn.Module, repeats: int) -> dict[int, float]:
    """Median milliseconds of one network call at batch 1 and 16."""
    out = {}
    for batch in (1, 16):
        call = network_call(net, batch)
        for _ in range(3):
            call()
        out[batch] = 1e3 * statistics.median(timed(call) for _ in range(max(3, int(repeats / batch ** 0.5))))
    return out


def wait_policy(quick: bool, checkpoint: Path) -> dict:
    """Network-call time in fresh processes under each OpenMP wait policy, alone and beside one busy process (a
    Python loop: what Gradio encoding a frame, a browser or another user's request looks like to us). Quick
    mode: the app's policy only."""
    results = {}
    for busy in (False, True):
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for name, policy in list(WAIT_POLICIES.items())[:1 if quick else None]:
                results[(name, busy)] = run_under(policy, "bench.speed", "--call-ms", "--checkpoint", str(checkpoint),
                                                  *["--quick"] * quick)
        finally:
            if competitor:
                competitor.kill()
                competitor.wait()
    return results


# ------------------------------------------------------------------------------------------------------ report
def quick_model() -> DiffusionModel:
    """An untrained tiny UNet with the default checkpoint's schedule and objective (for --quick)."""
    net = UNet(UNET_PRESETS["tiny"])
    config = ModelConfig(net="unet", net_config=net.config.to_dict(), schedule="cosine", T=1000, objective="v",
                         dataset="fashion-mnist", sample_shape=[1, 28, 28], class_names=[str(i) for i in range(10)])
    return DiffusionModel(net, config).to(DEVICE).eval()


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(map(str, r)) + " |"
                                                                        for r in rows)]


def report(r: dict) -> str:
    peaks = r["peaks"]
    samp = table(["network", "batch", "sampler", "wall", "per model call", "GFLOP per call", "achieved GFLOP/s",
                  "share of fp32 peak", "ours / diffusers speed"],
                 [[row["who"], row["batch"], row["sampler"], f"{row['wall']:.2f} s", f"{row['per_call_ms']:.1f} ms",
                   f"{row['gflop']:.2f}", f"{row['gflops']:.0f}", f"{100 * row['peak_share']:.0f}%",
                   f"{row['vs_peer']:.2f}x" if row["who"] == "ours" else ""] for row in r["sampling"]])
    t = r["training"]
    train_rows = []
    for k, name in LOOPS.items():
        precision = t["precision"] if k in ("ours", "reference") else "fp32"
        achieved = t["img_s"][k] * t["gflop_per_image"][k]
        train_rows.append([name.format(precision=precision), f"{t['img_s'][k]:.1f}",
                           f"{t['img_s'][k] / t['img_s']['reference']:.2f}x", f"{t['gflop_per_image'][k]:.2f}",
                           f"{achieved:.0f}", f"{100 * achieved / peaks[precision]:.0f}% of {precision}",
                           f"{t['first_step_s'][k]:.1f} s", f"{r['rss'][k]:.0f} MB"])
    train = table(["loop", "images/s", "vs reference", "GFLOP per image (fwd + bwd)", "achieved GFLOP/s",
                   "share of the peak", "first step (compile)", "peak RSS, 3 steps in a fresh process"], train_rows)
    grid_rows = []
    for g in r["grid"]:
        q = g["quality"]
        grid_rows.append([f"{g['network']} ({g['params'] / 1e6:.2f} M parameters)", g["precision"], g["sampler"],
                          g["calls"], f"{g['wall']:.2f} s", f"{q['cfid'] / q['floor']:.2f}x" if q else "not measured",
                          f"{100 * q['accuracy']:.1f}%" if q else "not measured"])
    grid = table(["network", "precision", "sampler", "model calls (batch 16)", "wall, noise to uint8 grid",
                  f"cFID / floor at N = {GRID_QUALITY_N}", "class accuracy"], grid_rows)
    prof = []
    for what, p in r["profile"].items():
        prof += [f"{what}: {p['per_call_ms']:.1f} ms each; operators' self time covers "
                 f"{100 * p['ops_share']:.0f}% of the wall time (the rest is Python and dispatch).", "",
                 *table(["operator", "share of wall time", "calls each"],
                        [[f"`{k}`", f"{100 * share:.1f}%", f"{n:g}"] for k, share, n in p["rows"]]), ""]
    omp = table(["OpenMP waiting", "batch 1, idle machine", "batch 16, idle", "batch 1, one busy process beside",
                 "batch 16, busy beside"],
                [[name, *(f"{r['omp'][(name, busy)][b]:.1f} ms" for busy in (False, True) for b in ("1", "16"))]
                 for name in WAIT_POLICIES if (name, False) in r["omp"]])
    return "\n".join([
        "# Speed: ours beside a peer and beside the machine's peak",
        "",
        f"Produced by `python -m bench.speed` in one run (its docstring says what is timed). Our network: "
        f"{r['ours_name']}, {r['ours_params']:,} parameters; the diffusers peer: UNet2DModel {r['peer_desc']}, "
        f"{r['peer_params']:,} parameters.",
        "",
        *conditions("bench/speed.py", r["argv"], r["load"][0], extra=f", diffusers {r['diffusers']}"),
        "",
        "## Peak",
        "",
        f"Matrix multiply, n = {r['peak_n']}, best of {r['peak_repeats']}: fp32 **{peaks['fp32']:.0f} GFLOP/s**, "
        f"bf16 **{peaks['bf16']:.0f} GFLOP/s**.",
        "",
        "## Sampling (class-conditional, guidance 1: one network call per step; the app's thread settings)",
        "",
        *samp,
        "",
        f"## Training (batch {t['batch']}, Fashion-MNIST 28x28, v, min-SNR 5, label dropout 0.1; train.py's thread "
        "settings, in a fresh process)",
        "",
        "Interleaved rounds, medians; the first step (where torch.compile builds) is excluded from images/s.",
        "",
        *train,
        "",
        "## Time to a classroom grid (16 class-conditional samples)",
        "",
        *grid,
        "",
        "## OpenMP wait policy (one network call of ours, median, fresh process per cell)",
        "",
        *omp,
        "",
        "## Profiles (ours)",
        "",
        *prof,
    ]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny nets and loops: checks the harness, not speed")
    p.add_argument("--out-dir", default=str(RESULT.parent), help="folder for speed.md")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="our network (default: the app's default)")
    p.add_argument("--grid-checkpoints", nargs="*", default=[],
                   help="more checkpoints for the classroom grid, beside --checkpoint")
    p.add_argument("--rss-of", choices=list(LOOPS), help=argparse.SUPPRESS)
    p.add_argument("--call-ms", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--training-json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    model = quick_model() if args.quick else load_model(checkpoint, DEVICE).eval()
    preset = "tiny" if args.quick else model.config.training["train_config"]["model"]
    train_model, batch = args.model or preset, args.batch or (8 if args.quick else 128)
    if args.rss_of:
        print(rss_of(args.rss_of, train_model, batch, args.quick))
        return 0
    if args.call_ms:
        print(json.dumps(network_call_ms(model.net, 8 if args.quick else 60)))
        return 0
    if args.training_json:
        print(json.dumps(training(train_model, batch, args.quick)))
        return 0
    import diffusers

    r = {"load": os.getloadavg(), "diffusers": diffusers.__version__, "argv": sys.argv[1:] if argv is None else argv}
    peer_config = PEER_TINY if args.quick else PEER
    peer = PeerNet(peer_config, model.schedule.T).to(DEVICE).eval()
    r["ours_name"] = ("untrained tiny UNet (quick mode)" if args.quick
                      else f"`{checkpoint.name}` (preset {preset}, {model.config.step} training steps)")
    r["ours_params"], r["peer_params"] = count_parameters(model.net), count_parameters(peer)
    r["peer_desc"] = ", ".join(f"{k}={v}" for k, v in peer_config.items() if "types" not in k) + \
        ", attention in the middle block"
    r["peak_n"], r["peak_repeats"] = (256, 2) if args.quick else (2048, 10)
    r["peaks"] = {name: peak_matmul(r["peak_n"], r["peak_repeats"], dtype)
                  for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    cases = ([(1, "ddim", 5, 2), (2, "ddpm", 10, 1)] if args.quick else
             [(1, "ddim", 50, 7), (16, "ddim", 50, 5), (1, "ddpm", 1000, 1), (16, "ddpm", 1000, 1)])
    r["sampling"] = sampling(model, peer, cases, r["peaks"]["fp32"])
    paths = {} if args.quick else {p.stem: p for p in [checkpoint, *map(Path, args.grid_checkpoints)]}
    loaded = {name: load_model(p, DEVICE) for name, p in paths.items()} or {"untrained tiny": model}
    grid_models = [(name, m.at_precision(precision)) for name, m in loaded.items()  # the app's precision too
                   for precision in dict.fromkeys(["fp32", fast_precision(m.config, DEVICE)])]
    r["grid"] = classroom_grid(grid_models, GRID_SETTINGS[:2] if args.quick else GRID_SETTINGS, 1 if args.quick else 3)
    for g in r["grid"]:
        scored = g["options"] | ({"precision": g["precision"]} if g["precision"] != "fp32" else {})
        g["quality"] = measured(paths[g["network"]], scored, GRID_QUALITY_N) if paths else None
    r["profile"] = {f"Network call, batch {b}": profile(network_call(model.net, b), 3 if args.quick else 20)
                    for b in (1, 16)}
    r["omp"] = wait_policy(args.quick, checkpoint)
    child = ["--training-json", "--model", train_model, "--batch", str(batch)] + ["--quick"] * args.quick
    r["training"] = {**run_under(SPIN, "bench.speed", *child), "batch": batch}
    r["profile"][f"Training step of ours, batch {batch}"] = r["training"]["profile"]
    r["rss"] = peak_rss_mb(train_model, batch, args.quick)
    publish(report(r), Path(args.out_dir) / "speed.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
