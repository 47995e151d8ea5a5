"""Speed against Hugging Face diffusers and against the machine's limit, measured in one run.

    pip install -r requirements-bench.txt              # diffusers: a benchmark-only dependency
    python bench/speed.py                              # writes bench/results/speed.md (about 15 min on 2 cores)
    python bench/speed.py --quick --out-dir /tmp/x     # tiny nets and loops, seconds: checks the harness only

Everything runs in one process with the app's thread settings (explorer.app.runtime is imported first), and
each comparison is interleaved (ours, peer, ours, peer, ...) so that machine noise hits both sides alike:
- peak: the fp32 matrix-multiply rate of this machine (best of several n x n products), the "limit";
- sampling: our default checkpoint's network at batch 1 and 16 through our DDIM-50 and DDPM-1000 samplers,
  against a diffusers UNet2DModel of the same parameter count and FLOPs (PEER below: 1% more parameters, 5% more
  FLOPs) through diffusers' DDIMScheduler / DDPMScheduler; wall time, wall per model call, counted FLOPs per
  call (torch.utils.flop_counter), achieved FLOP/s and its share of the peak;
- training: images/s of our trainer's default configuration, of a plain eager loop on the same network, and of
  the diffusers peer in that same plain loop; peak memory of each in a fresh process;
- app: the forward-view handler and the first frame of the reverse view (the app's own targets);
- classroom grid: 16 class-conditional samples, start to uint8 grid, of the default checkpoint (and of any
  other given with --grid-checkpoints, interleaved), for sampler settings whose quality bench/quality.py has
  measured: the cFID and class accuracy it recorded in bench/results/quality.json stand beside each time;
- OpenMP wait policy: a network call in fresh processes under PASSIVE / default / ACTIVE / short-spin waiting,
  on an idle machine and beside one busy process;
- profiles: where a model call's and a training step's time goes (torch.profiler, self time per operator; the
  rest is Python and dispatch).
The peer's weights are random: only speed is compared, and a network's speed does not depend on its weights.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.app import runtime  # noqa: E402  (first: the app's thread settings, before torch loads)

from bench.report import SHORT_SPIN, WAIT_POLICIES, conditions, publish, run_under  # noqa: E402

import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from explorer.checkpoint import DiffusionModel, ModelConfig, load_model  # noqa: E402
from explorer.losses import diffusion_loss  # noqa: E402
from explorer.nets import count_flops, count_parameters  # noqa: E402
from explorer.nets.unet import UNET_PRESETS, UNet  # noqa: E402
from explorer.samplers import run, sample  # noqa: E402
from explorer.training import TrainConfig, Trainer  # noqa: E402
from bench.quality import TARGETS, label, measured  # noqa: E402

RESULT = ROOT / "bench" / "results" / "speed.md"
DEFAULT_CHECKPOINT = ROOT / "pretrained" / "fashion_v_cosine.safetensors"
# The diffusers peer of the "small" UNet: one resnet per level on the way down (two on the way up, as diffusers
# builds them), self-attention in the 7x7 middle block only, scale/shift time conditioning and a class embedding
# with a null class, as ours. 2,087,273 parameters (ours 2,074,305), 0.458 GFLOP per 28x28 image (ours 0.437).
PEER = dict(block_out_channels=(32, 56, 112), layers_per_block=1, norm_num_groups=8, attention_head_dim=28,
            down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3)
PEER_TINY = dict(block_out_channels=(8, 16, 32), layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
                 down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3)
# The classroom grid's sampler settings, as bench/quality.py names them (its rows give their quality): the
# fastest few-step solver, and the stochastic DDIM that comes closest to the quality targets.
GRID_SETTINGS = [{"method": "dpm-solver++", "steps": s, "guidance": 1.0, "clip_x0": True} for s in (5, 10)] + \
                [{"method": "ddim", "steps": s, "eta": 1.0, "guidance": 1.0, "clip_x0": True} for s in (20, 50)] + \
                [{"method": "ddim", "steps": 50, "eta": 0.0, "guidance": 3.0, "clip_x0": True}]
GRID_TARGET_S = 0.5
PEER_GOAL = 1.5  # how much faster than the diffusers peer at batch 1 the issue asks us to be
GRID_QUALITY_N = 500  # the N of the quality rows recorded in bench/results/quality.md


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
    if runtime.DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def interleaved(fns: dict, rounds: int, n: int = 1) -> dict[str, float]:
    """Median over `rounds` of the mean time of n calls, taking the functions in turn each round."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, n))
    return {name: statistics.median(ts) for name, ts in times.items()}


