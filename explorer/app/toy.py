"""The 2D toy lab: the whole distribution at once. The data cloud melting into a Gaussian (forward), particles
walking back along their paths with the field the network learned (reverse), and a network trained live.

Timesteps follow explorer.schedules: t = 0..T, t = 0 is data, t = T is (nearly) N(0, I). All the maths is
explorer's: `forward.q_sample` moves the cloud, `forward.q_marginal_mixture` and `forward.mixture_log_prob_grid`
give the exact marginal q(x_t) of the toy's Gaussian mixture (`data.toy_mixture`, seed 003) for the contours,
`samplers.sample` runs the reverse process (one sampler loop, the image view's), `samplers.make_denoiser` and
`parameterization.score_from_eps` give the field, `metrics` the distances, `training.Trainer` the live training.
This module validates the controls, picks the model, draws (explorer.app.plots) and streams.

Models: a bundled checkpoint `pretrained/toy_<dataset>_<objective>.safetensors` (cosine schedule, T = 1000),
or the one trained here in this session. A trained model lives in a per-session temporary file; the session
keeps only its path (gr.State), the model itself is loaded (and cached, read-only) from that file like any
checkpoint, and the file is deleted when the session ends or after KEEP_S.

Stop buttons (explorer.app.stops): a reverse run ends before its next model call, live training before its next
step; both end by themselves (their events are not cancelled), and a stopped training keeps its last update.

Seeds: the forward cloud is x_0 = sample_toy(dataset, n, seed) with eps from torch.Generator().manual_seed(seed);
the reverse run draws x_T and then the sampler's noise from one generator seeded with the seed; the first
HIGHLIGHT particles are the highlighted ones. Distances compare with fresh data (seed DATA_SEED); the
data-vs-data floor is the same distance between two other fresh draws of the same size (averaged over
FLOOR_DRAWS pairs; the energy distance is unbiased, so for two draws of the data it scatters around 0 and the
floor is its mean absolute value).

Clipping: x0_hat = (x_t - b_t eps_hat) / a_t divides the network's error by a_t, which is 5e-5 at t = T of the
cosine schedule with T = 1000; an eps-predicting network's first steps would throw particles far away. With
"clip" on, x0_hat is clamped to [-CLIP, CLIP] (the toys lie within about 2.3 of 0), as images clip to [-1, 1].
"""
from __future__ import annotations

import contextlib
import functools
import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from explorer import checkpoint as checkpoints
from explorer.app import plots, runtime
from explorer.app.messages import METHOD_NAMES, choice, for_visitor, number, sampler_name, whole
from explorer.app.options import UserInputError
from explorer.app.stops import Stops, until
from explorer.checkpoint import DiffusionModel, ModelConfig, list_checkpoints, load_model, read_config, save_model
from explorer.data import TOY_DATASETS, sample_toy, toy_info, toy_mixture
from explorer.forward import mixture_log_prob_grid, q_marginal_mixture, q_sample
from explorer.metrics import energy_distance, sliced_wasserstein
from explorer.parameterization import OBJECTIVES, score_from_eps
from explorer.samplers import METHODS, SPACINGS, VARIANCES, make_denoiser, run, sample
from explorer.schedules import SCHEDULES, NoiseSchedule, make_schedule
from explorer.training import TrainConfig, Trainer

TITLE = "2D toy lab"
PRETRAINED = checkpoints.PRETRAINED_DIR
EXTENT = 3.0  # every plot shows [-EXTENT, EXTENT]^2
GRID = 80  # contour grid points per side
AXIS = np.linspace(-EXTENT, EXTENT, GRID, dtype=np.float32)
FIELD_GRID = 20  # arrows per side, at the centres of a FIELD_GRID x FIELD_GRID tiling of the square
_centres = ((np.arange(FIELD_GRID, dtype=np.float32) + 0.5) / FIELD_GRID * 2 - 1) * EXTENT
FIELD_POINTS = np.stack(np.meshgrid(_centres, _centres, indexing="xy"), axis=-1).reshape(-1, 2)
DENSITY_RANGE = 12.0  # contours span log q(x_t) from its maximum down by this much
CLIP = 3.0  # |x0_hat| <= CLIP when clipping
T_CHOICES = (1000, 200, 50)
SOURCES = ("pretrained", "trained here")
FIELDS = ("score", "eps", "none")
UNCONDITIONAL = "none (unconditional)"
MIXED = "mixed (one of each class in turn)"
PARTICLES = (100, 5000)
MAX_FRAMES = 25  # frames streamed per run besides x_T
HIGHLIGHT = 10  # particles whose paths are drawn
METRIC_N = 2000  # at most this many samples are compared with as many fresh data points
PROJECTIONS = 256  # directions of the sliced Wasserstein distance
DATA_SEED = 10_000  # fresh data for the distances; the floor's pairs use DATA_SEED + 1, + 2, ...
FLOOR_DRAWS = 3
MAX_GUIDANCE = 5.0
TRAIN_STEPS = (50, 20000)
# Live training: a larger learning rate than train.py's default and a short EMA, so a few hundred steps fit;
# unconditional, because with label dropout only a tenth of each batch trains the null class that unconditional
# sampling uses (two moons, 1000 steps: energy distance 0.0017 unconditional, 0.0034 to 0.008 conditional).
LIVE = {"batch_size": 256, "lr": 4e-3, "warmup": 50, "ema_decay": 0.99, "conditional": False}
UPDATE_S = 0.5  # seconds between streamed updates while training
PREVIEW_N = 1000  # samples drawn for each training update (DDIM, PREVIEW_STEPS calls, clipped)
PREVIEW_STEPS = 25
KEEP_S = 3600  # trained checkpoints of sessions idle longer than this are deleted
OUT_DIR = Path(tempfile.gettempdir()) / "diffusion-explorer-toy"
DEFAULTS = {"dataset": "two-moons", "schedule": "cosine", "T": 1000, "objective": "v", "source": "pretrained",
            "t": 300, "n": 2000, "seed": 0, "field": "score", "method": "ddim", "steps": 50, "eta": 0.0,
            "spacing": "trailing", "variance": "beta_tilde", "label": UNCONDITIONAL, "guidance": 1.0,
            "clip": True, "train_steps": 1000}
