"""The reverse-sampling view: press Generate and watch noise become an image, step by step, with the model's
current guess of the clean image beside it; change one setting, or compare two on the same x_T.

Timesteps follow explorer.schedules: t = T is pure noise, t = 0 the sample. The sampler loop is explorer's
(`samplers.sample`, one Step per model call); this module validates the controls, picks the checkpoint, turns
the Steps into pictures and streams them. The sigma curves come from `samplers.plan`, the function the
samplers take their sigma from.

Seeds: one torch.Generator seeded with the seed draws x_T, then the sampler's fresh noise. Compare mode gives
each of its two runs its own generator with the same seed, so both start from the same x_T.

Frames: x_T first, then x after every k-th step and after the last, k = ceil(steps / MAX_FRAMES), so a run
streams at most MAX_FRAMES + 1 frames, small (STREAM_PX; the page enlarges them without smoothing). Runs take
turns (RUN_GROUP, one at a time); the others wait in the queue. The Stop button stops its session's run
before its next model call, or before it starts if it still waits its turn (explorer.app.stops: no event is
cancelled); the run then ends by itself, saying where it stopped.

Checkpoints come from PRETRAINED (image models only; 2D toys belong to the toy lab) or an upload, validated
(never a pickle) and size-limited. The eps / x0 / v toggle switches to the bundled checkpoint with the same
dataset, schedule, T and classes trained with that objective. Models are loaded once and cached, read-only.
"""
from __future__ import annotations

import contextlib
import functools
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from torchvision.utils import make_grid

from explorer.app import plots, runtime
from explorer.app.messages import METHOD_NAMES, VARIANCE_NAMES, choice, for_visitor, number, sampler_name, whole
from explorer.app.options import UserInputError
from explorer.app.options import until
from explorer.app.stops import Stops
from explorer.checkpoint import (PRETRAINED_DIR, CheckpointError, DiffusionModel, ModelConfig, list_checkpoints,
                                 load_model, read_config)
from explorer.nets import build_net
from explorer.parameterization import OBJECTIVES
from explorer.samplers import METHODS, SPACINGS, VARIANCES, plan, sample
from explorer.schedules import NoiseSchedule, make_schedule

TITLE = "Reverse process"
PRETRAINED = PRETRAINED_DIR  # bundled checkpoints are listed from here
DEFAULT_CHECKPOINT = "fashion_v_cosine.safetensors"  # the view opens on it when bundled, else on the first file
UPLOAD = "your upload"
MIXED = "mixed (one of each class)"
MAX_UPLOAD_BYTES = 20 << 20  # as the app's max_file_size; bundled checkpoints are < 10 MB
MAX_SIDE = 64  # largest image side a checkpoint may sample
CHANNELS = (1, 3)
MAX_IMAGES = 16
MAX_GUIDANCE = 10.0
MAX_FRAMES = 50  # frames streamed per run besides x_T
STREAM_PX = 128  # streamed grids are enlarged by whole pixels up to about this size
DOWNLOAD_PX = 512  # and the final grid to download up to about this size
PAD = 2  # white pixels between the images of a grid
GIF_MS, GIF_HOLD_MS = 100, 1500  # per GIF frame, and for the last one
KEEP_S = 3600  # result files older than this are deleted when a new run saves its own
OUT_DIR = Path(tempfile.gettempdir()) / "diffusion-explorer-reverse"
RUN_GROUP = "reverse-run"  # Generate and Compare share one slot: one run at a time, the others wait in the queue
CURVE_POINTS = 250
BLOW_UP = 10.0  # |x0_hat| beyond this (images live in [-1, 1]) gets the status a warning
DEFAULTS = {"method": "ddim", "variance": "beta_tilde", "eta": 0.0, "spacing": "trailing", "steps": 50,
            "label": MIXED, "guidance": 1.0, "seed": 0, "n": 16, "clip": True}
DEFAULTS_B = {"method": "ddpm", "variance": "beta_tilde", "eta": 1.0, "spacing": "trailing", "steps": 50,
              "guidance": 1.0, "clip": True}
CONTROLS = ("checkpoint", "upload", "objective", "method", "variance", "eta", "spacing", "steps", "label",
            "guidance", "seed", "n", "clip")
CONTROLS_B = ("objective_b", "method_b", "variance_b", "eta_b", "spacing_b", "steps_b", "guidance_b", "clip_b")
OUTPUTS = ("x_t", "x0_hat", "status", "sigmas", "trajectory", "downloads")
COMPARE_OUTPUTS = ("x_t_a", "x0_hat_a", "x_t_b", "x0_hat_b", "status", "sigmas")
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
CONVERSIONS = {  # how the sampler turns each objective into the other two (seed 001, eq. 2 and 8, section 2.6)
    "eps": r"$\hat x_0 = (x_t - b_t\hat\varepsilon)/a_t$ and $\hat v = a_t\hat\varepsilon - b_t\hat x_0$",
    "x0": r"$\hat\varepsilon = (x_t - a_t\hat x_0)/b_t$ and $\hat v = a_t\hat\varepsilon - b_t\hat x_0$",
    "v": r"$\hat x_0 = a_t x_t - b_t\hat v$ and $\hat\varepsilon = b_t x_t + a_t\hat v$",
}
SYMBOLS = {"eps": "ε (the noise)", "x0": "x₀ (the clean image)", "v": "v (the velocity a_t ε − b_t x₀)"}
CSS = """
.reverse-grid .image-frame { width: 100%; }
.reverse-grid img { width: 100% !important; height: auto !important; max-height: 440px; object-fit: contain; }
"""  # grids fill their box (enlarged without smoothing by the app's "pixelated" class)