# ------------------------------------------------------------------------------------------------------- peak
def peak_matmul(n: int, repeats: int) -> float:
    """Best fp32 GFLOP/s of an n x n by n x n matrix product (2 n^3 FLOPs) with the app's threads."""
    a, b = (torch.randn(n, n, device=runtime.DEVICE) for _ in range(2))
    a @ b
    return max(2 * n**3 / timed(lambda: a @ b, 3) for _ in range(repeats)) / 1e9


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
        x_T = torch.randn(batch, *model.sample_shape, device=runtime.DEVICE)
        y = torch.arange(batch, device=runtime.DEVICE) % 10
        s = torch.full((batch,), 0.5, device=runtime.DEVICE)
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
def make_trainer(model: str, batch: int, compile_mode: str, out_dir: Path) -> Trainer:
    config = TrainConfig(dataset="fashion-mnist", model=model, batch_size=batch, compile=compile_mode,
                         sample_every=0, out=str(out_dir / f"bench_{compile_mode}.safetensors"),
                         run_dir=str(out_dir / f"bench_{compile_mode}"))
    return Trainer(config, force=True)


def plain_step_fn(trainer: Trainer, net: torch.nn.Module | None = None):
    """What a tutorial writes: eager, contiguous, AdamW, the trainer's data, loss and label dropout; `net` is a
    fresh copy of the trainer's network unless given (the diffusers peer)."""
    net = (net or type(trainer.ema)(trainer.ema.config)).to(trainer.device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=trainer.config.lr)
    c, images, labels = trainer.config, trainer.images, trainer.labels
    g = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(len(images), (c.batch_size,), generator=g)
        x0, y = images[idx].to(trainer.device), labels[idx].to(trainer.device)
        y = torch.where(torch.rand(c.batch_size, generator=g).to(y.device) < c.p_uncond, net.null_label, y)
        loss = diffusion_loss(lambda x, t, yy: net(x, t / c.T, yy), trainer.schedule, x0, c.objective, y,
                              c.min_snr_gamma, g)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def training_loops(trainer: Trainer, peer_config: dict) -> dict:
    return {"ours": trainer.train_step, "plain": plain_step_fn(trainer),
            "diffusers": plain_step_fn(trainer, PeerNet(peer_config, trainer.config.T))}