SETUP = ("dataset", "schedule", "T", "objective", "source")
SAMPLER = ("n", "seed", "field", "method", "steps", "eta", "spacing", "variance", "label", "guidance", "clip")
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


# --- checking the controls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What the lab is about: the toy, the forward process and the model (bundled or trained here)."""
    dataset: str
    schedule: str
    T: int
    objective: str
    source: str
    trained: str | None  # this session's trained checkpoint, if any


def setup(dataset, schedule, T, objective, source, trained) -> Setup:
    choice("dataset", dataset, TOY_DATASETS)
    choice("schedule", schedule, SCHEDULES)
    choice("objective", objective, OBJECTIVES)
    choice("model", source, SOURCES)
    return Setup(dataset, schedule, whole("T", T, 10, 4000), objective, source, trained or None)


@dataclass(frozen=True)
class Sampler:
    """The reverse process's options (those of samplers.sample) and what to show."""
    n: int
    seed: int
    field: str
    method: str
    steps: int
    eta: float
    spacing: str
    variance: str
    label: str
    guidance: float
    clip: bool


def sampler(su: Setup, n, seed, field_kind, method, steps, eta, spacing, variance, label, guidance, clip) -> Sampler:
    classes = toy_info(su.dataset)["class_names"]
    label = label or UNCONDITIONAL
    if classes:
        choice("class", label, [UNCONDITIONAL, MIXED, *classes])
    elif label != UNCONDITIONAL:
        raise UserInputError(f"{su.dataset} has no classes: leave the class on {UNCONDITIONAL!r}")
    guidance = number("guidance", guidance, 0.0, MAX_GUIDANCE)
    if label == UNCONDITIONAL and guidance != 1:
        raise UserInputError("guidance needs a class: choose one (or mixed), or set guidance back to 1")
    return Sampler(whole("the number of particles", n, *PARTICLES), whole("seed", seed, 0, 2 ** 63 - 1),
                   choice("field", field_kind, FIELDS), choice("sampler", method, METHODS),
                   whole("steps", steps, 1, su.T), number("eta", eta, 0.0, 1.0),
                   choice("spacing", spacing, SPACINGS),
                   choice("variance", variance, VARIANCES), label, guidance, bool(clip))


# --- models --------------------------------------------------------------------------------------------------

def is_toy(config: ModelConfig) -> bool:
    return config.net == "mlp" and list(config.sample_shape) == [2]


@functools.lru_cache(maxsize=1)
def bundled() -> tuple[tuple[Path, ModelConfig], ...]:
    """The bundled toy checkpoints with their configs (read from the metadata only)."""
    return tuple((path, config) for path, config in list_checkpoints(PRETRAINED) if is_toy(config))


def matches(config: ModelConfig, su: Setup) -> bool:
    return (config.dataset, config.schedule, config.T, config.objective) == (su.dataset, su.schedule, su.T,
                                                                              su.objective)


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime_ns: int) -> DiffusionModel:
    return load_model(path, runtime.DEVICE)


def model_at(path: Path) -> DiffusionModel:
    """A checkpoint loaded once and cached (read-only); a file rewritten by training is loaded again."""
    return _load(str(path), path.stat().st_mtime_ns)


