"""Speed of the 2D toy lab: a 2000-particle DDIM-50 stream, and live training until two moons fit.

    python -m bench.toy_lab [--rounds 3] [--train-steps 1500] [--write]

Threads are set as app.py sets them (explorer.threads.configure_threads: CPU_CORES, else the CPU quota or affinity).

1. Generate (explorer.app.toy.generate, the lab's defaults: two moons, the bundled v model, DDIM, eta 0, 50 steps,
   x0_hat clipped, score field, 2000 particles; 26 frames): the first run (model load, contours, the data-vs-data
   floor), then `rounds` rounds that interleave three measurements with new seeds each time:
   pure compute (the same samplers.sample run alone), the handler exhausted, and the handler plus Gradio's
   postprocessing of every frame (the figure JSON the server sends). Wall and process CPU seconds are both given:
   on a busy machine wall time grows while CPU time stays about what the work costs; the ratios of runs taken
   side by side hold better than absolute times.
2. Live training (explorer.app.toy_logic.train_updates, two moons, v, the lab's LIVE options, up to --train-steps
   steps, seeds 0 and 1, interleaved with the rounds above): the loss and the energy distance of PREVIEW_N
   samples to as many fresh data points at each update. A visibly good fit is GOOD_ENERGY or less (the bundled
   4000-step model scores about 0.002 with the same preview sampler; a blurry cloud 0.005 to 0.01; the
   data-vs-data floor for 1000 points is about 0.001): reported as steps (independent of the machine) and as
   seconds of training and of wall time with the streamed updates.
--write records the result in bench/results/toy_lab.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from explorer.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]

configure_threads("passive")  # as app.py: the app's thread settings, before torch loads


from bench.report import publish_with_conditions

import gradio as gr
import torch

from explorer.app import catalogue, toy
from explorer.app import toy_logic as tl
from explorer.samplers import run, sample

RESULT = ROOT / "bench" / "results" / "toy_lab.md"
GOOD_ENERGY = 0.003
TARGET_STREAM_S = 1.0
TARGET_FIT_S = 15.0


def clock(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def generate_args(seed: int) -> dict:
    d = {**tl.DEFAULTS, "seed": seed, "n": 2000, "method": "ddim", "steps": 50}
    return {k: d[k] for k in (*tl.SETUP, *tl.SAMPLER)}


def handler(seed: int) -> None:
    for _ in toy.generate(**generate_args(seed)):
        pass


def served(seed: int) -> None:
    plot, markdown = gr.Plot(render=False), gr.Markdown(render=False)
    for figure, text in toy.generate(**generate_args(seed)):
        plot.postprocess(figure)
        markdown.postprocess(text)


@torch.inference_mode()
def pure(seed: int) -> None:
    model = catalogue.model_at(catalogue.PRETRAINED / "toy_two-moons_v.safetensors")
    gen = torch.Generator().manual_seed(seed)
    x_T = torch.randn(2000, 2, generator=gen)
    run(sample(model, model.schedule, x_T, method="ddim", steps=50, objective="v", clip_x0=tl.CLIP, generator=gen))


def first_frame(seed: int) -> float:
    start = time.perf_counter()
    next(iter(toy.generate(**generate_args(seed))))
    return time.perf_counter() - start


def training(seed: int, steps: int) -> list[tuple[int, float, float, float, float]]:
    """(step, training s, wall s, energy distance, sliced W2) at each update of a live training run."""
    setup = tl.Setup.parse({**tl.DEFAULTS, "source": "trained here"})  # two moons, v, cosine, T = 1000
    start, rows = time.perf_counter(), []
    for u in tl.train_updates(setup, steps, seed):
        rows.append((u.step, u.seconds, time.perf_counter() - start, u.quality.energy, u.quality.sliced))
    tl.forget(u.path)  # the session's temporary checkpoint
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=1500)
    parser.add_argument("--write", action="store_true", help=f"record the result in {RESULT.relative_to(ROOT)}")
    parser.add_argument("--quick", action="store_true", help="one round, 50 training steps: checks the harness")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.train_steps = 1, 50
    load_before = os.getloadavg()[0]
    cold = clock(lambda: handler(1))
    firsts = [first_frame(50 + i) for i in range(5)]
    rounds, fits = [], {}
    for r in range(args.rounds):
        seed = 100 + r
        rounds.append({"pure": clock(lambda: pure(seed)), "handler": clock(lambda: handler(seed)),
                       "served": clock(lambda: served(seed))})
        if r < 2:
            fits[r] = training(r, args.train_steps)

    def cell(wall_cpu: tuple[float, float]) -> str:
        return f"{wall_cpu[0]:.2f} s ({wall_cpu[1]:.2f} s CPU)"

    rows = ["| round | pure compute: 50 calls | handler, 26 frames | handler + Gradio postprocess | handler / pure "
            "| served / pure |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds, 1):
        rows.append(f"| {i} | {cell(r['pure'])} | {cell(r['handler'])} | {cell(r['served'])} "
                    f"| {r['handler'][0] / r['pure'][0]:.2f} | {r['served'][0] / r['pure'][0]:.2f} |")
    med = {k: statistics.median(r[k][0] for r in rounds) for k in ("pure", "handler", "served")}
    med_cpu = {k: statistics.median(r[k][1] for r in rounds) for k in ("pure", "handler", "served")}
    rows.append(f"| median | {med['pure']:.2f} s ({med_cpu['pure']:.2f} s CPU) | **{med['handler']:.2f} s** "
                f"({med_cpu['handler']:.2f} s CPU) | **{med['served']:.2f} s** ({med_cpu['served']:.2f} s CPU) "
                f"| {med['handler'] / med['pure']:.2f} | {med['served'] / med['pure']:.2f} |")

    fit_rows = ["| seed | updates: step (training s, wall s): energy distance | first update with energy ≤ "
                f"{GOOD_ENERGY} | final energy / sliced W₂ |", "|---|---|---|---|"]
    for seed, updates in fits.items():
        trail = ", ".join(f"{s} ({tr:.1f}, {w:.1f}): {e:.4f}" for s, tr, w, e, _ in updates)
        hit = next(((s, tr, w) for s, tr, w, e, _ in updates if e <= GOOD_ENERGY), None)
        when = f"**step {hit[0]}, {hit[1]:.1f} s training, {hit[2]:.1f} s wall**" if hit else "not reached"
        fit_rows.append(f"| {seed} | {trail} | {when} | {updates[-1][3]:.4f} / {updates[-1][4]:.3f} |")
    return publish_with_conditions([
        "# 2D toy lab: a 2000-particle DDIM-50 stream and live training",
        "",
        "Produced by `bench/toy_lab.py` (see its docstring for what is timed).",
        "",
        f"## Generate: 2000 particles, DDIM-50, 26 streamed frames (target: under {TARGET_STREAM_S:.0f} s)",
        "",
        f"First run of the process (model load, 26 contour grids, the data-vs-data floor): {cell(cold)}. "
        f"First frame (x_T with its field and contours) after pressing Generate: median "
        f"{statistics.median(firsts) * 1e3:.0f} ms over {len(firsts)} runs.",
        "",
        *rows,
        "",
        f"## Live training: two moons, v, batch {tl.LIVE['batch_size']}, lr {tl.LIVE['lr']}, EMA "
        f"{tl.LIVE['ema_decay']} (target: a visibly good fit in under {TARGET_FIT_S:.0f} s)",
        "",
        f"Updates stream about every {tl.UPDATE_S} s of training (more when an update is slow): {tl.PREVIEW_N} "
        f"samples of the EMA weights (DDIM, {tl.PREVIEW_STEPS} steps) against as many fresh data points.",
        "",
        *fit_rows,
        "",
    ], "bench/toy_lab.py", argv, load_before, RESULT if args.write else None)


if __name__ == "__main__":
    main()
