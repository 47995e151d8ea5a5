"""What the 2D toy lab shows and runs, with no gradio in it: the view (explorer.app.toy) only builds the page,
parses the controls into a `ToySettings` and streams what this module yields.

Timesteps follow explorer.schedules: t = 0..T, t = 0 is data, t = T is (nearly) N(0, I). All the maths is
explorer's: `forward.q_sample` moves the cloud, `forward.q_marginal_mixture` and `forward.mixture_log_prob_grid`
give the exact marginal q(x_t) of the toy's Gaussian mixture (`data.toy_mixture`, seed 003) for the contours,
`samplers.sample` runs the reverse process (one sampler loop, the image view's), `samplers.make_denoiser` and
`parameterization.score_from_eps` give the field, `metrics.toy_distances` and `toy_floor` the distances, and
`training.Trainer.steps()` the live training.

Models: a bundled checkpoint `pretrained/toy_<dataset>_<objective>.safetensors` (cosine schedule, T = 1000),
or the one trained here in this session. A trained model lives in a per-session temporary file; the session
keeps only its path (gr.State), the model itself is loaded (and cached, read-only) from that file like any
checkpoint (explorer.app.catalogue), and the file is deleted when the session ends or after KEEP_S.

Seeds: the forward cloud is x_0 = sample_toy(dataset, n, seed) with eps from torch.Generator().manual_seed(seed);
the reverse run draws x_T and then the sampler's noise from one generator seeded with the seed; the first
HIGHLIGHT particles are the highlighted ones. Distances compare with fresh data (metrics.TOY_DATA_SEED); the
data-vs-data floor is the same distance between two other fresh draws of the same size (metrics.toy_floor,
averaged over metrics.TOY_FLOOR_PAIRS pairs).

Clipping: x0_hat = (x_t - b_t eps_hat) / a_t divides the network's error by a_t, which is 5e-5 at t = T of the
cosine schedule with T = 1000; an eps-predicting network's first steps would throw particles far away. With
"clip" on, x0_hat is clamped to [-CLIP, CLIP] (data.TOY_CLIP: the toys lie within about 2.3 of 0), as images
clip to [-1, 1].
"""
from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from explorer import checks
from explorer.app import catalogue, files, plots
from explorer.app.options import (MIXED, SEED_MAX, SamplerOptions, UserInputError, class_labels, schedule,
                                  shown_steps, until)
from explorer.checkpoint import DiffusionModel, ModelConfig, read_config, save_model
from explorer.data import TOY_CLIP, TOY_DATASETS, sample_toy, toy_info, toy_mixture
from explorer.forward import mixture_log_prob_grid, q_marginal_mixture, q_sample
from explorer.metrics import TOY_DATA_SEED, energy_distance, toy_distances, toy_floor
from explorer.parameterization import OBJECTIVES, score_from_eps
from explorer.samplers import make_denoiser, run, sample
from explorer.schedules import SCHEDULES, T_RANGE
from explorer.training import TrainConfig, Trainer, TrainingError

EXTENT = 3.0  # every plot shows [-EXTENT, EXTENT]^2
GRID = 80  # contour grid points per side
AXIS = np.linspace(-EXTENT, EXTENT, GRID, dtype=np.float32)
FIELD_GRID = 20  # arrows per side, at the centres of a FIELD_GRID x FIELD_GRID tiling of the square
_centres = ((np.arange(FIELD_GRID, dtype=np.float32) + 0.5) / FIELD_GRID * 2 - 1) * EXTENT
FIELD_POINTS = np.stack(np.meshgrid(_centres, _centres, indexing="xy"), axis=-1).reshape(-1, 2)
DENSITY_RANGE = 12.0  # contours span log q(x_t) from its maximum down by this much
CLIP = TOY_CLIP  # |x0_hat| <= CLIP when clipping
T_CHOICES = (1000, 200, 50)
SOURCES = ("pretrained", "trained here")
FIELDS = ("score", "eps", "none")
UNCONDITIONAL = "none (unconditional)"
PARTICLES = (100, 5000)
MAX_FRAMES = 25  # frames streamed per run besides x_T
HIGHLIGHT = 10  # particles whose paths are drawn
METRIC_N = 2000  # at most this many samples are compared with as many fresh data points
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
            "trained": None, "t": 300, "n": 2000, "seed": 0, "field_kind": "score", "method": "ddim", "steps": 50,
            "eta": 0.0, "spacing": "trailing", "variance": "beta_tilde", "label": UNCONDITIONAL, "guidance": 1.0,
            "clip": True, "train_steps": 1000}