def model_path(su: Setup) -> Path:
    """The checkpoint for this setup, or UserInputError saying what to do."""
    what = f"{su.dataset}, predicting {su.objective}, {su.schedule} schedule, T = {su.T}"
    if su.source == "trained here":
        if su.trained is None or not Path(su.trained).is_file():
            raise UserInputError("no model trained in this session yet: press Train (or choose the pretrained model)")
        config = read_config(su.trained)
        if not matches(config, su):
            raise UserInputError(f"the model trained here is for {config.dataset}, predicting {config.objective}, "
                                 f"{config.schedule} schedule, T = {config.T}, not {what}: train again, or set "
                                 "the controls back")
        return Path(su.trained)
    for path, config in bundled():
        if matches(config, su):
            return path
    have = sorted({f"{c.schedule} T = {c.T}" for _, c in bundled() if c.dataset == su.dataset}) or ["none"]
    raise UserInputError(f"no pretrained model for {what} (bundled for {su.dataset}: {', '.join(have)}): "
                         "press Train to train one here")


def model_info(su: Setup) -> str:
    try:
        path = model_path(su)
    except UserInputError as err:
        return f"**No model**: {err}."
    c = read_config(path)
    where = f"`{path.name}` (bundled)" if su.source == "pretrained" else "the model trained here"
    classes = f"classes: {', '.join(c.class_names)}" if c.class_names else "unconditional"
    return f"Model: {where}, {c.step} training steps, {classes}."


# --- the forward process -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _schedule(name: str, T: int) -> NoiseSchedule:
    return make_schedule(name, T)


@functools.lru_cache(maxsize=1024)
def marginal(dataset: str, schedule: str, T: int, t: int) -> np.ndarray:
    """log q(x_t) of the toy on the GRID x GRID plot grid (rows along y), float32, clipped to DENSITY_RANGE
    below its maximum (seed 003: the data convolved with N(0, (1 - alpha_bar_t) I) after scaling)."""
    mixture = q_marginal_mixture(_schedule(schedule, T), t, *toy_mixture(dataset))
    axis = torch.from_numpy(AXIS).double()
    log_q = mixture_log_prob_grid(axis, axis, *mixture)
    return log_q.clamp(min=float(log_q.max()) - DENSITY_RANGE).numpy().astype(np.float32)