def flops_per_image(step, batch: int) -> float:
    """FLOPs of one training step (forward and backward, counted by torch.utils.flop_counter) per image."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / batch


def training(model: str, batch: int, rounds: int, per_round: int, compile_mode: str, peer_config: dict,
             profile_steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, batch, compile_mode, Path(tmp))
        loops = training_loops(trainer, peer_config)
        build = time.perf_counter()
        trainer.train_step_with_fallback()  # torch.compile builds here
        compile_s = time.perf_counter() - build
        flops = {name: flops_per_image(loops[name], batch) for name in ("plain", "diffusers")}
        med = interleaved(loops, rounds, per_round)
        compiled = trainer.forward is not trainer.net
        prof = profile(loops["plain"], profile_steps)
    flops["ours"] = flops["plain"]  # the same network and loss
    return {"img_s": {k: batch / v for k, v in med.items()}, "gflop_per_image": {k: v / 1e9 for k, v in flops.items()},
            "compile_s": compile_s, "compiled": compiled, "profile": prof}


def peak_rss_mb(loops: list[str], quick: bool) -> dict[str, float]:
    """Peak resident memory (MB) of fresh processes, one per loop, each running 3 steps (all at once: memory,
    not time, is measured)."""
    procs = {loop: subprocess.Popen([sys.executable, __file__, "--rss-of", loop] + ["--quick"] * quick,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for loop in loops}
    out = {}
    for loop, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"the memory probe of the {loop} loop failed (exit {proc.returncode})")
        out[loop] = float(stdout.strip().splitlines()[-1])
    return out


def rss_of(loop: str, model: str, batch: int, compile_mode: str, peer_config: dict) -> float:
    """Peak resident MB while running 3 steps of `loop`, after the data and the networks are loaded (on Linux
    the high-water mark is reset first, so loading's own temporaries do not hide the loop's peak)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, batch, compile_mode, Path(tmp))
        fn = trainer.train_step_with_fallback if loop == "ours" else training_loops(trainer, peer_config)[loop]
        status, clear = Path("/proc/self/status"), Path("/proc/self/clear_refs")
        if clear.exists():
            clear.write_text("5")  # reset VmHWM (Linux >= 4.0)
        for _ in range(3):
            fn()
        if status.exists():
            return next(int(line.split()[1]) for line in status.read_text().splitlines()
                        if line.startswith("VmHWM")) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -------------------------------------------------------------------------------------------------------- app
