"""Sample quality of the bundled image checkpoints: cFID and class accuracy per sampler, a guidance sweep, the ELBO.

    python -m bench.quality [--n 2000] [--ddpm-n 500] [--checkpoints pretrained/fashion_*.safetensors] [--device auto]
    python -m bench.quality --quick --checkpoints runs/tiny.safetensors --out-dir /tmp/quality   # seconds, for CI

For each image checkpoint (config.net == "unet"; by default every one in pretrained/, other files are skipped
with the reason) and N class-balanced samples per sampler config (explorer.metrics.generate_samples; the same
seed, hence the same x_T, for every config):
- cFID against N class-balanced test images, and the real-vs-real floor: N training images against the same N
  test images. cFID is the Frechet distance of the reference classifier's penultimate features
  (explorer.classifier, pretrained/fashion_classifier.safetensors);
- class accuracy: the share of samples the classifier labels as the class asked for;
- samplers at guidance 1 (the plain conditional model): DDPM with all T steps (sigma^2 = beta and beta_tilde),
  DDIM at 10 / 20 / 50 / 100 steps with eta 0, 0.5, 1, DPM-Solver++(2M) at 5 / 10 / 20 model calls;
- a classifier-free-guidance sweep w = 0, 1, 3, 5 with DDIM-50, eta 0 (out = out_null + w (out_cond - out_null):
  w = 0 unconditional, w = 1 the conditional model, larger w pushes further toward the class);
- with `--classifier-scales 1,3,10`, a classifier-guidance sweep of the same sampler at w = 1: eps_hat - s b_t
  grad log p_phi(y | x_t, t) with the noise-aware classifier `--noisy-classifier` (explorer.noisy_classifier;
  Dhariwal & Nichol 2021, eq. 14), rows labelled like ddim-50-eta0-cg3, for checkpoints whose dataset, image shape,
  classes, schedule and T it fits (the report says why not for the others). Class accuracy stays the reference
  classifier's, a network other than the p_phi that steers;
- the ELBO (explorer.likelihood.elbo, sigma^2 = beta_tilde, conditioned on the true labels) of `--elbo-n` test
  images with a t stride: its per-timestep terms go to elbo_<checkpoint>.csv, bits per dimension to the report;
- with `--precisions fp32,bf16`, each sampler row at guidance 1 again with the network under bf16 autocast
  (DiffusionModel.at_precision, as the app samples on CPUs with native bf16), labelled like dpm-solver++-10-bf16;
- the real test images as every table's first row (the classifier's accuracy on them; cFID of a second real
  sample, the floor), and issue 15's targets (TARGETS) as numbers beside their goals.

Cost per checkpoint at N = 2000: about 5.8 M one-image network evaluations (the two full-T DDPM runs are 70 % of
them); for the "small" UNet (~160 images/s on a 2-core CPU) that is ~10 h on a CPU, minutes on a GPU.
`--ddpm-n M` measures the full-T DDPM rows with M samples instead (their cost scales with M) and, so that they
compare like with like, DPM-Solver++-10 (the target comparing it with DDPM), the reference DDIM-50 (does the sampler
or the model hold it back?) and the real-vs-real floor at M too: cFID's bias grows as N shrinks, so only rows at the
same N compare.

Writes <out-dir>/quality.md, <out-dir>/elbo_<name>.csv and <out-dir>/quality.json. The JSON keeps every
measured row under a key made of the checkpoint's and classifier's hashes, device, N, seed, batch size and sampler
options, and the floor at each N; a rerun reuses matching rows, so an interrupted run resumes where it stopped
(delete the JSON to measure afresh). bench/speed.py reads it (`measured`) to put quality beside its timings.
`--only` restricts the sampler configs measured by label (e.g. --only ddim-50-eta0,dpm-solver++-10); rows
measured by an earlier run with the same settings stay in the report, so runs with different --only lists add up
(the report ends with one command per checkpoint that measures its rows from scratch). `--quick`: N = 20,
full-T DDPM, DDIM-10 (also the guidance sweep's sampler, w = 0 / 1 / 3), DPM-Solver++-10 and a cheap ELBO; for a
test with a tiny checkpoint.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads: a lone benchmark gains from spinning waits

import torch

from bench.report import cpu_name
from explorer.checkpoint import PRECISIONS, PRETRAINED_DIR, CheckpointError, load_model, read_config
from explorer.classifier import DEFAULT_PATH, load_classifier
from explorer.data import load_image_tensors
from explorer.likelihood import elbo
from explorer.metrics import (
    balanced_indices,
    class_accuracy,
    classifier_features,
    feature_stats,
    frechet_distance,
    generate_samples,
)
from explorer.nets import count_parameters
from explorer.noisy_classifier import DEFAULT_PATH as NOISY_PATH
from explorer.noisy_classifier import load_noisy_classifier
from explorer.training import pick_device

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FULL_N, QUICK_N = 2000, 20
REFERENCE = {"method": "ddim", "steps": 50, "eta": 0.0}  # the guidance sweep's sampler and the cFID target's
QUICK_REFERENCE_STEPS = 10
GUIDANCES, QUICK_GUIDANCES = (0.0, 1.0, 3.0, 5.0), (0.0, 1.0, 3.0)
# Issue 15's targets at guidance 1: sampler -> (cFID at most this times the floor, class accuracy within this many
# points of the reference classifier's accuracy on the real test images: a faithful model scores what the data does)
TARGETS = {"ddim-50-eta1": (1.5, 1.5), "dpm-solver++-10": (2.0, 3.0)}


def label(options: dict) -> str:
    """A sampler config's name: ddpm-1000-beta, ddim-50-eta0.5, dpm-solver++-10, with -linspace for a timestep
    spacing other than the default trailing one, -g3 for guidance != 1, -cg3 for classifier guidance s = 3 and
    -bf16 for the network run in bf16 autocast."""
    name = f"{options['method']}-{options['steps']}"
    if options["method"] == "ddpm":
        name += f"-{options['variance']}"
    elif options["method"] == "ddim":
        name += f"-eta{options['eta']:g}"
    name += f"-{options['spacing']}" if options.get("spacing", "trailing") != "trailing" else ""
    name += f"-g{options['guidance']:g}" if options["guidance"] != 1 else ""
    name += f"-cg{options['classifier_scale']:g}" if options.get("classifier_scale") else ""
    return name + (f"-{options['precision']}" if options.get("precision", "fp32") != "fp32" else "")


def sampler_configs(T: int, quick: bool) -> tuple[list[dict], list[dict]]:
    """(samplers at guidance 1, guidance sweep of the reference sampler); step counts are capped at T. Quick:
    full-T DDPM, DPM-Solver++ at 10 calls and the reference DDIM at 10 steps."""
    if quick:
        reference = {**REFERENCE, "steps": QUICK_REFERENCE_STEPS}
        samplers = [{"method": "ddpm", "steps": T, "variance": "beta_tilde"}, reference,
                    {"method": "dpm-solver++", "steps": 10}]
        guidances = QUICK_GUIDANCES
    else:
        reference = REFERENCE
        samplers = [{"method": "ddpm", "steps": T, "variance": v} for v in ("beta", "beta_tilde")]
        samplers += [{"method": "ddim", "steps": s, "eta": e} for s in (10, 20, 50, 100) for e in (0.0, 0.5, 1.0)]
        samplers += [{"method": "dpm-solver++", "steps": s} for s in (5, 10, 20)]
        # the few-step solver with its last model call at t = 1 instead of T / N (its final step jumps to x0_hat)
        samplers += [{"method": "dpm-solver++", "steps": s, "spacing": "linspace"} for s in (5, 10, 20)]
        guidances = GUIDANCES
    capped = [{**o, "steps": min(o["steps"], T), "guidance": 1.0, "clip_x0": True} for o in samplers]
    sweep = [{**reference, "steps": min(reference["steps"], T), "guidance": w, "clip_x0": True} for w in guidances]
    return capped, sweep


def guided_configs(sweep: list[dict], scales: list[float]) -> list[dict]:
    """The classifier-guidance sweep: the reference sampler (the guidance sweep's) at w = 1 with classifier scale s
    for each of `scales`; s = 0 is the reference row itself."""
    reference = sweep[0] | {"guidance": 1.0}
    return [reference | ({"classifier_scale": s} if s else {}) for s in scales]


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def row_key(digest: str, judge: str, device: str, n: int, seed: int, batch_size: int, options: dict) -> str:
    """quality.json's key of one sampler row: checkpoint and classifier hashes, device type, N, seed, batch size
    and the sampler options."""
    return f"{digest}|{judge}|{device}|n={n}|seed={seed}|batch={batch_size}|" + json.dumps(options, sort_keys=True)


def floor_key(judge: str, n: int, seed: int) -> str:
    """quality.json's key of the real-vs-real floor at N."""
    return f"floor|{judge}|n={n}|seed={seed}"


def measured(path: Path, options: dict, n: int = FULL_N, results: Path = RESULTS) -> dict | None:
    """What an earlier run measured for a checkpoint and sampler options (as sampler_configs makes them) with
    the default classifier, seed and batch size, on any device: {"cfid", "accuracy", "floor"} (the floor at that
    N), or None if quality.json lacks the row or its floor."""
    cache = Cache(results / "quality.json")
    defaults = parse_args([])
    judge = "classifier=" + file_hash(Path(defaults.classifier))
    floor = cache.rows.get(floor_key(judge, n, defaults.seed))
    digest = file_hash(path)
    for device in ("cpu", "cuda", "mps"):
        row = cache.rows.get(row_key(digest, judge, device, n, defaults.seed, defaults.batch_size, options))
        if row and floor:
            return {"cfid": row["cfid"], "accuracy": row["accuracy"], "floor": floor["cfid"]}
    return None


def machine(device: torch.device) -> str:
    text = f"{platform.system()} {platform.machine()}, {cpu_name()}, torch threads: {torch.get_num_threads()}"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text + f", device {device.type}"


class Cache:
    """quality.json: measured rows by key, saved after every new row."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = json.loads(path.read_text()) if path.is_file() else {}

    def get_or_measure(self, key: str, measure) -> dict:
        if key not in self.rows:
            self.rows[key] = measure()
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
            tmp.replace(self.path)
        return self.rows[key]


def measure_sampler(model, classifier, options, test_stats, n, seed, batch_size, guide=None) -> dict:
    """cFID, class accuracy and seconds of n samples; options with a classifier_scale are guided by `guide`, and
    the network runs in options' "precision" (DiffusionModel.at_precision; fp32 if absent)."""
    start = time.perf_counter()
    sampler = {k: v for k, v in options.items() if k != "precision"}
    sampler |= {"classifier": guide} if options.get("classifier_scale") else {}
    images, labels = generate_samples(model.at_precision(options.get("precision", "fp32")), n, sampler, batch_size,
                                      seed)
    seconds = time.perf_counter() - start
    stats = feature_stats(classifier_features(classifier, images))
    accuracy = class_accuracy(classifier, images, labels) if labels is not None else None
    return {"cfid": frechet_distance(*stats, *test_stats), "accuracy": accuracy, "seconds": round(seconds, 2)}


def measure_elbo(model, x, y, t_stride, seed) -> dict:
    device = next(model.parameters()).device
    g = torch.Generator(device).manual_seed(seed)
    start = time.perf_counter()
    result = elbo(model, model.schedule, x.to(device), model.objective, y.to(device) if model.num_classes else None,
                  "beta_tilde", t_stride, g)
    return {"t": result.t.tolist(), "terms_bpd": result.terms_bpd.tolist(), "prior_bpd": result.prior_bpd,
            "total_bpd": result.total_bpd, "seconds": round(time.perf_counter() - start, 2)}


def write_elbo_csv(path: Path, curve: dict, T: int, t_stride: int) -> None:
    """t, the span of timesteps the term stands for (stratified sampling), and the term in bits/dim."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t", "span", "term_bpd"])
        for t, term in zip(curve["t"], curve["terms_bpd"]):
            span = 1 if t == 1 else min(t_stride, T + 1 - (2 + (t - 2) // t_stride * t_stride))
            writer.writerow([t, span, f"{term:.6g}"])


def fmt(value, spec=".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def target_rows(reports: list[dict], floors: dict[int, float], real_accuracy: float, n: int) -> list[list[str]]:
    """Rows of the targets table (TARGETS): target, checkpoint, measured, goal, met ("not measured" when `--only`
    left the sampler out)."""
    rows = []
    for r in reports:
        for sampler, (cfid_goal, points) in TARGETS.items():
            row = r["rows"].get(sampler)
            ratio = row["cfid"] / floors[n] if row else None
            gap = 100 * (row["accuracy"] - real_accuracy) if row else None
            rows.append([f"{sampler}: cFID / floor", r["name"], fmt(ratio), f"<= {cfid_goal}",
                         "not measured" if row is None else "yes" if ratio <= cfid_goal else "no"])
            rows.append([f"{sampler}: class accuracy - real test images' (points)", r["name"], fmt(gap, "+.1f"),
                         f"within +-{points}", "not measured" if row is None else "yes" if abs(gap) <= points else "no"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["(none measured: left out by --only)"]
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def report(args, command, device, classifier, n, floors, real_accuracy, reports, skipped) -> str:
    floor = floors[n]
    training = classifier.config.training
    lines = [
        "# Sample quality of the bundled checkpoints", "",
        f"Recorded {datetime.date.today().isoformat()} on {machine(device)}; torch {torch.__version__}.", "",
        f"Command of the run that wrote this report: `{command}` (rows of earlier runs: see the end).", "",
        f"cFID: Frechet distance between the reference classifier's {classifier.config.feature_dim}-dim "
        f"penultimate features of N = {n} class-balanced samples and N class-balanced test images "
        f"(`{Path(args.classifier).name}`, test accuracy {fmt(training.get('test_accuracy'), '.4f')}). "
        "Every sampler clips x0_hat to [-1, 1] at each step (DDPM's practice and the app's default: without it "
        "an eps model on the cosine schedule divides its error by sqrt(alpha_bar_T) = 4.9e-5 at t = T); samples "
        f"are clamped to [-1, 1] and rounded to 8 bits; every config starts from the same x_T "
        f"(seed {args.seed}). The floor is the cFID of N training images against the same N test images: "
        "a sampler cannot be expected to beat it at this N.", "",
        "Guidance convention: out = out_null + w (out_cond - out_null); w = 1 is the plain conditional model, "
        "w = 0 the unconditional one, w > 1 pushes further toward the class. Class accuracy is the share of "
        "samples the classifier labels as the class asked for.", "",
        *(f"**Real-vs-real floor (train vs test, N = {m}): {f:.3f}**" for m, f in sorted(floors.items())), "",
        f"**Real test images: class accuracy {real_accuracy:.3f}** (the N = {n} class-balanced test images the "
        "samples are compared with; the first row of every sampler table).", "",
        "## Targets", "",
        *table(["target", "checkpoint", "measured", "goal", "met"],
               target_rows(reports, floors, real_accuracy, n)), "",
    ]
    for r in reports:
        c = r["config"]
        lines += [f"## {r['name']}", "",
                  f"{c.objective} objective, {c.schedule} schedule, T = {c.T}, {c.step} training steps, "
                  f"{r['params']:,} parameters, sha256 {r['hash']}.", "",
                  "### Samplers (guidance 1)", ""]
        sampler_rows = [["real test images (the reference: train vs test images)", "-", n, fmt(floor, ".3f"), "1.00",
                         fmt(real_accuracy, ".3f"), "-"]]
        sampler_rows += [[key, row["calls"], row["n"], fmt(row["cfid"], ".3f"), fmt(row["cfid"] / floors[row["n"]]),
                          fmt(row["accuracy"], ".3f"), fmt(row["seconds"], ".1f")]
                         for key, row in r["rows"].items() if "samplers" in row["parts"]]
        lines += table(["sampler", "model calls", "N", "cFID", "cFID / floor at N", "class acc", "time s"],
                       sampler_rows)
        sweep_rows = [[fmt(row["guidance"], "g"), fmt(row["cfid"], ".3f"), fmt(row["cfid"] / floor),
                       fmt(row["accuracy"], ".3f"), fmt(row["seconds"], ".1f")]
                      for row in sorted(r["rows"].values(), key=lambda row: row["guidance"])
                      if "sweep" in row["parts"]]
        lines += ["", f"### Guidance sweep ({r['reference']}; w != 0, 1 doubles the batch "
                  "of each call)", "", *table(["guidance w", "cFID", "cFID / floor", "class acc", "time s"],
                                              sweep_rows), ""]
        guided_rows = [[fmt(row["classifier_scale"], "g"), fmt(row["cfid"], ".3f"), fmt(row["cfid"] / floor),
                        fmt(row["accuracy"], ".3f"), fmt(row["seconds"], ".1f")]
                       for row in sorted(r["rows"].values(), key=lambda row: row["classifier_scale"])
                       if "guided" in row["parts"]]
        if args.classifier_scales:
            lines += [f"### Classifier guidance sweep ({r['reference']}, w = 1; p_phi(y | x_t, t): "
                      f"`{Path(args.noisy_classifier).name}`; s != 0 adds its forward and backward to each call)", "",
                      *(table(["classifier s", "cFID", "cFID / floor", "class acc", "time s"], guided_rows)
                        if not r["misfit"] else [f"Not measured, the classifier does not fit this checkpoint: "
                                                 f"{r['misfit']}."]), ""]
        e = r["elbo"]
        if e is None:
            lines += ["### ELBO", "", "Not measured in this run (`--elbo-n 0`).", ""]
            continue
        lines += ["### ELBO", "",
                  f"**{e['total_bpd']:.3f} bits/dim** (negative ELBO, an upper bound on the NLL) on "
                  f"{args.elbo_n} test images conditioned on their labels, sigma^2 = beta_tilde, t stride "
                  f"{r['t_stride']} (one t drawn in each span of {r['t_stride']} steps stands for the span). "
                  f"Prior term L_T {e['prior_bpd']:.3g}, decoder L_0 {e['terms_bpd'][0]:.3f} bits/dim; "
                  f"{e['seconds']:.0f} s. Per-timestep terms: `elbo_{r['name']}.csv`.", ""]
    lines += ["## Reproducing every row", "",
              "Runs with different `--only` lists add up (quality.json keeps each row under its checkpoint hash and "
              "settings), so this report may hold rows of earlier runs. These commands measure exactly the rows "
              "above, one per checkpoint (with quality.json deleted: from scratch):", "", "```",
              *(" ".join(["python -m bench.quality", *settings_flags(args), "--checkpoints", shown(r["path"]),
                          "--only", ",".join(sorted(r["labels"]))]) for r in reports if r["labels"]), "```", ""]
    if skipped:
        lines += ["## Skipped files", "", *(f"- {why}" for why in skipped), ""]
    return "\n".join(lines)


def shown(path: Path) -> str:
    """A path as a command in the repository root would name it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def settings_flags(args) -> list[str]:
    """The command-line flags behind a row's cache key and the ELBO's (all but --checkpoints and --only)."""
    flags = ["--quick"] if args.quick else []
    flags += ["--n", str(args.n), "--ddpm-n", str(args.ddpm_n), "--elbo-n", str(args.elbo_n)]
    defaults = parse_args([])
    for name in ("t_stride", "seed", "batch_size", "device", "classifier", "noisy_classifier"):
        if getattr(args, name) != getattr(defaults, name):
            flags += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.classifier_scales:
        flags += ["--classifier-scales", ",".join(f"{s:g}" for s in args.classifier_scales)]
    if args.precisions != ["fp32"]:
        flags += ["--precisions", ",".join(args.precisions)]
    return flags


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help=f"samples per config (default {FULL_N}, quick {QUICK_N})")
    parser.add_argument("--checkpoints", nargs="*", default=None, help="files (default: every file in pretrained/)")
    parser.add_argument("--quick", action="store_true", help="tiny N and few configs, for a test")
    parser.add_argument("--ddpm-n", type=int, default=None,
                        help="samples for the full-T DDPM rows and their DPM-Solver++-10 / floor pair (default N)")
    parser.add_argument("--only", default=None, help="comma-separated config labels to run (e.g. ddim-50-eta0)")
    parser.add_argument("--classifier", default=str(DEFAULT_PATH))
    parser.add_argument("--classifier-scales", default=None,
                        help="comma-separated classifier-guidance scales s >= 0 (e.g. 0,1,3,10): adds their rows")
    parser.add_argument("--noisy-classifier", default=str(NOISY_PATH), help="p_phi(y | x_t, t) of those rows")
    parser.add_argument("--precisions", default="fp32",
                        help="comma-separated network precisions of the guidance-1 sampler rows "
                             f"({', '.join(PRECISIONS)}): bf16 adds each row run under bf16 autocast, labelled -bf16")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--elbo-n", type=int, default=None,
                        help="test images for the ELBO (default 1000, quick 8; 0: no ELBO)")
    parser.add_argument("--t-stride", type=int, default=None, help="ELBO t stride (default 10, quick T // 5)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.n = args.n or (QUICK_N if args.quick else FULL_N)
    args.ddpm_n = args.ddpm_n or args.n
    if min(args.n, args.ddpm_n) < 2:
        parser.error("--n and --ddpm-n must be at least 2 (a covariance needs two samples)")
    if args.elbo_n is None:
        args.elbo_n = 8 if args.quick else 1000
    if args.elbo_n < 0:
        parser.error("--elbo-n must be 0 (no ELBO) or more")
    try:
        args.classifier_scales = [float(s) for s in args.classifier_scales.split(",")] if args.classifier_scales \
            else []
    except ValueError:
        parser.error(f"--classifier-scales: comma-separated numbers, got {args.classifier_scales!r}")
    if any(not s >= 0 for s in args.classifier_scales):
        parser.error("--classifier-scales must all be >= 0")
    args.precisions = args.precisions.split(",")
    if not set(args.precisions) <= set(PRECISIONS) or "fp32" not in args.precisions:
        parser.error(f"--precisions: comma-separated, among {', '.join(PRECISIONS)} and with fp32 (the targets' rows), "
                     f"got {','.join(args.precisions)!r}")
    return args


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = " ".join(["python", "-m", "bench.quality", *argv])
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    classifier = load_classifier(args.classifier, device)
    judge = "classifier=" + file_hash(Path(args.classifier))
    guide = load_noisy_classifier(args.noisy_classifier, device) if args.classifier_scales else None
    steering = "noisy_classifier=" + file_hash(Path(args.noisy_classifier)) if guide else None
    dataset = classifier.config.dataset
    x_train, y_train, _ = load_image_tensors(dataset, train=True, root=args.data_root)
    x_test, y_test, _ = load_image_tensors(dataset, train=False, root=args.data_root)
    cache = Cache(out_dir / "quality.json")
    test_stats, floors = {}, {}
    for m in {args.n, args.ddpm_n}:
        test_stats[m] = feature_stats(classifier_features(classifier, x_test[balanced_indices(y_test, m, args.seed)]))

        def floor(m=m):
            train = feature_stats(classifier_features(classifier, x_train[balanced_indices(y_train, m, args.seed)]))
            return {"cfid": frechet_distance(*train, *test_stats[m])}
        floors[m] = cache.get_or_measure(floor_key(judge, m, args.seed), floor)["cfid"]
    real = balanced_indices(y_test, args.n, args.seed)
    real_accuracy = class_accuracy(classifier, x_test[real].to(device), y_test[real].to(device))
    elbo_idx = balanced_indices(y_test, args.elbo_n, args.seed + 1)
    only = set(args.only.split(",")) if args.only else None

    paths = [Path(p) for p in args.checkpoints] if args.checkpoints else sorted(PRETRAINED_DIR.glob("*.safetensors"))
    reports, skipped = [], []
    for path in paths:
        try:
            config = read_config(path)
        except CheckpointError as err:
            skipped.append(str(err))
            continue
        if config.net != "unet" or config.dataset != dataset:
            skipped.append(f"{path.name}: a {config.net} model of {config.dataset}; the classifier judges {dataset}")
            continue
        if config.class_names != classifier.config.class_names:
            skipped.append(f"{path.name}: not conditional on the classifier's classes (class accuracy and the "
                           "guidance sweep need them)")
            continue
        model = load_model(path, device)
        digest = file_hash(path)
        samplers, sweep = sampler_configs(config.T, args.quick)
        samplers += [o | {"precision": p} for p in args.precisions if p != "fp32" for o in samplers]
        guided = guided_configs(sweep, args.classifier_scales)
        known = {label(o) for o in samplers + sweep + guided}
        misfit = guide.config.misfit(config) if guide else ""
        guided = [] if misfit else guided  # the report says why not
        if only is not None and not only <= known:
            raise ValueError(f"--only: unknown config label(s) {', '.join(sorted(only - known))} for {path.name}; "
                             f"its configs: {', '.join(sorted(known))}")
        reference = label(sweep[0] | {"guidance": 1.0})
        # (options, part, N): full-T DDPM at --ddpm-n, with DPM-Solver++-10 and the reference sampler there too
        jobs = [(o, "samplers", args.ddpm_n if o["method"] == "ddpm" else args.n) for o in samplers]
        jobs += [(o, "sweep", args.n) for o in sweep]
        jobs += [(o, "guided", args.n) for o in guided]
        if args.ddpm_n != args.n:
            jobs += [(o, "samplers", args.ddpm_n) for o in samplers if label(o) in ("dpm-solver++-10", reference)]
        rows, labels = {}, set()
        for options, part, n in jobs:
            name = label(options) + (f"@N={n}" if n != args.n and options["method"] != "ddpm" else "")
            keyed = options | {"steered_by": steering} if options.get("classifier_scale") else options
            key = row_key(digest, judge, device.type, n, args.seed, args.batch_size, keyed)
            if only is not None and label(options) not in only and key not in cache.rows:
                continue  # left out by --only and not measured before (rows measured earlier stay in the report)
            if name not in rows:  # the sweeps' w = 1 and s = 0 are also a sampler row: measured once
                row = cache.get_or_measure(key, lambda o=options, n=n: measure_sampler(
                    model, classifier, o, test_stats[n], n, args.seed, args.batch_size, guide))
                rows[name] = {**row, "calls": options["steps"], "guidance": options["guidance"], "n": n,
                              "classifier_scale": options.get("classifier_scale", 0.0), "parts": []}
            rows[name]["parts"].append(part)
            labels.add(label(options))
        t_stride = args.t_stride or (max(1, config.T // 5) if args.quick else 10)
        curve = None
        if args.elbo_n:
            curve = cache.get_or_measure(f"{digest}|{device.type}|elbo|n={args.elbo_n}|seed={args.seed}|"
                                         f"stride={t_stride}", lambda: measure_elbo(
                                             model, x_test[elbo_idx], y_test[elbo_idx], t_stride, args.seed))
            write_elbo_csv(out_dir / f"elbo_{path.stem}.csv", curve, config.T, t_stride)
        reports.append({"name": path.stem, "path": path, "config": config, "hash": digest,
                        "params": count_parameters(model), "rows": rows, "labels": labels, "reference": reference,
                        "elbo": curve, "t_stride": t_stride, "misfit": misfit})

    md = out_dir / "quality.md"
    md.write_text(report(args, command, device, classifier, args.n, floors, real_accuracy, reports, skipped))
    return md


if __name__ == "__main__":
    written = main()
    print(written.read_text().split("## Targets")[1].split("\n## ")[0].strip())
    print(f"written: {written}")