@functools.lru_cache(maxsize=16)
def cloud(dataset: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x_0 (n, 2) from the toy, its labels and eps (n, 2), all from the seed."""
    x0, y = sample_toy(dataset, n, generator=seed)
    eps = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    return x0, y, eps


@functools.lru_cache(maxsize=64)
def data(dataset: str, label: int | None, n: int, seed: int) -> torch.Tensor:
    """n fresh points of the toy (of class `label`, or all classes for None), float32 (n, 2)."""
    if label is None:
        return sample_toy(dataset, n, generator=seed)[0]
    gen, parts, have = torch.Generator().manual_seed(seed), [], 0
    while have < n:
        x, y = sample_toy(dataset, 2 * n, generator=gen)
        parts.append(x[y == label])
        have += len(parts[-1])
    return torch.cat(parts)[:n]


@functools.lru_cache(maxsize=64)
def floor(dataset: str, label: int | None, n: int) -> tuple[float, float]:
    """The distances between two fresh draws of n data points, averaged over FLOOR_DRAWS pairs:
    (mean |energy distance|, mean sliced W2), the size sampling noise alone gives them."""
    pairs = [(data(dataset, label, n, DATA_SEED + 2 * i + 1), data(dataset, label, n, DATA_SEED + 2 * i + 2))
             for i in range(FLOOR_DRAWS)]
    energy = sum(abs(energy_distance(a, b)) for a, b in pairs) / FLOOR_DRAWS
    sliced = sum(sliced_wasserstein(a, b, PROJECTIONS, torch.Generator().manual_seed(0)) for a, b in pairs)
    return energy, sliced / FLOOR_DRAWS


@dataclass(frozen=True)
class Quality:
    n: int
    energy: float
    sliced: float
    energy_floor: float
    sliced_floor: float


def quality(dataset: str, label: int | None, x: torch.Tensor, n: int = METRIC_N) -> Quality:
    """The first min(n, len(x)) samples against as many fresh data points, with the data-vs-data floor."""
    n = min(n, len(x))
    x, ref = x[:n].float().cpu(), data(dataset, label, n, DATA_SEED)
    sliced = sliced_wasserstein(x, ref, PROJECTIONS, torch.Generator().manual_seed(0))
    return Quality(n, energy_distance(x, ref), sliced, *floor(dataset, label, n))


def quality_text(q: Quality, against: str) -> str:
    return (f"**Distance to the data** ({q.n} samples against {q.n} fresh points of {against}): energy distance "
            f"**{q.energy:.4f}** (two fresh data draws: {q.energy_floor:.4f}), sliced W₂ **{q.sliced:.3f}** (data "
            f"vs data: {q.sliced_floor:.3f}). Both are 0 for a perfect match; values near the data-vs-data "
            "floor are as close as the sample size can tell.")


def check_classes(model: DiffusionModel, s: Sampler, name: str) -> None:
    """A class (and guidance) needs a class-conditional model."""
    if s.label != UNCONDITIONAL and not model.class_names:
        raise UserInputError(f"{name} is unconditional (live training ignores class labels): set the class to "
                             f"{UNCONDITIONAL!r}, or choose the pretrained model for classes and guidance")


def denoiser(model: DiffusionModel, s: Sampler, n: int):
    """samplers.make_denoiser for n points with the run's class, guidance and clipping."""
    y = labels(s, model.class_names, n, next(model.parameters()).device)
    return make_denoiser(model, model.schedule, model.objective, y, s.guidance if y is not None else 1.0,
                         model.null_label, CLIP if s.clip else False)


def labels(s: Sampler, classes: list[str], n: int, device) -> torch.Tensor | None:
    """None (the null class: unconditional), one class for all, or classes 0, 1, ..., K - 1, 0, ... (MIXED)."""
    if s.label == UNCONDITIONAL or not classes:
        return None
    if s.label == MIXED:
        return torch.arange(n, device=device) % len(classes)
    return torch.full((n,), classes.index(s.label), dtype=torch.long, device=device)


def field(model: DiffusionModel, s: Sampler, t: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The learned field at the FIELD_POINTS at timestep max(t, 1): eps_hat, or the score -eps_hat / b_t
    (parameterization.score_from_eps). MIXED shows the unconditional field. Returns (origins, vectors, t)."""
    t = max(int(t), 1)
    shown = s if s.label != MIXED else replace(s, label=UNCONDITIONAL, guidance=1.0)
    device = next(model.parameters()).device
    pred = denoiser(model, shown, len(FIELD_POINTS))(torch.from_numpy(FIELD_POINTS).to(device), t)
    b = float(model.schedule.sqrt_one_minus_alpha_bars[t])
    vectors = pred.eps if s.field == "eps" else score_from_eps(pred.eps, b)
    return FIELD_POINTS, vectors.float().cpu().numpy(), t


def field_name(s: Sampler, t: int) -> str:
    return f"ε̂ at t = {t}" if s.field == "eps" else f"score −ε̂/√(1−ᾱ_t) at t = {t}"


def _colours(dataset: str, y: torch.Tensor | None) -> np.ndarray | None:
    return y.cpu().numpy() if y is not None and toy_info(dataset)["class_names"] else None


@torch.inference_mode()
def forward_view(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta,
                 spacing, variance, label, guidance, clip):
    """The cloud at t with the exact q(x_t) behind it and, when a model is there, its field at t.
    Returns (figure, text)."""
    su = setup(dataset, schedule, T, objective, source, trained)
    s = sampler(su, n, seed, field_kind, method, min(steps, su.T), eta, spacing, variance, label, guidance, clip)
    t = whole("t", t, 0, su.T)
    sched = _schedule(su.schedule, su.T)
    x0, y, eps = cloud(su.dataset, s.n, s.seed)
    x_t = q_sample(sched, x0, t, eps)  # seed 001, eq. 1
    arrows, note = None, ""
    if s.field != "none":
        try:
            path = model_path(su)
            model = model_at(path)
            check_classes(model, s, f"`{path.name}`")
        except UserInputError as err:
            note = f" No field: {err}."
        else:
            origins, vectors, t_field = field(model, s, t)
            arrows = (origins, vectors)
            note = f" Arrows: the learned {field_name(s, t_field)}" + (
                " (the model is not asked at t = 0)." if t == 0 else ".")
    ab = float(sched.alpha_bars[t])
    figure = plots.toy_plane(AXIS, marginal(su.dataset, su.schedule, su.T, t), x_t.numpy(), _colours(su.dataset, y),
                             None, arrows, f"Forward: x_t at t = {t} of {su.T}  (ᾱ_t = {ab:.4f})", EXTENT,
                             {"points": "x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε", "field": "learned field"})
    k = min(s.n, 1000)
    gauss = torch.randn(k, 2, generator=torch.Generator().manual_seed(DATA_SEED))
    ed = energy_distance(x_t[:k], gauss)
    text = (rf"**t = {t}**: $\bar\alpha_t = {ab:.4f}$. Each point is $x_t = \sqrt{{\bar\alpha_t}}\,x_0 + "
            rf"\sqrt{{1-\bar\alpha_t}}\,\varepsilon$ (seed 001, eq. 1). Behind the cloud: the exact "
            r"$\log q(x_t)$, the data dilated by $\sqrt{\bar\alpha_t}$ and blurred by "
            r"$\mathcal N(0, (1-\bar\alpha_t) I)$ (seed 003): each Gaussian $\mathcal N(m_j, s_j^2)$ of the toy's "
            rf"mixture becomes $\mathcal N(\sqrt{{\bar\alpha_t}}\,m_j,\ \bar\alpha_t s_j^2 + 1 - \bar\alpha_t)$. "
            f"Energy distance of {k} points of the cloud to as many N(0, I) draws: {ed:.4f} (0 once the data "
            "is gone)." + note)
    return figure, text


# --- the reverse process -------------------------------------------------------------------------------------

def shown(steps: int) -> list[int]:
    """The steps after which a frame is streamed: every k-th, k = ceil(steps / MAX_FRAMES), and the last."""
    k = math.ceil(steps / MAX_FRAMES)
    return [j for j in range(1, steps + 1) if j % k == 0 or j == steps]


def describe(s: Sampler) -> str:
    what = sampler_name(s.method, s.variance, s.eta)
    extra = "" if s.label == UNCONDITIONAL else f", class {s.label}, guidance {s.guidance:g}"
    return f"{what}, {s.steps} steps ({s.spacing}){extra}{', x̂₀ clipped' if s.clip else ''}"


@torch.inference_mode()
def reverse_frames(su: Setup, s: Sampler, stop: threading.Event | None = None):
    """Run the sampler from x_T and yield (figure, text) for x_T and after every step in `shown`; the last
    text adds the distance to the data. Once `stop` is set no further model call is made."""
    start = time.perf_counter()
    path = model_path(su)
    model = model_at(path)
    check_classes(model, s, f"`{path.name}`")
    classes = model.class_names
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(s.seed)
    x_T = torch.randn(s.n, 2, generator=gen)
    y = labels(s, classes, s.n, device)
    colours = _colours(su.dataset, y)
    paths = [x_T[:HIGHLIGHT].numpy()]
    head = f"**{s.n} particles**, {describe(s)}, seed {s.seed}, model `{path.name}`"

    def frame(x: torch.Tensor, t: int, text: str, after: str = ""):
        arrows, legend = None, {}
        if s.field != "none":
            origins, vectors, t_field = field(model, s, t)
            arrows, legend = (origins, vectors), {"field": field_name(s, t_field)}
        title = f"Reverse: x_t at t = {t} of {su.T}"
        figure = plots.toy_plane(AXIS, marginal(su.dataset, su.schedule, su.T, t), x.float().cpu().numpy(), colours,
                                 np.stack(paths, axis=1), arrows, title, EXTENT,
                                 {"density": "exact log q(x_t) of the data", **legend})
        return figure, f"{head}\n\n{text} · {time.perf_counter() - start:.2f} s{after}"

    yield frame(x_T, su.T, f"x_T ~ N(0, I) at t = {su.T}")
    show = set(shown(s.steps))
    sampling = sample(model, model.schedule, x_T.to(device), method=s.method, steps=s.steps, eta=s.eta,
                      objective=model.objective, y=y, guidance=s.guidance, spacing=s.spacing, variance=s.variance,
                      clip_x0=CLIP if s.clip else False, generator=gen)
    for step in until(sampling, stop):
        paths.append(step.x_next[:HIGHLIGHT].float().cpu().numpy())
        j = step.i + 1
        if j not in show:
            continue
        text = f"Step {j} of {step.n}: the model saw t = {step.t}, σ = {step.sigma:.4f}, now at t = {step.t_next}"
        if j < step.n:
            yield frame(step.x_next, step.t_next, text)
        else:
            label = None if s.label in (UNCONDITIONAL, MIXED) else classes.index(s.label)
            against = su.dataset if label is None else f"{su.dataset}, class {s.label}"
            q = quality(su.dataset, label, step.x_next)
            yield frame(step.x_next, 0, f"**Done**: {text}", f"\n\n{quality_text(q, against)}")


# --- live training -------------------------------------------------------------------------------------------

def _session_folder(trained: str | None) -> Path:
    """This session's folder under OUT_DIR (a new one for a session that has none); folders untouched for
    KEEP_S are deleted."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if trained and Path(trained).parent.parent == OUT_DIR and Path(trained).parent.is_dir():
        folder = Path(trained).parent
        folder.touch()
        return folder
    cutoff = time.time() - KEEP_S
    for old in OUT_DIR.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=OUT_DIR))


