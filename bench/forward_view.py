"""Latency of the forward view's slider handler, `explorer.app.forward.forward`, for one slider position.

    python -m bench.forward_view [--repeats 200] [--write]

Threads are set exactly as app.py sets them (explorer.threads.configure_threads: CPU_CORES, else the CPU quota or
affinity). Two inputs: a 28x28 gallery image and a 128x128 colour upload, both cosine, T = 1000. Each is
first swept once over t = 0..T (what the chain caches after a visitor's first pass), then timed at `repeats`
random t. Also timed: the first call for a new seed (the chain is computed from t = 0 up to t = T) and the
handler plus Gradio's postprocessing of its outputs (PNG encoding, figure JSON), which the server adds to
every slider move. --write records the result in bench/results/forward_view.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from explorer.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]

configure_threads("passive")  # as app.py: the app's thread settings, before torch loads


from bench.report import publish_with_conditions

import gradio as gr
import numpy as np
from PIL import Image

from explorer.app import forward as fv

RESULT = ROOT / "bench" / "results" / "forward_view.md"
TARGETS_MS = {"28x28 gallery image": 30.0, "128x128 colour upload": 100.0}


def synthetic_photo(path: Path) -> None:
    """A 512x512 RGB test card: smooth gradients, discs and fine stripes (all frequencies present)."""
    y, x = np.mgrid[0:512, 0:512] / 512.0
    r = np.hypot(x - 0.5, y - 0.5)
    rgb = np.stack([x, y, 0.5 + 0.5 * np.sin(40 * r)], axis=-1)
    rgb[(r < 0.2) & (np.sin(200 * x) > 0)] *= 0.3
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def postprocess(out: tuple) -> None:
    """What Gradio does with the handler's outputs before sending them: PNG files, figure JSON, Markdown."""
    image, plot, markdown = gr.Image(format="png", render=False), gr.Plot(render=False), gr.Markdown(render=False)
    for value in out[:4]:
        image.postprocess(value)
    for value in out[4:7]:
        plot.postprocess(value)
    for value in out[7:]:
        markdown.postprocess(value)


def measure(controls: dict, repeats: int, seed: int) -> dict[str, float]:
    T = controls["T"]
    call = lambda t, s=seed: fv.forward(**{**controls, "seed": s, "t": int(t)})  # noqa: E731
    cold = timed(call, T, seed + 1)  # a new seed: the chain from 0 to T
    for t in range(0, T + 1, max(1, T // 100)):  # the visitor's first pass over the slider
        call(t)
    rng = np.random.default_rng(0)
    handler = [timed(call, t) for t in rng.integers(0, T + 1, repeats)]
    served = [timed(lambda t: postprocess(call(t)), t) for t in rng.integers(0, T + 1, repeats // 2)]
    return {"median": statistics.median(handler), "p90": float(np.percentile(handler, 90)),
            "served median": statistics.median(served), "cold": cold}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--write", action="store_true", help=f"record the result in {RESULT.relative_to(ROOT)}")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        synthetic_photo(photo)
        cases = {
            "28x28 gallery image": {**fv.DEFAULTS, "image": "sneaker"},
            "128x128 colour upload": {**fv.DEFAULTS, "image": fv.UPLOAD, "upload": str(photo), "size": 128,
                                      "colour": "colour"},
        }
        results = {name: measure(controls, args.repeats, seed=100) for name, controls in cases.items()}

    rows = ["| input | target (median) | handler median | handler p90 | handler + Gradio postprocess, median "
            "| first call for a new seed (t = T) |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {TARGETS_MS[name]:.0f} ms | **{r['median']:.1f} ms** | {r['p90']:.1f} ms "
                    f"| {r['served median']:.1f} ms | {r['cold']:.0f} ms |")
    return publish_with_conditions([
        "# Forward view: latency of one slider position",
        "",
        "Produced by `bench/forward_view.py` (see its docstring for what is timed); cosine schedule, T = 1000,",
        f"{args.repeats} random t after one sweep over t (the chain's checkpoints then exist).",
        "",
        *rows,
        "",
    ], "bench/forward_view.py", argv, load_before, RESULT if args.write else None)


if __name__ == "__main__":
    main()