SETUP = ("dataset", "schedule", "T", "objective", "source", "trained")
SAMPLER = ("n", "seed", "field_kind", "method", "steps", "eta", "spacing", "variance", "label", "guidance", "clip")


# --- the controls, checked -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """What the lab is about: the toy, the forward process and the model (bundled or trained here)."""
    dataset: str
    schedule: str
    T: int
    objective: str
    source: str
    trained: str | None  # this session's trained checkpoint, if any

    @classmethod
    def parse(cls, controls: dict) -> Setup:
        """The SETUP controls (by name); ValueError names what is wrong."""
        c = controls
        return cls(checks.choice("dataset", c["dataset"], TOY_DATASETS),
                   checks.choice("schedule", c["schedule"], SCHEDULES), checks.whole("T", c["T"], *T_RANGE),
                   checks.choice("objective", c["objective"], OBJECTIVES), checks.choice("model", c["source"], SOURCES),
                   c.get("trained") or None)

    def describe(self) -> str:
        return f"{self.dataset}, predicting {self.objective}, {self.schedule} schedule, T = {self.T}"


@dataclass(frozen=True)
class ToySettings:
    """The lab's controls: the setup, the forward view's t (None where a handler has no t) and the reverse run."""
    setup: Setup
    t: int | None
    n: int
    seed: int
    field: str
    sampler: SamplerOptions
    label: str  # UNCONDITIONAL, MIXED or a class name
    guidance: float
    clip: bool

    @classmethod
    def parse(cls, controls: dict) -> ToySettings:
        """The controls by name (SETUP, SAMPLER and optionally t); ValueError names what is wrong."""
        c = controls
        setup = Setup.parse(c)
        classes = toy_info(setup.dataset)["class_names"]
        label = c["label"] or UNCONDITIONAL
        if classes:
            checks.choice("class", label, [UNCONDITIONAL, MIXED, *classes])
        elif label != UNCONDITIONAL:
            raise UserInputError(f"{setup.dataset} has no classes: leave the class on {UNCONDITIONAL!r}")
        guidance = checks.number("guidance", c["guidance"], 0.0, MAX_GUIDANCE)
        if label == UNCONDITIONAL and guidance != 1:
            raise UserInputError("guidance needs a class: choose one (or mixed), or set guidance back to 1")
        t = checks.whole("t", c["t"], 0, setup.T) if "t" in c else None
        return cls(setup, t, checks.whole("the number of particles", c["n"], *PARTICLES),
                   checks.whole("seed", c["seed"], 0, SEED_MAX), checks.choice("field", c["field_kind"], FIELDS),
                   SamplerOptions.check(c["method"], c["variance"], c["eta"], c["spacing"], c["steps"], setup.T),
                   label, guidance, bool(c["clip"]))

    def describe(self) -> str:
        """The reverse run in a few words, e.g. "DDIM, η = 0, 50 steps (trailing), x̂₀ clipped"."""
        extra = "" if self.label == UNCONDITIONAL else f", class {self.label}, guidance {self.guidance:g}"
        return f"{self.sampler.describe()}{extra}{', x̂₀ clipped' if self.clip else ''}"


# --- models --------------------------------------------------------------------------------------------------