def forget(trained: str | None) -> None:
    """gr.State's delete callback: the session ended, its trained checkpoint goes."""
    if trained and Path(trained).parent.parent == OUT_DIR:
        shutil.rmtree(Path(trained).parent, ignore_errors=True)


@dataclass
class TrainUpdate:
    """What training shows after `step` steps: figures, text and the checkpoint path (saved at each update)."""
    step: int
    total: int
    seconds: float
    curves: object
    cloud: object
    text: str
    path: str
    quality: Quality


@torch.enable_grad()  # grad mode is per thread and Gradio resumes generators on any thread: set it each time
def train_updates(su: Setup, steps: int, seed: int, trained: str | None, stop: threading.Event | None = None):
    """Train the MLP on the toy for `steps` steps (training.Trainer, LIVE options) and yield a TrainUpdate
    after every UPDATE_S seconds of training (or four times as long as an update takes) and the last step: the
    loss curve, PREVIEW_N samples of the EMA weights (DDIM, PREVIEW_STEPS steps, clipped, fixed noise) and
    their distance to the data. The EMA weights are saved to this session's checkpoint at each update, so a
    run stopped (`stop` set: no further step) keeps its last one."""
    steps = whole("training steps", steps, *TRAIN_STEPS)
    seed = whole("seed", seed, 0, 2 ** 63 - 1)
    folder = _session_folder(trained)
    out = folder / f"toy_{su.dataset}_{su.objective}_{su.schedule}_T{su.T}.safetensors"
    for old in folder.glob("*.safetensors"):
        if old != out:
            old.unlink()
    config = TrainConfig(dataset=su.dataset, objective=su.objective, schedule=su.schedule, T=su.T, steps=steps,
                         seed=seed, device=runtime.DEVICE.type, compile="off", out=str(out),
                         run_dir=str(folder / "run"), sample_every=0, **LIVE)
    trainer = Trainer(config, force=True)
    device = trainer.device
    x_T = torch.randn(PREVIEW_N, 2, generator=torch.Generator().manual_seed(seed)).to(device)
    losses, smooth, evals, distances = [], [], [], []
    elapsed, next_update = 0.0, UPDATE_S
    while trainer.step < steps and not (stop and stop.is_set()):
        start = time.perf_counter()
        loss = float(trainer.train_step())
        elapsed += time.perf_counter() - start
        if not math.isfinite(loss):
            raise UserInputError(f"the loss became {loss} at step {trainer.step}; try again with another seed")
        losses.append(loss)
        smooth.append(loss if len(smooth) == 0 else 0.98 * smooth[-1] + 0.02 * loss)
        if elapsed < next_update and trainer.step < steps:
            continue
        update_start = time.perf_counter()
        trainer.elapsed = elapsed
        with torch.no_grad():
            model = trainer.ema_model()
            x = run(sample(model, model.schedule, x_T, method="ddim", steps=min(PREVIEW_STEPS, su.T), objective=su.objective,
                           clip_x0=CLIP))
        q = quality(su.dataset, None, x, PREVIEW_N)
        evals.append(trainer.step)
        distances.append(q.sliced)
        save_model(out, trainer.ema, trainer.model_config())
        curves = plots.training_curves(np.arange(1, len(losses) + 1, dtype=np.float32), np.array(losses, np.float32),
                                       np.array(smooth, np.float32), np.array(evals, np.float32),
                                       np.array(distances, np.float32), q.sliced_floor, steps)
        pic = plots.toy_plane(AXIS, marginal(su.dataset, su.schedule, su.T, 0), x.float().cpu().numpy(), None, None,
                              None, f"Samples of the EMA weights after {trainer.step} steps", EXTENT,
                              {"density": "the data's log q(x_0)", "points": f"{PREVIEW_N} samples"})
        done = trainer.step == steps
        text = (f"{'**Done**: ' if done else ''}step {trainer.step} of {steps}, {elapsed:.1f} s of training, loss "
                f"(running average) {smooth[-1]:.4f}. {PREVIEW_N} samples (DDIM, {min(PREVIEW_STEPS, su.T)} steps): "
                f"energy distance {q.energy:.4f} (data vs data {q.energy_floor:.4f}), sliced W₂ {q.sliced:.3f} "
                f"(data vs data {q.sliced_floor:.3f}).")
        if done:
            text += " Saved: **Generate** now samples this model (model: trained here); download it below."
        # the next update after UPDATE_S more seconds of training, or more if updating is slow (a busy CPU):
        # updates take at most about a fifth of the time
        next_update = elapsed + max(UPDATE_S, 4 * (time.perf_counter() - update_start))
        yield TrainUpdate(trainer.step, steps, elapsed, curves, pic, text, str(out), q)