# --- checkpoints ---------------------------------------------------------------------------------------------

def is_image(config: ModelConfig) -> bool:
    return config.net == "unet" and len(config.sample_shape) == 3


def bundled() -> dict[str, ModelConfig]:
    """The image checkpoints in PRETRAINED by file name, with their configs (read from the metadata only, again
    whenever the folder changes: adding, removing or atomically rewriting a file changes its mtime)."""
    try:
        stamp = PRETRAINED.stat().st_mtime_ns
    except OSError:
        return {}
    return dict(_bundled(PRETRAINED, stamp))


@functools.lru_cache(maxsize=4)
def _bundled(folder: Path, mtime_ns: int) -> tuple[tuple[str, ModelConfig], ...]:
    return tuple((path.name, config) for path, config in list_checkpoints(folder) if is_image(config))


def default_name(found: dict[str, ModelConfig]) -> str | None:
    """The checkpoint the view starts from (and returns to when an upload is removed)."""
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in found else next(iter(found), None)


def choice_label(name: str, config: ModelConfig) -> str:
    return f"{config.dataset} · predicts {config.objective} · {config.schedule} · T={config.T} — {name}"


def checkpoint_choices() -> list[tuple[str, str]]:
    return [*((choice_label(name, c), name) for name, c in bundled().items()), (UPLOAD, UPLOAD)]


def check_config(name: str, config: ModelConfig) -> None:
    """Refuse checkpoints this view cannot sample: 2D toys and images of unsupported shapes."""
    shape = list(config.sample_shape)
    if not is_image(config):
        raise UserInputError(f"{name} is a {config.net} checkpoint of {config.dataset} with samples of shape "
                             f"{shape}; this view samples images (1 or 3 channels): open 2D toys in the toy lab.")
    c, h, w = shape
    if c not in CHANNELS or h != w or not 1 <= h <= MAX_SIDE:
        raise UserInputError(f"{name} samples images of shape {shape}; this view takes square images with 1 or 3 "
                             f"channels and at most {MAX_SIDE}x{MAX_SIDE} pixels.")


@torch.inference_mode()
def _trial(model: DiffusionModel, name: str) -> None:
    """One call on one sample at t = T: the network must run and answer in the shape of its input."""
    device = next(model.parameters()).device
    x = torch.zeros(1, *model.sample_shape, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device) if model.class_names else None
    try:
        out = model(x, torch.full((1,), model.schedule.T, device=device), y)
    except RuntimeError as err:
        raise CheckpointError(f"{name}: the network does not run on samples of shape {list(model.sample_shape)}: "
                              f"{str(err).splitlines()[0]}") from None
    if out.shape != x.shape:
        raise CheckpointError(f"{name}: the network answers in shape {list(out.shape[1:])} for samples of shape "
                              f"{list(model.sample_shape)}")


@functools.lru_cache(maxsize=6)
def _load(path: str, mtime_ns: int, size: int) -> DiffusionModel:
    model = load_model(path, runtime.DEVICE)
    _trial(model, Path(path).name)
    return model


def model_at(path: Path) -> DiffusionModel:
    """The model in a checkpoint file, loaded once (again when the file changes) and shared read-only."""
    stat = path.stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


def check_upload(upload: str | None) -> Path:
    """Validate an uploaded checkpoint and load it; raises UserInputError or CheckpointError saying why not."""
    if not upload:
        raise UserInputError("upload a checkpoint (.safetensors, written by train.py) first")
    path = Path(upload)
    if not path.is_file():
        raise UserInputError("the uploaded file is no longer on the server; please upload it again")
    stat = path.stat()
    _check_file(str(path), stat.st_mtime_ns, stat.st_size)
    return path


@functools.lru_cache(maxsize=16)
def _check_file(path: str, mtime_ns: int, size: int) -> None:
    name = Path(path).name
    if Path(path).suffix != ".safetensors":
        raise UserInputError(f"{name} is not a .safetensors file; this app loads only safetensors checkpoints "
                             "written by train.py (never pickles such as .pt or .ckpt).")
    if size > MAX_UPLOAD_BYTES:
        raise UserInputError(f"{name} is {size / 2 ** 20:.1f} MB; checkpoints may be at most "
                             f"{MAX_UPLOAD_BYTES >> 20} MB.")
    config = read_config(path)
    check_config(name, config)
    try:
        with torch.device("meta"):  # the network's size, before allocating it
            net = build_net(config.net, config.net_config)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{name}: cannot build the network from its config: {err}") from None
    needed = sum(p.numel() * p.element_size() for p in net.parameters())
    if needed > size:
        raise CheckpointError(f"{name}: its config describes a network of {needed / 2 ** 20:.1f} MB of weights, "
                              f"more than the whole file holds; the file is damaged or not from train.py.")
    _load(path, mtime_ns, size)