def matches(config: ModelConfig, setup: Setup) -> bool:
    return (config.dataset, config.schedule, config.T, config.objective) == (setup.dataset, setup.schedule,
                                                                              setup.T, setup.objective)


def model_path(setup: Setup) -> Path:
    """The checkpoint for this setup, or UserInputError saying what to do."""
    if setup.source == "trained here":
        if setup.trained is None or not Path(setup.trained).is_file():
            raise UserInputError("no model trained in this session yet: press Train (or choose the pretrained model)")
        config = read_config(setup.trained)
        if not matches(config, setup):
            raise UserInputError(f"the model trained here is for {config.dataset}, predicting {config.objective}, "
                                 f"{config.schedule} schedule, T = {config.T}, not {setup.describe()}: train "
                                 "again, or set the controls back")
        return Path(setup.trained)
    toys = catalogue.bundled_toys()
    for path, config in toys:
        if matches(config, setup):
            return path
    have = sorted({f"{c.schedule} T = {c.T}" for _, c in toys if c.dataset == setup.dataset}) or ["none"]
    raise UserInputError(f"no pretrained model for {setup.describe()} (bundled for {setup.dataset}: "
                         f"{', '.join(have)}): press Train to train one here")


def model_info(setup: Setup) -> str:
    try:
        path = model_path(setup)
    except UserInputError as err:
        return f"**No model**: {err}."
    config = read_config(path)
    where = f"`{path.name}` (bundled)" if setup.source == "pretrained" else "the model trained here"
    classes = f"classes: {', '.join(config.class_names)}" if config.class_names else "unconditional"
    return f"Model: {where}, {config.step} training steps, {classes}."


def check_classes(model: DiffusionModel, settings: ToySettings, name: str) -> None:
    """A class (and guidance) needs a class-conditional model."""
    if settings.label != UNCONDITIONAL and not model.class_names:
        raise UserInputError(f"{name} is unconditional (live training ignores class labels): set the class to "
                             f"{UNCONDITIONAL!r}, or choose the pretrained model for classes and guidance")


def labels(settings: ToySettings, classes: list[str], n: int, device) -> torch.Tensor | None:
    """None (the null class: unconditional), one class for all, or classes 0, 1, ..., K - 1, 0, ... (MIXED)."""
    if settings.label == UNCONDITIONAL or not classes:
        return None
    return class_labels(settings.label, classes, n, device)


def denoiser(model: DiffusionModel, settings: ToySettings, n: int):
    """samplers.make_denoiser for n points with the run's class, guidance and clipping."""
    y = labels(settings, model.class_names, n, next(model.parameters()).device)
    return make_denoiser(model, model.schedule, model.objective, y, settings.guidance if y is not None else 1.0,
                         model.null_label, CLIP if settings.clip else False)