# --- Gradio handlers -----------------------------------------------------------------------------------------


@for_visitor
def redraw(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta, spacing,
           variance, label, guidance, clip):
    """The forward picture and its text for these controls, and which model the lab uses."""
    figure, text = forward_view(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method,
                                steps, eta, spacing, variance, label, guidance, clip)
    return figure, text, model_info(setup(dataset, schedule, T, objective, source, trained))


@for_visitor
def set_T(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta, spacing,
          variance, label, guidance, clip, T_before):
    """A new T: t keeps its fraction of the process, the sampler's steps stay within T."""
    T = whole("T", T, 10, 4000)
    t = min(T, round(whole("t", t, 0, T_before) * T / T_before))
    steps = min(int(steps), T)
    out = redraw(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta,
                 spacing, variance, label, guidance, clip)
    return gr.Slider(maximum=T, value=t), gr.Slider(maximum=T, value=steps), T, *out


@for_visitor
def choose_dataset(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta,
                   spacing, variance, label, guidance, clip):
    """A new toy: its classes (if any) in the class list, then redraw."""
    classes = toy_info(choice("dataset", dataset, TOY_DATASETS))["class_names"]
    choices = [UNCONDITIONAL, *([MIXED, *classes] if classes else [])]
    label = label if label in choices else UNCONDITIONAL
    guidance = guidance if label != UNCONDITIONAL else 1.0
    out = redraw(dataset, schedule, T, objective, source, trained, t, n, seed, field_kind, method, steps, eta,
                 spacing, variance, label, guidance, clip)
    return (gr.Dropdown(choices=choices, value=label, visible=bool(classes)),
            gr.Slider(value=guidance, visible=bool(classes)), *out)


