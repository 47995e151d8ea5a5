"""How well the bundled 2D-toy checkpoints fit their data: distances of their samples to fresh data.

    python -m bench.toy_checkpoints [--n 2000] [--seeds 3] [--write]

For every pretrained/toy_<dataset>_<objective>.safetensors (trained by scripts/train_toys.sh): n samples with
each sampler of SAMPLERS (x0_hat clipped to [-3, 3], as the toy lab samples), their energy distance and sliced
W2 to n fresh data points, averaged over `seeds` seeds, against the data-vs-data floor (the same distances
between two fresh draws of the data, also averaged). The toy lab's own measures: explorer.metrics.toy_distances
and toy_floor.
--write records the table in pretrained/README.md between the RESULTS markers.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import re
import sys
import time
from pathlib import Path

from explorer.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]

configure_threads("passive")  # as app.py: the app's thread settings, before torch loads

import torch

from explorer.checkpoint import PRETRAINED_DIR, load_model
from explorer.data import TOY_CLIP, TOY_DATASETS
from explorer.metrics import TOY_FLOOR_PAIRS, toy_distances, toy_floor
from explorer.parameterization import OBJECTIVES
from explorer.samplers import run, sample

SAMPLERS = {"DDIM 50": {"method": "ddim", "steps": 50}, "DDPM 200": {"method": "ddpm", "steps": 200}}
RESULT = ROOT / "pretrained" / "README.md"
BEGIN, END = "<!-- RESULTS BEGIN (bench/toy_checkpoints.py --write) -->", "<!-- RESULTS END -->"


@torch.inference_mode()
def evaluate(path: Path, n: int, seeds: int) -> dict[str, tuple[float, float]]:
    """Mean (energy distance, sliced W2) over seeds for each sampler."""
    model = load_model(path)
    out = {}
    for name, options in SAMPLERS.items():
        energy = sliced = 0.0
        for seed in range(seeds):
            gen = torch.Generator().manual_seed(seed)
            x_T = torch.randn(n, 2, generator=gen)
            x0 = run(sample(model, model.schedule, x_T, objective=model.objective, clip_x0=TOY_CLIP, generator=gen,
                            **options))
            e, w = toy_distances(model.config.dataset, x0)
            energy, sliced = energy + e / seeds, sliced + w / seeds
        out[name] = (energy, sliced)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="samples and data points per comparison")
    p.add_argument("--seeds", type=int, default=3, help="sampling seeds averaged")
    p.add_argument("--write", action="store_true", help=f"record the table in {RESULT.relative_to(ROOT)}")
    args = p.parse_args()
    start = time.perf_counter()
    header = ["checkpoint", "steps", *[f"{s}: energy / sliced W₂" for s in SAMPLERS]]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in TOY_DATASETS:
        floor_e, floor_s = toy_floor(dataset, args.n)
        rows.append(f"| **{dataset}**, data vs data (floor) | | "
                    + " | ".join(f"{floor_e:.4f} / {floor_s:.3f}" for _ in SAMPLERS) + " |")
        for objective in OBJECTIVES:
            path = PRETRAINED_DIR / f"toy_{dataset}_{objective}.safetensors"
            result = evaluate(path, args.n, args.seeds)
            step = load_model(path).config.step
            rows.append(f"| `{path.name}` | {step} | "
                        + " | ".join(f"{e:.4f} / {s:.3f}" for e, s in result.values()) + " |")
    table = "\n".join(rows)
    note = (f"Measured {datetime.date.today().isoformat()} on {platform.machine()} ({torch.get_num_threads()} torch "
            f"threads), torch {torch.__version__}: `python -m bench.toy_checkpoints --n {args.n} --seeds "
            f"{args.seeds}` ({time.perf_counter() - start:.0f} s). {args.n} samples against {args.n} fresh data "
            f"points, means over {args.seeds} sampling seeds; floor: mean over {TOY_FLOOR_PAIRS} pairs of fresh "
            "draws (mean |energy distance|, which is unbiased and scatters around 0 for two draws of the data).")
    block = f"{BEGIN}\n{note}\n\n{table}\n{END}"
    sys.stdout.write(block + "\n")
    if args.write:
        text = RESULT.read_text()
        RESULT.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))


if __name__ == "__main__":
    main()