def field(model: DiffusionModel, settings: ToySettings, t: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The learned field at the FIELD_POINTS at timestep max(t, 1): eps_hat, or the score -eps_hat / b_t
    (parameterization.score_from_eps). MIXED shows the unconditional field. Returns (origins, vectors, t)."""
    t = max(int(t), 1)
    asked = settings if settings.label != MIXED else replace(settings, label=UNCONDITIONAL, guidance=1.0)
    device = next(model.parameters()).device
    pred = denoiser(model, asked, len(FIELD_POINTS))(torch.from_numpy(FIELD_POINTS).to(device), t)
    b = float(model.schedule.sqrt_one_minus_alpha_bars[t])
    vectors = pred.eps if settings.field == "eps" else score_from_eps(pred.eps, b)
    return FIELD_POINTS, vectors.float().cpu().numpy(), t


def field_name(settings: ToySettings, t: int) -> str:
    return f"ε̂ at t = {t}" if settings.field == "eps" else f"score −ε̂/√(1−ᾱ_t) at t = {t}"


# --- the forward process -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def marginal(dataset: str, schedule_name: str, T: int, t: int) -> np.ndarray:
    """log q(x_t) of the toy on the GRID x GRID plot grid (rows along y), float32, clipped to DENSITY_RANGE
    below its maximum (seed 003: the data convolved with N(0, (1 - alpha_bar_t) I) after scaling)."""
    mixture = q_marginal_mixture(schedule(schedule_name, T), t, *toy_mixture(dataset))
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
def floor(dataset: str, label: int | None, n: int) -> tuple[float, float]:
    """metrics.toy_floor, once per toy, class and size."""
    return toy_floor(dataset, n, label)


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
    return Quality(n, *toy_distances(dataset, x[:n], label), *floor(dataset, label, n))


def quality_text(q: Quality, against: str) -> str:
    return (f"**Distance to the data** ({q.n} samples against {q.n} fresh points of {against}): energy distance "
            f"**{q.energy:.4f}** (two fresh data draws: {q.energy_floor:.4f}), sliced W₂ **{q.sliced:.3f}** (data "
            f"vs data: {q.sliced_floor:.3f}). Both are 0 for a perfect match; values near the data-vs-data "
            "floor are as close as the sample size can tell.")


def _colours(dataset: str, y: torch.Tensor | None) -> np.ndarray | None:
    return y.cpu().numpy() if y is not None and toy_info(dataset)["class_names"] else None


@torch.inference_mode()
def forward_view(settings: ToySettings) -> tuple:
    """The cloud at t with the exact q(x_t) behind it and, when a model is there, its field at t.
    Returns (figure, text)."""
    setup, t = settings.setup, settings.t
    sched = schedule(setup.schedule, setup.T)
    x0, y, eps = cloud(setup.dataset, settings.n, settings.seed)
    x_t = q_sample(sched, x0, t, eps)  # seed 001, eq. 1
    arrows, note = None, ""
    if settings.field != "none":
        try:
            path = model_path(setup)
            model = catalogue.model_at(path)
            check_classes(model, settings, f"`{path.name}`")
        except UserInputError as err:
            note = f" No field: {err}."
        else:
            origins, vectors, t_field = field(model, settings, t)
            arrows = (origins, vectors)
            note = f" Arrows: the learned {field_name(settings, t_field)}" + (
                " (the model is not asked at t = 0)." if t == 0 else ".")
    ab = float(sched.alpha_bars[t])
    figure = plots.toy_plane(AXIS, marginal(setup.dataset, setup.schedule, setup.T, t), x_t.numpy(),
                             _colours(setup.dataset, y), None, arrows,
                             f"Forward: x_t at t = {t} of {setup.T}  (ᾱ_t = {ab:.4f})", EXTENT,
                             {"points": "x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε", "field": "learned field"})
    k = min(settings.n, 1000)
    gauss = torch.randn(k, 2, generator=torch.Generator().manual_seed(TOY_DATA_SEED))
    ed = energy_distance(x_t[:k], gauss)
    text = (rf"**t = {t}**: $\bar\alpha_t = {ab:.4f}$. Each point is $x_t = \sqrt{{\bar\alpha_t}}\,x_0 + "
            rf"\sqrt{{1-\bar\alpha_t}}\,\varepsilon$ (DDPM eq. 4). Behind the cloud: the exact "
            r"$\log q(x_t)$, the data dilated by $\sqrt{\bar\alpha_t}$ and blurred by "
            r"$\mathcal N(0, (1-\bar\alpha_t) I)$: each Gaussian $\mathcal N(m_j, s_j^2)$ of the toy's "
            rf"mixture becomes $\mathcal N(\sqrt{{\bar\alpha_t}}\,m_j,\ \bar\alpha_t s_j^2 + 1 - \bar\alpha_t)$. "
            f"Energy distance of {k} points of the cloud to as many N(0, I) draws: {ed:.4f} (0 once the data "
            "is gone)." + note)
    return figure, text


# --- the reverse process -------------------------------------------------------------------------------------

def shown(steps: int) -> list[int]:
    """The steps after which a frame is streamed (options.shown_steps with MAX_FRAMES)."""
    return shown_steps(steps, MAX_FRAMES)


@torch.inference_mode()
def reverse_frames(settings: ToySettings, stop: threading.Event | None = None) -> Iterator[tuple]:
    """Run the sampler from x_T and yield (figure, text) for x_T and after every step in `shown`; the last
    text adds the distance to the data. Once `stop` is set no further model call is made."""
    start = time.perf_counter()
    setup, options = settings.setup, settings.sampler
    path = model_path(setup)
    model = catalogue.model_at(path)
    check_classes(model, settings, f"`{path.name}`")
    classes = model.class_names
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(settings.seed)
    x_T = torch.randn(settings.n, 2, generator=gen)
    y = labels(settings, classes, settings.n, device)
    colours = _colours(setup.dataset, y)
    paths = [x_T[:HIGHLIGHT].numpy()]
    head = f"**{settings.n} particles**, {settings.describe()}, seed {settings.seed}, model `{path.name}`"

    def frame(x: torch.Tensor, t: int, text: str, after: str = ""):
        arrows, legend = None, {}
        if settings.field != "none":
            origins, vectors, t_field = field(model, settings, t)
            arrows, legend = (origins, vectors), {"field": field_name(settings, t_field)}
        figure = plots.toy_plane(AXIS, marginal(setup.dataset, setup.schedule, setup.T, t), x.float().cpu().numpy(),
                                 colours, np.stack(paths, axis=1), arrows, f"Reverse: x_t at t = {t} of {setup.T}",
                                 EXTENT, {"density": "exact log q(x_t) of the data", **legend})
        return figure, f"{head}\n\n{text} · {time.perf_counter() - start:.2f} s{after}"

    yield frame(x_T, setup.T, f"x_T ~ N(0, I) at t = {setup.T}")
    show = set(shown(options.steps))
    sampling = sample(model, model.schedule, x_T.to(device), **options.keywords(), objective=model.objective, y=y,
                      guidance=settings.guidance, clip_x0=CLIP if settings.clip else False, generator=gen)
    for step in until(sampling, stop):
        paths.append(step.x_next[:HIGHLIGHT].float().cpu().numpy())
        j = step.i + 1
        if j not in show:
            continue
        text = f"Step {j} of {step.n}: the model saw t = {step.t}, σ = {step.sigma:.4f}, now at t = {step.t_next}"
        if j < step.n:
            yield frame(step.x_next, step.t_next, text)
        else:
            label = None if settings.label in (UNCONDITIONAL, MIXED) else classes.index(settings.label)
            against = setup.dataset if label is None else f"{setup.dataset}, class {settings.label}"
            q = quality(setup.dataset, label, step.x_next)
            yield frame(step.x_next, 0, f"**Done**: {text}", f"\n\n{quality_text(q, against)}")


# --- live training -------------------------------------------------------------------------------------------

def _session_folder(trained: str | None) -> Path:
    """This session's folder under OUT_DIR (a new one for a session that has none)."""
    if trained and Path(trained).parent.parent == OUT_DIR and Path(trained).parent.is_dir():
        folder = Path(trained).parent
        folder.touch()
        return folder
    return files.new_folder(OUT_DIR, KEEP_S)


def forget(trained: str | None) -> None:
    """The session ended: its trained checkpoint goes."""
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
def train_updates(setup: Setup, steps: int, seed: int, stop: threading.Event | None = None) -> Iterator[TrainUpdate]:
    """Train the MLP on the toy for `steps` steps (training.Trainer.steps, LIVE options) and yield a TrainUpdate
    after every UPDATE_S seconds of training (or four times as long as an update takes) and the last step: the
    loss curve, PREVIEW_N samples of the EMA weights (DDIM, PREVIEW_STEPS steps, clipped, fixed noise) and
    their distance to the data. The EMA weights are saved to this session's checkpoint at each update, so a
    run stopped (`stop` set: no further step) keeps its last one."""
    steps = checks.whole("training steps", steps, *TRAIN_STEPS)
    seed = checks.whole("seed", seed, 0, SEED_MAX)
    folder = _session_folder(setup.trained)
    out = folder / f"toy_{setup.dataset}_{setup.objective}_{setup.schedule}_T{setup.T}.safetensors"
    for old in folder.glob("*.safetensors"):
        if old != out:
            old.unlink()
    config = TrainConfig(dataset=setup.dataset, objective=setup.objective, schedule=setup.schedule, T=setup.T,
                         steps=steps, seed=seed, device=catalogue.DEVICE.type, compile="off", out=str(out),
                         run_dir=str(folder / "run"), sample_every=0, **LIVE)
    trainer = Trainer(config, force=True)
    x_T = torch.randn(PREVIEW_N, 2, generator=torch.Generator().manual_seed(seed)).to(trainer.device)
    preview_steps = min(PREVIEW_STEPS, setup.T)
    losses, smooth, evals, distances = [], [], [], []
    next_update = UPDATE_S
    try:
        for step, loss in until(trainer.steps(), stop):
            losses.append(loss)
            smooth.append(loss if len(smooth) == 0 else 0.98 * smooth[-1] + 0.02 * loss)
            if trainer.elapsed < next_update and step < steps:
                continue
            update_start = time.perf_counter()
            with torch.no_grad():
                model = trainer.ema_model()
                x = run(sample(model, model.schedule, x_T, method="ddim", steps=preview_steps,
                               objective=setup.objective, clip_x0=CLIP))
            q = quality(setup.dataset, None, x, PREVIEW_N)
            evals.append(step)
            distances.append(q.sliced)
            save_model(out, trainer.ema, trainer.model_config())
            curves = plots.training_curves(np.arange(1, len(losses) + 1, dtype=np.float32),
                                           np.array(losses, np.float32), np.array(smooth, np.float32),
                                           np.array(evals, np.float32), np.array(distances, np.float32),
                                           q.sliced_floor, steps)
            pic = plots.toy_plane(AXIS, marginal(setup.dataset, setup.schedule, setup.T, 0), x.float().cpu().numpy(),
                                  None, None, None, f"Samples of the EMA weights after {step} steps", EXTENT,
                                  {"density": "the data's log q(x_0)", "points": f"{PREVIEW_N} samples"})
            done = step == steps
            text = (f"{'**Done**: ' if done else ''}step {step} of {steps}, {trainer.elapsed:.1f} s of training, "
                    f"loss (running average) {smooth[-1]:.4f}. {PREVIEW_N} samples (DDIM, {preview_steps} steps): "
                    f"energy distance {q.energy:.4f} (data vs data {q.energy_floor:.4f}), sliced W₂ {q.sliced:.3f} "
                    f"(data vs data {q.sliced_floor:.3f}).")
            if done:
                text += " Saved: **Generate** now samples this model (model: trained here); download it below."
            # the next update after UPDATE_S more seconds of training, or more if updating is slow (a busy CPU):
            # updates take at most about a fifth of the time
            next_update = trainer.elapsed + max(UPDATE_S, 4 * (time.perf_counter() - update_start))
            yield TrainUpdate(step, steps, trainer.elapsed, curves, pic, text, str(out), q)
    except TrainingError as err:
        raise UserInputError(f"{err}; try again with another seed") from None


def stopped_training(saved: str | None) -> tuple[str, bool]:
    """(status, whether the checkpoint can be downloaded) of a stopped training: the checkpoint saved at its
    last update stays."""
    if not saved or not Path(saved).is_file():
        return "**Stopped** before the first update: nothing was saved.", False
    step = read_config(saved).step
    return f"**Stopped** at step {step}: that model is kept (model: trained here) and can be downloaded.", True