STOPS = Stops()  # Generate's and Train's runs
STOPPED = "**Stopped.**"


def generate(dataset, schedule, T, objective, source, trained, n, seed, field_kind, method, steps, eta, spacing,
             variance, label, guidance, clip, request: gr.Request = None):
    """Stream a reverse run (reverse_frames): (figure, status) for x_T and every shown step; a stopped run
    ends with STOPPED, the Stop button's words."""
    with STOPS.running(request, "generate") as running:  # first: the click's entry is taken even if input is bad
        su = setup(dataset, schedule, T, objective, source, trained)
        s = sampler(su, n, seed, field_kind, method, steps, eta, spacing, variance, label, guidance, clip)
        for figure, text in until(reverse_frames(su, s, running.stop), running.stop):  # none if stopped waiting
            if not running.show(text):
                break
            yield figure, text
        if running.stop.is_set():
            yield gr.skip(), STOPPED


def stop_generate(request: gr.Request = None):
    """The Stop button of Generate: this session's run ends before its next model call."""
    return STOPPED if "generate" in STOPS.stop(request) else gr.skip()


def train(dataset, schedule, T, objective, train_steps, seed, trained, request: gr.Request = None):
    """Stream live training: (loss curves, sample cloud, status, checkpoint path for gr.State, model source,
    download button). The first update switches the lab to the model trained here; the last offers its file.
    A stopped run ends before its next step with the words of the Stop button (training_stopped)."""
    with STOPS.running(request, "train") as running:
        su = setup(dataset, schedule, T, objective, "trained here", trained)
        first = True
        for u in train_updates(su, train_steps, seed, trained, running.stop):
            if not running.show(u.path):
                break
            source = gr.Radio(value="trained here") if first else gr.skip()
            download = gr.DownloadButton(value=u.path, visible=True) if u.step == u.total else gr.skip()
            first = False
            yield u.curves, u.cloud, u.text, u.path, source, download
        if running.stop.is_set():
            text, download = training_stopped(running.shown)
            yield gr.skip(), gr.skip(), text, gr.skip(), gr.skip(), download


def training_stopped(saved: str | None):
    """(status, download button) of a stopped training: the checkpoint saved at its last update stays (and can
    be downloaded)."""
    if not saved or not Path(saved).is_file():
        return "**Stopped** before the first update: nothing was saved.", gr.skip()
    step = read_config(saved).step
    return (f"**Stopped** at step {step}: that model is kept (model: trained here) and can be downloaded.",
            gr.DownloadButton(value=saved, visible=True))


def stop_training(request: gr.Request = None):
    """The Stop button of training: this session's run ends before its next step and keeps its last update."""
    halted = STOPS.stop(request)
    return training_stopped(halted["train"]) if "train" in halted else (gr.skip(), gr.skip())