def chosen(checkpoint: str, upload: str | None, found: dict[str, ModelConfig] | None = None
           ) -> tuple[Path, ModelConfig]:
    """The file named by the checkpoint control (a bundled name or UPLOAD) and its config; `found`: bundled()."""
    if checkpoint == UPLOAD:
        path = check_upload(upload)
        return path, read_config(path)
    found = bundled() if found is None else found
    if checkpoint not in found:
        raise UserInputError(f"unknown checkpoint {checkpoint!r}; bundled: {', '.join(found) or 'none'} "
                             f"(or {UPLOAD!r})")
    return PRETRAINED / checkpoint, found[checkpoint]


def same_family(a: ModelConfig, b: ModelConfig) -> bool:
    return (a.dataset, a.schedule, a.T, list(a.sample_shape), list(a.class_names)) == \
        (b.dataset, b.schedule, b.T, list(b.sample_shape), list(b.class_names))


def resolve(checkpoint: str, upload: str | None, objective: str) -> tuple[Path, ModelConfig]:
    """The checkpoint to sample from: the chosen one if it predicts `objective`, else the bundled image
    checkpoint of the same dataset, schedule, T and classes that does, one with the same network if there is
    one; UserInputError if there is none."""
    if objective not in OBJECTIVES:
        raise UserInputError(f"unknown objective {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    found = bundled()
    path, config = chosen(checkpoint, upload, found)
    if config.objective == objective:
        return path, config
    if checkpoint == UPLOAD:
        raise UserInputError(f"the uploaded checkpoint predicts {config.objective}; the {objective} toggle only "
                             "switches between bundled checkpoints. Choose its own objective.")
    matches = [(name, other) for name, other in found.items()
               if other.objective == objective and same_family(config, other)]
    if matches:  # the same network first (bundled files of one family may differ in size)
        name, other = min(matches, key=lambda match: match[1].net_config != config.net_config)
        return PRETRAINED / name, other
    have = sorted({c.objective for c in found.values() if same_family(config, c)})
    raise UserInputError(f"no bundled checkpoint of {config.dataset} ({config.schedule} schedule, T = {config.T}) "
                         f"predicts {objective}; the bundled ones predict {', '.join(have)}.")


# --- one run -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sampler:
    """A sampler and its options: all that decides the sigma it uses on each step."""
    method: str
    variance: str
    eta: float
    spacing: str
    steps: int

    def describe(self) -> str:
        """In a few words, e.g. "DDIM, η = 0.5, 50 steps (trailing)"."""
        head = sampler_name(self.method, self.variance, self.eta)
        return f"{head}, {self.steps} step{'s' * (self.steps > 1)} ({self.spacing})"


@dataclass(frozen=True)
class Settings:
    """One validated run: the checkpoint file and how to sample from it."""
    path: Path
    config: ModelConfig
    sampler: Sampler
    label: str  # MIXED or a class name
    guidance: float
    seed: int
    n: int
    clip: bool


def sampler(method, variance, eta, spacing, steps, path: Path, config: ModelConfig) -> Sampler:
    """Check the sampler's controls for the checkpoint at `path`; raise UserInputError naming what is wrong."""
    return Sampler(choice("sampler", method, METHODS), choice("variance", variance, VARIANCES),
                   number("eta", eta, 0.0, 1.0), choice("spacing", spacing, SPACINGS),
                   whole("steps", steps, 1, config.T, f" (T = {config.T} for {path.name})"))


def settings(checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed, n,
             clip) -> Settings:
    """Check every control (in the order of CONTROLS); raise UserInputError naming what is wrong."""
    guidance = number("guidance", guidance, 0.0, MAX_GUIDANCE)
    seed = whole("seed", seed, 0, 2 ** 63 - 1)
    n = whole("the number of images", n, 1, MAX_IMAGES)
    path, config = resolve(checkpoint, upload, objective)
    plan = sampler(method, variance, eta, spacing, steps, path, config)
    if config.class_names:
        choice("class", label, [MIXED, *config.class_names])
    elif label not in (MIXED, None) or guidance != 1:
        raise UserInputError(f"{path.name} is unconditional (trained without class labels): there is no class to "
                             f"choose and no classifier-free guidance. Leave the class on {MIXED!r} and guidance at "
                             "1, or choose a class-conditional checkpoint.")
    return Settings(path, config, plan, label or MIXED, guidance, seed, n, bool(clip))


def initial_noise(s: Settings) -> tuple[torch.Tensor, torch.Generator]:
    """x_T ~ N(0, I), drawn on the CPU from a generator seeded with the seed; the generator goes on to draw
    the sampler's noise."""
    gen = torch.Generator().manual_seed(s.seed)
    return torch.randn((s.n, *s.config.sample_shape), generator=gen), gen


def labels(s: Settings, device: torch.device) -> torch.Tensor | None:
    """Class labels: None for an unconditional model; all the chosen class, or 0, 1, ..., K-1, 0, ... (MIXED)."""
    names = s.config.class_names
    if not names:
        return None
    if s.label == MIXED:
        return torch.arange(s.n, device=device) % len(names)
    return torch.full((s.n,), names.index(s.label), dtype=torch.long, device=device)


@dataclass(frozen=True)
class Frame:
    """What one yield shows: the sample x at timestep t after `step` of `n` model calls (x_T first, x_0 last)
    and x0_hat, the guess the model made at t_model on the last call (None before the first)."""
    step: int
    n: int
    t: int
    t_model: int | None
    sigma: float | None
    x: torch.Tensor
    x0_hat: torch.Tensor | None


def _frames(s: Settings, stop: threading.Event | None) -> Iterator[Frame]:
    """x_T, then one Frame per model call; once `stop` is set, no further model call is made."""
    x_T, gen = initial_noise(s)
    p = s.sampler
    yield Frame(0, p.steps, s.config.T, None, None, x_T, None)
    model = model_at(s.path)  # after the first frame: loading takes longer than showing x_T
    device = next(model.parameters()).device
    run = sample(model, model.schedule, x_T.to(device), method=p.method, steps=p.steps, eta=p.eta,
                 objective=model.objective, y=labels(s, device), guidance=s.guidance, spacing=p.spacing,
                 variance=p.variance, clip_x0=s.clip, generator=gen)
    for st in until(run, stop):
        yield Frame(st.i + 1, st.n, st.t_next, st.t, st.sigma, st.x_next, st.x0_hat)


def shown(steps: int) -> list[int]:
    """The steps after which a frame is shown: every k-th, k = ceil(steps / MAX_FRAMES), and always the last."""
    k = math.ceil(steps / MAX_FRAMES)
    return [j for j in range(1, steps + 1) if j % k == 0 or j == steps]


def trajectory(s: Settings, stop: threading.Event | None = None) -> Iterator[Frame]:
    """The frames of a run: x_T, then x after each step in `shown` (up to where it was stopped)."""
    show = set(shown(s.sampler.steps))
    return (f for f in _frames(s, stop) if f.step == 0 or f.step in show)


def side_by_side(a: Settings, b: Settings, stop: threading.Event | None = None) -> Iterator[tuple[Frame, Frame]]:
    """Two runs from the same x_T in lockstep: x_T, then at tick j = 1..F (F = min(MAX_FRAMES, the larger
    number of steps)) each run after ceil(j steps / F) of its steps, so both reach x_0 at the last tick."""
    runs = [_frames(a, stop), _frames(b, stop)]
    current = [next(run) for run in runs]
    yield current[0], current[1]
    ticks = min(MAX_FRAMES, max(a.sampler.steps, b.sampler.steps))
    for j in range(1, ticks + 1):
        for k, (run, s) in enumerate(zip(runs, (a, b))):
            while current[k].step < math.ceil(j * s.sampler.steps / ticks):
                f = next(run, None)
                if f is None:  # stopped
                    return
                current[k] = f
        yield current[0], current[1]


# --- pictures, texts, files ----------------------------------------------------------------------------------

def grid(x: torch.Tensor) -> np.ndarray:
    """A batch (N, C, H, W) in [-1, 1] as one float32 (C, H', W') picture: ceil(sqrt(N)) images per row with PAD
    white pixels between them, values clipped to [-1, 1]."""
    x = x.detach().float().cpu().clamp(-1, 1)
    g = make_grid(x, nrow=math.ceil(math.sqrt(x.shape[0])), padding=PAD, pad_value=1.0)
    return g[: x.shape[1]].numpy()  # make_grid repeats one channel three times


def scale_to(g: np.ndarray, pixels: int) -> int:
    """The whole-pixel enlargement that brings a grid's larger side up to about `pixels`."""
    return max(1, pixels // max(g.shape[1:]))


def gif_frame(x: np.ndarray, x0: np.ndarray | None) -> np.ndarray:
    """The streamed pictures of x and x0_hat side by side (grey where there is no guess yet)."""
    right = x0 if x0 is not None else np.full_like(x, 128)
    gap = np.full((x.shape[0], 2 * PAD, *x.shape[2:]), 255, np.uint8)
    return np.concatenate([x, gap, right], axis=1)


def save_results(final: np.ndarray, gif: list[np.ndarray]) -> tuple[Path, Path]:
    """Write the final grid as samples.png and the trajectory as trajectory.gif in a new folder under
    OUT_DIR, deleting folders older than KEEP_S."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_S
    for old in OUT_DIR.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(dir=OUT_DIR))
    png, anim = folder / "samples.png", folder / "trajectory.gif"
    Image.fromarray(final).save(png)
    frames = [Image.fromarray(f) for f in gif]
    frames[0].save(anim, save_all=True, append_images=frames[1:], loop=0,
                   duration=[GIF_MS] * (len(frames) - 1) + [GIF_HOLD_MS])
    return png, anim


def describe(s: Settings) -> str:
    """A run's settings in a few words, e.g. "DDIM, η = 0.5, 50 steps (trailing), w = 2"."""
    parts = [s.sampler.describe()]
    if s.config.class_names:
        parts.append(f"w = {s.guidance:g}")
    if s.clip:
        parts.append("x̂₀ clipped")
    return ", ".join(parts)


def step_text(f: Frame) -> str:
    if f.step == 0:
        return f"x_T at t = {f.t}: pure noise, no guess yet"
    return (f"step {f.step} of {f.n}: the model saw t = {f.t_model} and guessed x̂₀; σ = {f.sigma:.4f} of fresh "
            f"noise, now at t = {f.t}")


def blow_up_note(s: Settings, f: Frame) -> str:
    """A warning, once x0_hat has left the image range far (an unclipped eps model near t = T, typically)."""
    peak = 0.0 if s.clip or f.x0_hat is None else float(f.x0_hat.abs().amax())
    if not peak > BLOW_UP:
        return ""
    inverse = 1 / float(_schedule(s.config.schedule, s.config.T).sqrt_alpha_bars[-1])
    return (f"\n\n⚠ x̂₀ reaches ±{peak:.3g}, far outside the image range [−1, 1]. From a "
            "prediction of ε, x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t multiplies the network's error by 1/√ᾱ_t: "
            f"{inverse:.3g} at t = {s.config.T} on this schedule (seed 001, eq. 8). Tick **Clip x̂₀**, or compare "
            "with the x0 or v checkpoint.")


def status(s: Settings, f: Frame, seconds: float) -> str:
    k = math.ceil(s.sampler.steps / MAX_FRAMES)
    every = f" (showing every {k}th step and the last)" if k > 1 else ""
    head = f"**{s.path.name}** predicts {s.config.objective} · {describe(s)} · seed {s.seed}{every}"
    text = step_text(f)
    text = text[0].upper() + text[1:]
    if f.step == f.n:
        done = f"**Done**: {s.n} samples in {seconds:.1f} s ({f.n} model calls)"
        return f"{head}\n\n{done}. {text}.{blow_up_note(s, f)}"
    return f"{head}\n\n{text} · {seconds:.1f} s{blow_up_note(s, f)}"


@functools.lru_cache(maxsize=8)
def _schedule(name: str, T: int) -> NoiseSchedule:
    return make_schedule(name, T)


@functools.lru_cache(maxsize=8)
def _references(name: str, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t = 1..T at about CURVE_POINTS points (T included) and sqrt(beta_t), sqrt(beta_tilde_t) there."""
    s = _schedule(name, T)
    t = np.unique(np.r_[np.arange(1, T, max(1, T // CURVE_POINTS)), T])
    return (t.astype(np.float32), s.betas.sqrt().numpy()[t].astype(np.float32),
            s.beta_tildes.sqrt().numpy()[t].astype(np.float32))


def sigma_figure(config: ModelConfig, runs: list[tuple[str, Sampler]]) -> go.Figure:
    """The sigma each sampler adds on each step (from samplers.plan), over sqrt(beta_t) and sqrt(beta_tilde_t)
    of the checkpoint's schedule; runs are (name, sampler)."""
    schedule = _schedule(config.schedule, config.T)
    traces = []
    for name, p in runs:
        steps = np.array(plan(schedule, p.method, p.steps, p.eta, p.spacing, p.variance), dtype=np.float64)
        traces.append((f"{name}{p.describe()}", steps[:, 0].astype(np.float32), steps[:, 2].astype(np.float32)))
    title = f"σ used on each step ({config.schedule} schedule, T = {config.T})"
    return plots.sampler_sigmas(*_references(config.schedule, config.T), traces, title)


def model_info(path: Path, config: ModelConfig) -> str:
    c, h, w = config.sample_shape
    kind = f"class-conditional ({len(config.class_names)} classes)" if config.class_names else "unconditional"
    return (f"**{path.name}**: {config.dataset}, {c}×{h}×{w} samples, {kind}, {config.schedule} schedule, "
            f"T = {config.T}, {config.step} training steps.\n\n"
            f"The network predicts **{SYMBOLS[config.objective]}**. With $a_t = \\sqrt{{\\bar\\alpha_t}}$ and "
            f"$b_t = \\sqrt{{1-\\bar\\alpha_t}}$ the sampler turns every prediction into the other two: "
            f"{CONVERSIONS[config.objective]} (seed 001).")


# --- stop flags ----------------------------------------------------------------------------------------------

STOPS = Stops()  # Generate's and Compare's runs


def stopped(shown: str | None) -> str:
    """The status of a stopped run, from the Stop button and from the run itself alike."""
    return f"**Stopped** after {shown}." if shown else "**Stopped** before it started."


# --- Gradio handlers -----------------------------------------------------------------------------------------


@torch.inference_mode()
def generate(checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed, n, clip,
             request: gr.Request = None):
    """Stream one run (inputs: CONTROLS; outputs: OUTPUTS): x_T with the sigma plot, then every shown step; the
    last yield adds the trajectory GIF (the streamed pictures) and the downloads (the final grid as a PNG of
    about DOWNLOAD_PX, the GIF). A stopped run ends with a status saying where it stopped."""
    with STOPS.running(request, "generate") as running:  # first: the click's entry is taken even if input is bad
        s = settings(checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed,
                     n, clip)
        start = time.perf_counter()
        scale = 0
        gif, done = [], False
        for f in trajectory(s, running.stop):
            if not running.show(f"step {f.step} of {f.n}"):
                break
            g = grid(f.x)
            scale = scale or scale_to(g, STREAM_PX)
            x_img = plots.picture(g, scale)
            x0_img = plots.picture(grid(f.x0_hat), scale) if f.x0_hat is not None else None
            gif.append(gif_frame(x_img, x0_img))
            text = status(s, f, time.perf_counter() - start)
            if f.step == 0:
                yield x_img, None, text, sigma_figure(s.config, [("", s.sampler)]), None, None
            elif f.step < f.n:
                yield x_img, x0_img, text, gr.skip(), gr.skip(), gr.skip()
            else:
                png, anim = save_results(plots.picture(g, scale_to(g, DOWNLOAD_PX)), gif)
                done = True
                yield x_img, x0_img, text, gr.skip(), str(anim), [str(png), str(anim)]
        if not done:  # stopped: the same words as stop_run's, whichever lands last
            yield gr.skip(), gr.skip(), stopped(running.shown), gr.skip(), gr.skip(), gr.skip()


@torch.inference_mode()
def compare(checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed, n, clip,
            objective_b, method_b, variance_b, eta_b, spacing_b, steps_b, guidance_b, clip_b,
            request: gr.Request = None):
    """Stream two runs from the same x_T side by side (inputs: CONTROLS, then CONTROLS_B for run B, which
    shares the checkpoint family, class, seed and number of images; outputs: COMPARE_OUTPUTS)."""
    with STOPS.running(request, "compare") as running:  # first: the click's entry is taken even if input is bad
        a = settings(checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed,
                     n, clip)
        b = settings(checkpoint, upload, objective_b, method_b, variance_b, eta_b, spacing_b, steps_b, label,
                     guidance_b, seed, n, clip_b)
        start = time.perf_counter()
        scale = 0
        done = False
        for fa, fb in side_by_side(a, b, running.stop):
            if not running.show(f"A: step {fa.step} of {fa.n}, B: step {fb.step} of {fb.n}"):
                break
            ga, gb = grid(fa.x), grid(fb.x)
            scale = scale or scale_to(ga, STREAM_PX)
            pics = [plots.picture(ga, scale), None, plots.picture(gb, scale), None]
            if fa.x0_hat is not None:
                pics[1], pics[3] = plots.picture(grid(fa.x0_hat), scale), plots.picture(grid(fb.x0_hat), scale)
            seconds = time.perf_counter() - start
            done = fa.step == fa.n and fb.step == fb.n
            text = (f"{'**Done**' if done else 'Same x_T'} (seed {a.seed}), {seconds:.1f} s\n\n"
                    f"**A** ({a.path.name}, {describe(a)}): {step_text(fa)}\n\n"
                    f"**B** ({b.path.name}, {describe(b)}): {step_text(fb)}")
            figure = sigma_figure(a.config, [("A: ", a.sampler), ("B: ", b.sampler)]) if fa.step == 0 else gr.skip()
            yield *pics, text, figure
        if not done:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), stopped(running.shown), gr.skip()


def stop_run(request: gr.Request = None):
    """The Stop button: this session's run ends after the model call in progress, or before it starts if it
    still waits its turn. Outputs: the status of Generate and of Compare; a stopped run's says so at once."""
    halted = {kind: stopped(shown) for kind, shown in STOPS.stop(request).items()}
    return halted.get("generate", gr.skip()), halted.get("compare", gr.skip())


@for_visitor
def sigma_plot(checkpoint, upload, objective, method, variance, eta, spacing, steps):
    """The sigma curve of the current sampler settings, redrawn as they change (before any run)."""
    path, config = resolve(checkpoint, upload, objective)
    return sigma_figure(config, [("", sampler(method, variance, eta, spacing, steps, path, config))])


def sampler_options(method: str):
    """Show sigma^2 for DDPM and eta for DDIM only."""
    return gr.Radio(visible=method == "ddpm"), gr.Slider(visible=method == "ddim")


def checkpoint_controls(path: Path, config: ModelConfig, steps, steps_b, label) -> tuple:
    """Updates of the controls that depend on the checkpoint: objective (A and B), model info, steps (A and
    B, at most T), class and guidance (A and B; hidden for unconditional models)."""
    names = config.class_names
    conditional = bool(names)
    guidance = gr.Slider(visible=True) if conditional else gr.Slider(visible=False, value=1.0)
    return (gr.Radio(value=config.objective), gr.Radio(value=config.objective), model_info(path, config),
            gr.Slider(maximum=config.T, value=min(int(steps), config.T)),
            gr.Slider(maximum=config.T, value=min(int(steps_b), config.T)),
            gr.Dropdown(choices=[MIXED, *names], value=label if label in names else MIXED, visible=conditional),
            guidance, guidance)


@for_visitor
def choose_checkpoint(checkpoint, upload, steps, steps_b, label):
    """A checkpoint was picked from the list."""
    return checkpoint_controls(*chosen(checkpoint, upload), steps, steps_b, label)


@for_visitor
def choose_objective(checkpoint, upload, objective, steps, steps_b, label):
    """The eps / x0 / v toggle: switch to the bundled checkpoint of the same family with that objective; if
    there is none, say so and keep the current one."""
    try:
        path, config = resolve(checkpoint, upload, objective)
    except UserInputError as exc:
        gr.Warning(str(exc))
        current = chosen(checkpoint, upload)[1].objective
        return gr.skip(), current, *([gr.skip()] * 7)
    value = UPLOAD if checkpoint == UPLOAD else path.name
    return gr.Dropdown(choices=checkpoint_choices(), value=value), *checkpoint_controls(path, config, steps,
                                                                                        steps_b, label)


@for_visitor
def use_upload(upload, steps, steps_b, label):
    """A checkpoint was uploaded: validate and load it, then select it."""
    path = check_upload(upload)
    return (gr.Dropdown(choices=checkpoint_choices(), value=UPLOAD),
            *checkpoint_controls(path, read_config(path), steps, steps_b, label))


@for_visitor
def drop_upload(steps, steps_b, label):
    """The upload was removed: back to the default bundled checkpoint."""
    found = bundled()
    if not found:
        return gr.Dropdown(choices=checkpoint_choices(), value=UPLOAD), *([gr.skip()] * 8)
    name = default_name(found)
    return (gr.Dropdown(choices=checkpoint_choices(), value=name),
            *checkpoint_controls(PRETRAINED / name, found[name], steps, steps_b, label))


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d, db = DEFAULTS, DEFAULTS_B
    found = bundled()
    start = default_name(found)
    config = found.get(start)
    T = config.T if config else 1000
    classes = list(config.class_names) if config else []
    plan = Sampler(d["method"], d["variance"], d["eta"], d["spacing"], min(d["steps"], T))
    figure = sigma_figure(config, [("", plan)]) if config else None
    info = model_info(PRETRAINED / start, config) if config else \
        f"No bundled image checkpoint in {PRETRAINED.name}/: upload one (train it with train.py)."
    grid_style = ["pixelated", "reverse-grid"]
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            checkpoint = gr.Dropdown(checkpoint_choices(), value=start or UPLOAD, label="Checkpoint",
                                     elem_id="reverse-checkpoint")
            objective = gr.Radio(list(OBJECTIVES), value=config.objective if config else "eps",
                                 label="The network predicts (switches to the checkpoint trained for it)",
                                 elem_id="reverse-objective")
            info_md = gr.Markdown(info, latex_delimiters=LATEX, elem_id="reverse-info")
            with gr.Accordion("Upload a checkpoint", open=False):
                upload = gr.File(label=f".safetensors from train.py, at most {MAX_UPLOAD_BYTES >> 20} MB",
                                 file_types=[".safetensors"], type="filepath", elem_id="reverse-upload")
            method = gr.Radio([(METHOD_NAMES[m], m) for m in METHODS], value=d["method"], label="Sampler",
                              elem_id="reverse-method")
            variance = gr.Radio([(f"σ_t² = {VARIANCE_NAMES[v]}_t", v) for v in VARIANCES], value=d["variance"],
                                label="DDPM noise", visible=d["method"] == "ddpm", elem_id="reverse-variance")
            eta = gr.Slider(0, 1, value=d["eta"], step=0.05, label="η (0: deterministic DDIM, 1: DDPM-like)",
                            visible=d["method"] == "ddim", elem_id="reverse-eta")
            spacing = gr.Radio(list(SPACINGS), value=d["spacing"], label="Timestep spacing",
                               elem_id="reverse-spacing")
            steps = gr.Slider(1, T, value=min(d["steps"], T), step=1, label="Steps (model calls)",
                              elem_id="reverse-steps")
            label = gr.Dropdown([MIXED, *classes], value=MIXED, label="Class", visible=bool(classes),
                                elem_id="reverse-class")
            guidance = gr.Slider(0, MAX_GUIDANCE, value=d["guidance"], step=0.25, visible=bool(classes),
                                 label="Guidance w (0: unconditional, 1: conditional, > 1: further)",
                                 elem_id="reverse-guidance")
            with gr.Row():
                seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed", elem_id="reverse-seed")
                n = gr.Slider(1, MAX_IMAGES, value=d["n"], step=1, label="Images", elem_id="reverse-n")
            clip = gr.Checkbox(d["clip"], label="Clip x̂₀ to [−1, 1]", elem_id="reverse-clip")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="reverse-generate")
                stop = gr.Button("Stop", variant="stop", elem_id="reverse-stop")
        with gr.Column(scale=3):
            with gr.Row():
                x_t = gr.Image(label="x_t", format="png", interactive=False, elem_id="reverse-xt",
                               elem_classes=grid_style, buttons=["download"])
                x0_hat = gr.Image(label="x̂₀, the model's guess of the clean image", format="png",
                                  interactive=False, elem_id="reverse-x0", elem_classes=grid_style,
                                  buttons=["download"])
            status_md = gr.Markdown("Press **Generate**.", elem_id="reverse-status")
            with gr.Row():
                plot = gr.Plot(figure, show_label=False, elem_id="reverse-sigmas")
                with gr.Column():
                    anim = gr.Image(label="Trajectory: x_t and x̂₀ (GIF)", interactive=False, type="filepath",
                                    elem_id="reverse-gif", elem_classes=grid_style, buttons=["download"])
                    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                        elem_id="reverse-downloads")
    with gr.Accordion("Compare: the same x_T through two settings", open=False):
        gr.Markdown("**A** is the setting above; **B** is set here. Both share the checkpoint's dataset and "
                    "schedule, the class, the seed and the number of images, so they start from the same x_T.")
        with gr.Row():
            objective_b = gr.Radio(list(OBJECTIVES), value=config.objective if config else "eps",
                                   label="B: the network predicts", elem_id="reverse-objective-b")
            method_b = gr.Radio([(METHOD_NAMES[m], m) for m in METHODS], value=db["method"], label="B: sampler",
                                elem_id="reverse-method-b")
            variance_b = gr.Radio([(f"σ_t² = {VARIANCE_NAMES[v]}_t", v) for v in VARIANCES],
                                  value=db["variance"], label="B: DDPM noise", visible=db["method"] == "ddpm",
                                  elem_id="reverse-variance-b")
            eta_b = gr.Slider(0, 1, value=db["eta"], step=0.05, label="B: η", visible=db["method"] == "ddim",
                              elem_id="reverse-eta-b")
        with gr.Row():
            spacing_b = gr.Radio(list(SPACINGS), value=db["spacing"], label="B: spacing", elem_id="reverse-spacing-b")
            steps_b = gr.Slider(1, T, value=min(db["steps"], T), step=1, label="B: steps", elem_id="reverse-steps-b")
            guidance_b = gr.Slider(0, MAX_GUIDANCE, value=db["guidance"], step=0.25, label="B: guidance w",
                                   visible=bool(classes), elem_id="reverse-guidance-b")
            clip_b = gr.Checkbox(db["clip"], label="B: clip x̂₀", elem_id="reverse-clip-b")
        with gr.Row():
            run_b = gr.Button("Compare A and B", variant="primary", elem_id="reverse-compare")
            stop_b = gr.Button("Stop", variant="stop", elem_id="reverse-stop-b")
        with gr.Row():
            pictures_b = [gr.Image(label=name, format="png", interactive=False, elem_id=f"reverse-{key}",
                                   elem_classes=grid_style, buttons=["download"])
                          for name, key in (("A: x_t", "a-xt"), ("A: x̂₀", "a-x0"), ("B: x_t", "b-xt"),
                                            ("B: x̂₀", "b-x0"))]
        status_b = gr.Markdown(elem_id="reverse-compare-status")
        plot_b = gr.Plot(show_label=False, elem_id="reverse-compare-sigmas")

    controls = [checkpoint, upload, objective, method, variance, eta, spacing, steps, label, guidance, seed, n, clip]
    controls_b = [objective_b, method_b, variance_b, eta_b, spacing_b, steps_b, guidance_b, clip_b]
    dependent = [objective, objective_b, info_md, steps, steps_b, label, guidance, guidance_b]
    plot_inputs = [checkpoint, upload, objective, method, variance, eta, spacing, steps]
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    one_run = {"concurrency_limit": 1, "concurrency_id": RUN_GROUP, "show_progress": "minimal"}

    at_once = {"concurrency_limit": None, "concurrency_id": "reverse-stop", "show_progress": "hidden"}
    run.click(STOPS.expecting("generate"), api_visibility="private", **at_once).then(
        for_visitor(generate), controls, [x_t, x0_hat, status_md, plot, anim, downloads], api_name="generate",
        **one_run)
    run_b.click(STOPS.expecting("compare"), api_visibility="private", **at_once).then(
        for_visitor(compare), [*controls, *controls_b], [*pictures_b, status_b, plot_b], api_name="compare",
        **one_run)
    gr.on([stop.click, stop_b.click], stop_run, None, [status_md, status_b], api_name="stop", **at_once)

    gr.on([method.input, variance.input, eta.input, spacing.input, steps.input], sigma_plot, plot_inputs, plot,
          api_name="sigma_plot", **quiet)
    redraw = {"fn": sigma_plot, "inputs": plot_inputs, "outputs": plot, "api_visibility": "private", **quiet}
    checkpoint.input(choose_checkpoint, [checkpoint, upload, steps, steps_b, label], dependent,
                     api_name="choose_checkpoint", **quiet).success(**redraw)
    objective.input(choose_objective, [checkpoint, upload, objective, steps, steps_b, label],
                    [checkpoint, *dependent], api_name="choose_objective", **quiet).success(**redraw)
    upload.upload(use_upload, [upload, steps, steps_b, label], [checkpoint, *dependent],
                  api_name="upload_checkpoint", show_progress="minimal").success(**redraw)
    upload.clear(drop_upload, [steps, steps_b, label], [checkpoint, *dependent], api_name="drop_checkpoint",
                 **quiet).success(**redraw)
    method.input(sampler_options, method, [variance, eta], api_visibility="private", **quiet)
    method_b.input(sampler_options, method_b, [variance_b, eta_b], api_visibility="private", **quiet)