def app_latency(repeats: int) -> dict[str, float]:
    """Median handler milliseconds of the forward view (28x28 gallery image) and of the reverse view's first frame."""
    from bench import forward_view, reverse_view
    from explorer.app import forward as fv

    forward_ms = forward_view.measure({**fv.DEFAULTS, "image": "sneaker"}, repeats, seed=100)["median"]
    name = DEFAULT_CHECKPOINT.name
    first = statistics.median(reverse_view.first_yield(reverse_view.controls(name, "v", seed=i))
                              for i in range(max(3, repeats // 20)))
    return {"forward": forward_ms, "first_frame": 1e3 * first}


# ---------------------------------------------------------------------------------------------- classroom grid
@torch.inference_mode()
def classroom_grid(models: dict[str, DiffusionModel], settings: list[dict], rounds: int) -> list[dict]:
    """Seconds from noise to a uint8 grid of 16 class-conditional samples (classes 0..9, 0..5) for each model
    and sampler setting, all interleaved."""
    y = torch.arange(16, device=runtime.DEVICE) % 10
    gen = torch.Generator(runtime.DEVICE).manual_seed(0)

    def grid(model, o):
        x_T = torch.randn(16, *model.sample_shape, device=runtime.DEVICE, generator=gen)
        x0 = run(sample(model, model.schedule, x_T, method=o["method"], steps=o["steps"], eta=o.get("eta", 0.0),
                        objective=model.objective, y=y, guidance=o["guidance"], clip_x0=o["clip_x0"]))
        return make_grid(x0.clamp(-1, 1) * 0.5 + 0.5, nrow=4).mul(255).round().to(torch.uint8).cpu()

    fns = {(name, i): (lambda m=model, o=o: grid(m, o)) for name, model in models.items()
           for i, o in enumerate(settings)}
    for fn in fns.values():
        fn()
    wall = interleaved(fns, rounds)
    return [{"network": name, "params": count_parameters(model.net), "sampler": label(o), "guidance": o["guidance"],
             "calls": o["steps"] * (1 if o["guidance"] in (0, 1) else 2), "wall": wall[(name, i)], "options": o}
            for name, model in models.items() for i, o in enumerate(settings)]


def quality_met(q: dict | None, guidance: float) -> bool | None:
    """Whether a grid setting's recorded quality meets issue 7's targets: cFID at most TARGETS["ddim50_floor"]
    times the floor, and the class accuracy asked of its guidance (w = 1: acc_g1; w >= 3: acc_g3); None if not
    measured."""
    if q is None:
        return None
    accuracy = TARGETS["acc_g1"] if guidance < 3 else TARGETS["acc_g3"]
    return q["cfid"] / q["floor"] <= TARGETS["ddim50_floor"] and q["accuracy"] >= accuracy


# ------------------------------------------------------------------------------------------------------ profile
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


def network_call(net: torch.nn.Module, batch: int):
    x = torch.randn(batch, 1, 28, 28, device=runtime.DEVICE)
    s, y = torch.full((batch,), 0.5, device=runtime.DEVICE), torch.arange(batch, device=runtime.DEVICE) % 10
    return torch.inference_mode()(lambda: net(x, s, y))


# ------------------------------------------------------------------------------------------ OpenMP wait policy
@torch.inference_mode()
def network_call_ms(net: torch.nn.Module, repeats: int) -> dict[int, float]:
    """Median milliseconds of one network call at batch 1 and 16."""
    out = {}
    for batch in (1, 16):
        call = network_call(net, batch)
        for _ in range(3):
            call()
        out[batch] = 1e3 * statistics.median(timed(call) for _ in range(max(3, int(repeats / batch ** 0.5))))
    return out


def wait_policy(quick: bool) -> dict:
    """Network-call time in fresh processes under each OMP_WAIT_POLICY, alone and beside one busy process (a
    Python loop: what Gradio encoding a frame, a browser or another user's request looks like to us). Quick
    mode: the app's policy only."""
    results = {}
    for busy in (False, True):
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for name, policy in list(WAIT_POLICIES.items())[:1 if quick else None]:
                results[(name, busy)] = run_under(policy, __file__, "--call-ms", *["--quick"] * quick)
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
    return DiffusionModel(net, config).to(runtime.DEVICE).eval()


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def findings(r: dict) -> list[str]:
    """The measured verdicts on issue 8's goals, computed from the numbers below (no hand-written numbers)."""
    peak, t = r["peak"], r["training"]
    ours = {(row["batch"], row["sampler"]): row for row in r["sampling"] if row["who"] == "ours"}
    ddim = [k for k in ours if k[1].startswith("DDIM")]
    lines = []
    passive, default = (r["omp"].get((name, False)) for name in list(WAIT_POLICIES)[:2])
    for batch, goal in ((16, 0.85), (1, 0.60)):
        row = next((ours[k] for k in ddim if k[0] == batch), None)
        if row:
            spin_ms = default.get(str(batch)) if default else None
            spin = (f" With libgomp's default spin-then-sleep waits one call takes {spin_ms:.0f} ms on an idle "
                    f"machine, {100 * row['gflop'] / spin_ms * 1e3 / peak:.0f}% of the peak: waking passive "
                    "threads is the largest single cost (see the OpenMP table)." if spin_ms else "")
            peer = ""
            prof = r.get("profile", {}).get(f"Network call, batch {batch}")
            if batch == 1 and prof:  # the goal against diffusers is set at batch 1
                peer = (f" (goal {PEER_GOAL}x: **{verdict(row['vs_peer'] >= PEER_GOAL)}**: Python and dispatch are "
                        f"{100 * (1 - prof['ops_share']):.0f}% of our batch-1 call, so without any we would be at "
                        f"most {1 / prof['ops_share']:.2f}x as fast; the rest is the same oneDNN and ATen kernels "
                        "the peer calls)")
            lines.append(f"- Efficiency at batch {batch} ({row['sampler']}): {100 * row['peak_share']:.0f}% of the "
                         f"matmul peak (goal {100 * goal:.0f}%): **{verdict(row['peak_share'] >= goal)}**;"
                         f" {row['vs_peer']:.2f}x the diffusers peer's speed{peer}.{spin}")
    plain = t["img_s"]["plain"] * t["gflop_per_image"]["plain"]
    lines.append(f"- Training: ours {t['img_s']['ours'] / t['img_s']['plain']:.2f}x the plain eager loop (goal 2x). "
                 f"The plain loop already runs at {100 * plain / peak:.0f}% of the matmul peak, so 2x on the same "
                 f"network would need {200 * plain / peak:.0f}% of it: only less arithmetic per image (a leaner "
                 f"network) can double images/s here. Against the diffusers peer in the same loop: "
                 f"{t['img_s']['ours'] / t['img_s']['diffusers']:.2f}x.")
    lines.append(grid_finding(r["grid"]))
    if passive and default:
        busy_p, busy_d = (r["omp"][(name, True)] for name in list(WAIT_POLICIES)[:2])
        lines.append(f"- OpenMP waiting: on an idle machine passive waiting (the app's choice) takes "
                     f"{passive['1'] / default['1']:.1f}x the time of libgomp's default spin-then-sleep per batch-1 "
                     f"call ({passive['16'] / default['16']:.1f}x at batch 16); beside one busy process the default "
                     f"takes {busy_d['1'] / busy_p['1']:.1f}x passive's ({busy_d['16'] / busy_p['16']:.1f}x at 16). "
                     "Whether spinning pays once the app serves (its own threads then share the CPUs): "
                     "`python bench/reverse_view.py --policies`, recorded in bench/results/reverse_view.md.")
        short_idle, short_busy = r["omp"].get((SHORT_SPIN, False)), r["omp"].get((SHORT_SPIN, True))
        if short_idle and short_busy:
            lines.append(f"- A short spin is no middle ground: {short_idle['1']:.0f} ms per batch-1 call idle "
                         f"(passive {passive['1']:.0f} ms) but {short_busy['1'] / busy_p['1']:.1f}x passive's time "
                         f"beside one busy process ({short_busy['16'] / busy_p['16']:.1f}x at batch 16): a spinning "
                         "thread holds the core the other process needs, whatever the spin count.")
    return lines


def quality_text(g: dict) -> str:
    q = g.get("quality")
    return (f"cFID {q['cfid'] / q['floor']:.2f}x the floor, class accuracy {100 * q['accuracy']:.1f}%" if q else
            "quality not measured")


def grid_finding(grid: list[dict]) -> str:
    """The classroom-grid verdict: time and the quality targets together."""
    fastest = min(grid, key=lambda g: g["wall"])
    good = sorted((g for g in grid if g.get("met")), key=lambda g: g["wall"])
    both = bool(good) and good[0]["wall"] <= GRID_TARGET_S
    per_call = fastest["wall"] / fastest["calls"]
    text = (f"- Classroom grid (goal: {GRID_TARGET_S} s and the quality targets: **{verdict(both)}**): fastest "
            f"{fastest['sampler']} of {fastest['network']} in {fastest['wall']:.2f} s ({quality_text(fastest)}); ")
    if good:
        text += f"the fastest that meets the quality targets: {good[0]['sampler']} of {good[0]['network']} in " \
                f"{good[0]['wall']:.2f} s."
    else:
        text += (f"no measured setting meets the quality targets (cFID <= {TARGETS['ddim50_floor']}x the floor, "
                 f"class accuracy >= {100 * TARGETS['acc_g1']:.0f}% at w = 1, {100 * TARGETS['acc_g3']:.0f}% at "
                 "w = 3).")
    return text + (f" At {1e3 * per_call:.0f} ms per batch-16 call the time goal allows "
                   f"{GRID_TARGET_S / per_call:.1f} calls.")


def report(r: dict) -> str:
    peak = r["peak"]
    samp = ["| network | batch | sampler | wall | per model call | GFLOP per call | achieved GFLOP/s "
            "| share of matmul peak | ours faster by |", "|---|---|---|---|---|---|---|---|---|"]
    for row in r["sampling"]:
        faster = f"**{row['vs_peer']:.2f}x**" if row["who"] == "ours" else ""
        samp.append(f"| {row['who']} | {row['batch']} | {row['sampler']} | {row['wall']:.2f} s "
                    f"| {row['per_call_ms']:.1f} ms | {row['gflop']:.2f} | {row['gflops']:.0f} "
                    f"| {100 * row['peak_share']:.0f}% | {faster} |")
    t = r["training"]
    names = {"ours": "ours (Trainer.train_step: compile when it pays, EMA, clipping)",
             "plain": "plain eager loop, same network", "diffusers": "diffusers peer in the same plain loop"}
    train = ["| loop | images/s | vs plain eager | GFLOP per image (forward + backward) | achieved GFLOP/s "
             "| share of matmul peak | peak RSS over 3 steps (fresh process, data loaded) |",
             "|---|---|---|---|---|---|---|"]
    for k, label in names.items():
        achieved = t["img_s"][k] * t["gflop_per_image"][k]
        train.append(f"| {label} | {t['img_s'][k]:.1f} | {t['img_s'][k] / t['img_s']['plain']:.2f}x "
                     f"| {t['gflop_per_image'][k]:.2f} | {achieved:.0f} | {100 * achieved / peak:.0f}% "
                     f"| {r['rss'][k]:.0f} MB |")
    grid = [f"| network | sampler | model calls (batch 16) | wall, noise to uint8 grid | <= {GRID_TARGET_S} s "
            f"| quality at N = {GRID_QUALITY_N} (quality.md) | quality targets |", "|---|---|---|---|---|---|---|"]
    for g in r["grid"]:
        met = {None: "not measured", True: "met", False: "missed"}[g.get("met")]
        grid.append(f"| {g['network']} ({g['params'] / 1e6:.2f} M parameters) | {g['sampler']} | {g['calls']} "
                    f"| {g['wall']:.2f} s | {verdict(g['wall'] <= GRID_TARGET_S)} | {quality_text(g)} | {met} |")
    prof = []
    for what, p in r["profile"].items():
        prof += [f"{what}: {p['per_call_ms']:.1f} ms each; operators' self time covers "
                 f"{100 * p['ops_share']:.0f}% of the wall time (the rest is Python and dispatch).", "",
                 "| operator | share of wall time | calls each |", "|---|---|---|"]
        prof += [f"| `{k}` | {100 * share:.1f}% | {n:g} |" for k, share, n in p["rows"]] + [""]
    omp = ["| OMP_WAIT_POLICY | batch 1, idle machine | batch 16, idle | batch 1, one busy process beside | "
           "batch 16, busy beside |", "|---|---|---|---|---|"]
    for name in WAIT_POLICIES:
        if (name, False) not in r["omp"]:
            continue
        idle, busy = r["omp"][(name, False)], r["omp"][(name, True)]
        omp.append(f"| {name} | {idle['1']:.1f} ms | {idle['16']:.1f} ms | {busy['1']:.1f} ms | {busy['16']:.1f} ms |")
    app = r["app"]
    return "\n".join([
        "# Speed: ours against diffusers and against the machine's peak",
        "",
        "Produced by `bench/speed.py` in one process (see its docstring for what is timed). Our network: "
        f"{r['ours_name']}, {r['ours_params']:,} parameters; the diffusers peer: UNet2DModel {r['peer_desc']}, "
        f"{r['peer_params']:,} parameters.",
        "",
        *conditions("bench/speed.py", r["argv"], r["load"][0], extra=f", diffusers {r['diffusers']}"),
        "",
        "## What the numbers say",
        "",
        *findings(r),
        "",
        "## Peak",
        "",
        f"fp32 matrix multiply, n = {r['peak_n']}: **{peak:.0f} GFLOP/s** (best of {r['peak_repeats']}).",
        "",
        "## Sampling (class-conditional, guidance 1: one network call per step)",
        "",
        *samp,
        "",
        "## Training",
        "",
        f"Batch {t['batch']}, Fashion-MNIST 28x28, v-objective, min-SNR 5, label dropout 0.1; interleaved rounds, "
        f"medians; torch.compile build time excluded ({t['compile_s']:.0f} s, compiled: {t['compiled']}).",
        "",
        *train,
        "",
        "## App",
        "",
        "| what | target | handler median |", "|---|---|---|",
        f"| forward view, one slider position (28x28) | 30 ms | {app['forward']:.1f} ms |",
        f"| reverse view, Generate to first frame (handler, incl. Gradio's PNG and figure encoding) | 300 ms "
        f"| {app['first_frame']:.1f} ms |",
        "",
        "Served and browser latencies: bench/results/forward_view.md and reverse_view.md.",
        "",
        "## Time to a classroom grid (16 class-conditional samples)",
        "",
        *grid,
        "",
        "Quality: cFID / floor and class accuracy of N class-balanced samples, as bench/quality.py measured them "
        "(bench/results/quality.md; the targets are issue 7's: cFID at most "
        f"{TARGETS['ddim50_floor']}x the floor, class accuracy at least {100 * TARGETS['acc_g1']:.0f}% at w = 1 "
        f"and {100 * TARGETS['acc_g3']:.0f}% at w = 3).",
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
    p.add_argument("--grid-checkpoints", nargs="*", default=[],
                   help="more checkpoints for the classroom grid, beside the default one (e.g. a leaner network)")
    p.add_argument("--rss-of", choices=["ours", "plain", "diffusers"], help=argparse.SUPPRESS)
    p.add_argument("--call-ms", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    model_name, batch, t_rounds, per_round = ("tiny", 8, 2, 1) if args.quick else ("small", 128, 5, 3)
    compile_mode = "off" if args.quick else "auto"
    peer_config = PEER_TINY if args.quick else PEER
    if args.rss_of:
        print(rss_of(args.rss_of, model_name, batch, compile_mode, peer_config))
        return 0
    model = quick_model() if args.quick else load_model(DEFAULT_CHECKPOINT, runtime.DEVICE).eval()
    if args.call_ms:
        print(json.dumps(network_call_ms(model.net, 8 if args.quick else 60)))
        return 0
    import diffusers

    r = {"load": os.getloadavg(), "diffusers": diffusers.__version__, "argv": sys.argv[1:] if argv is None else argv}
    peer = PeerNet(peer_config, model.schedule.T).to(runtime.DEVICE).eval()
    r["ours_name"] = "untrained tiny UNet (quick mode)" if args.quick else f"`{DEFAULT_CHECKPOINT.name}` (preset small)"
    r["ours_params"], r["peer_params"] = count_parameters(model.net), count_parameters(peer)
    r["peer_desc"] = ", ".join(f"{k}={v}" for k, v in peer_config.items() if "types" not in k) + \
        ", attention in the middle block"
    r["peak_n"], r["peak_repeats"] = (256, 2) if args.quick else (2048, 10)
    r["peak"] = peak_matmul(r["peak_n"], r["peak_repeats"])
    cases = ([(1, "ddim", 5, 2), (2, "ddpm", 10, 1)] if args.quick else
             [(1, "ddim", 50, 7), (16, "ddim", 50, 5), (1, "ddpm", 1000, 1), (16, "ddpm", 1000, 1)])
    r["sampling"] = sampling(model, peer, cases, r["peak"])
    paths = {} if args.quick else {p.stem: p for p in [DEFAULT_CHECKPOINT, *map(Path, args.grid_checkpoints)]}
    grid_models = {name: load_model(p, runtime.DEVICE).eval() for name, p in paths.items()} or {"untrained tiny": model}
    r["grid"] = classroom_grid(grid_models, GRID_SETTINGS[:2] if args.quick else GRID_SETTINGS,
                               1 if args.quick else 3)
    for g in r["grid"]:
        g["quality"] = measured(paths[g["network"]], g["options"], GRID_QUALITY_N) if paths else None
        g["met"] = quality_met(g["quality"], g["guidance"])
    r["profile"] = {f"Network call, batch {b}": profile(network_call(model.net, b), 3 if args.quick else 20)
                    for b in (1, 16)}
    r["omp"] = wait_policy(args.quick)
    r["app"] = app_latency(4 if args.quick else 100)
    profile_steps = 1 if args.quick else 2
    r["training"] = {**training(model_name, batch, t_rounds, per_round, compile_mode, peer_config, profile_steps),
                     "batch": batch}
    r["profile"][f"Training step, batch {batch} (plain eager loop)"] = r["training"]["profile"]
    r["rss"] = peak_rss_mb(["ours", "plain", "diffusers"], args.quick)
    publish(report(r), Path(args.out_dir) / "speed.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