def sampler_options(method: str):
    """Show sigma^2 for DDPM and eta for DDIM only."""
    return gr.Radio(visible=method == "ddpm"), gr.Slider(visible=method == "ddim")


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d = DEFAULTS
    first = redraw(*(d[k] for k in SETUP), None, d["t"], *(d[k] for k in SAMPLER))
    classes = toy_info(d["dataset"])["class_names"]
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            dataset = gr.Dropdown(list(TOY_DATASETS), value=d["dataset"], label="Dataset", elem_id="toy-dataset")
            schedule = gr.Radio(list(SCHEDULES), value=d["schedule"], label="Schedule", elem_id="toy-schedule")
            T = gr.Radio(list(T_CHOICES), value=d["T"], label="T (number of steps)", elem_id="toy-T")
            objective = gr.Radio(list(OBJECTIVES), value=d["objective"], label="The network predicts",
                                 elem_id="toy-objective")
            source = gr.Radio(list(SOURCES), value=d["source"], label="Model", elem_id="toy-source")
            info = gr.Markdown(first[2], elem_id="toy-model-info")
            field_kind = gr.Radio(list(FIELDS), value=d["field"], label="Arrows: the learned field",
                                  elem_id="toy-field")
            with gr.Row():
                n = gr.Slider(*PARTICLES, value=d["n"], step=100, label="Particles", elem_id="toy-n")
                seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed", elem_id="toy-seed")
            with gr.Accordion("Sampler", open=True):
                method = gr.Radio([(METHOD_NAMES[m], m) for m in METHODS], value=d["method"], label="Sampler",
                                  elem_id="toy-method")
                variance = gr.Radio([("σ² = β", "beta"), ("σ² = β̃", "beta_tilde")], value=d["variance"],
                                    label="DDPM noise", visible=d["method"] == "ddpm", elem_id="toy-variance")
                eta = gr.Slider(0, 1, value=d["eta"], step=0.05, label="η (0: deterministic DDIM, 1: DDPM-like)",
                                visible=d["method"] == "ddim", elem_id="toy-eta")
                spacing = gr.Radio(list(SPACINGS), value=d["spacing"], label="Timestep spacing",
                                   elem_id="toy-spacing")
                steps = gr.Slider(1, d["T"], value=d["steps"], step=1, label="Steps (model calls)",
                                  elem_id="toy-steps")
                label = gr.Dropdown([UNCONDITIONAL, *([MIXED, *classes] if classes else [])], value=d["label"],
                                    label="Class", visible=bool(classes), elem_id="toy-class")
                guidance = gr.Slider(0, MAX_GUIDANCE, value=d["guidance"], step=0.25, visible=bool(classes),
                                     label="Guidance w (needs a class; 1: conditional)", elem_id="toy-guidance")
                clip = gr.Checkbox(d["clip"], label=f"Clip x̂₀ to [−{CLIP:g}, {CLIP:g}]", elem_id="toy-clip")
        with gr.Column(scale=4):
            t = gr.Slider(0, d["T"], value=d["t"], step=1, label="Forward: t (0 is the data, T is pure noise)",
                          elem_id="toy-t")
            with gr.Row(equal_height=False):
                with gr.Column():
                    forward_plot = gr.Plot(first[0], show_label=False, elem_id="toy-forward")
                    forward_text = gr.Markdown(first[1], latex_delimiters=LATEX, elem_id="toy-forward-text")
                with gr.Column():
                    with gr.Row():
                        run_btn = gr.Button("Generate", variant="primary", elem_id="toy-generate")
                        stop_btn = gr.Button("Stop", variant="stop", elem_id="toy-stop")
                    reverse_plot = gr.Plot(show_label=False, elem_id="toy-reverse")
                    reverse_text = gr.Markdown("Press **Generate** to watch the particles find the data.",
                                               elem_id="toy-reverse-text")
            with gr.Accordion("Train live: a new model on this toy, in your browser", open=True):
                with gr.Row(equal_height=True):
                    train_steps = gr.Slider(*TRAIN_STEPS, value=d["train_steps"], step=50, scale=4,
                                            label="Training steps (batch 256; a few hundred fit two moons)",
                                            elem_id="toy-train-steps")
                    train_btn = gr.Button("Train", variant="primary", scale=1, elem_id="toy-train")
                    stop_train_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="toy-stop-train")
                    download = gr.DownloadButton("Download the checkpoint (.safetensors)", visible=False, scale=2,
                                                 elem_id="toy-download")
                train_text = gr.Markdown("Uses the dataset, schedule, T, objective and seed above; the result is "
                                         "sampled by **Generate** (model: trained here) and loads in train.py's "
                                         "`load_model`.", elem_id="toy-train-text")
                with gr.Row(equal_height=False):
                    curves = gr.Plot(show_label=False, elem_id="toy-curves")
                    preview = gr.Plot(show_label=False, elem_id="toy-preview")
    trained = gr.State(None, delete_callback=forget)
    T_shown = gr.State(d["T"])

    head = [dataset, schedule, T, objective, source, trained]
    sampler_controls = [n, seed, field_kind, method, steps, eta, spacing, variance, label, guidance, clip]
    view = [*head, t, *sampler_controls]
    shown_outputs = [forward_plot, forward_text, info]
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    gr.on([t.input, schedule.input, objective.input, source.input, field_kind.input, n.release, seed.input,
           label.input, guidance.release, clip.input], redraw, view, shown_outputs,
          api_name="toy_forward", **quiet)
    T.input(set_T, [*view, T_shown], [t, steps, T_shown, *shown_outputs], api_name="toy_set_T", **quiet)
    dataset.input(choose_dataset, view, [label, guidance, *shown_outputs], api_name="toy_dataset", **quiet)
    method.input(sampler_options, method, [variance, eta], api_visibility="private", **quiet)

    at_once = {"concurrency_limit": None, "concurrency_id": "toy-stop", "show_progress": "hidden"}
    run_btn.click(STOPS.expecting("generate"), api_visibility="private", **at_once).then(
        for_visitor(generate), [*head, *sampler_controls], [reverse_plot, reverse_text], api_name="toy_generate",
        show_progress="minimal")
    stop_btn.click(stop_generate, None, reverse_text, api_name="toy_stop", **at_once)
    training = train_btn.click(STOPS.expecting("train"), api_visibility="private", **at_once).then(
        for_visitor(train), [dataset, schedule, T, objective, train_steps, seed, trained],
        [curves, preview, train_text, trained, source, download], api_name="toy_train", show_progress="minimal",
        concurrency_limit=1, concurrency_id="toy-train")
    training.then(redraw, view, shown_outputs, api_visibility="private", **quiet)
    stop_train_btn.click(stop_training, None, [train_text, download], api_name="toy_stop_training", **at_once)
