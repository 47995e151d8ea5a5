"""What the reverse view runs and shows, with no gradio in it: the view (explorer.app.reverse) only builds the
page, parses the controls into a `RunSettings` and streams what `generate_stream` / `compare_stream` yield.

Timesteps follow explorer.schedules: t = T is pure noise, t = 0 the sample. The sampler loop is explorer's
(`samplers.sample`, one Step per model call); this module turns the Steps into pictures and texts. The sigma
curves come from `samplers.plan`, the function the samplers take their sigma from. Checkpoints and models are
explorer.app.catalogue's.

Seeds: one torch.Generator seeded with the seed draws x_T, then the sampler's fresh noise. Compare mode gives
each of its two runs its own generator with the same seed, so both start from the same x_T.

Frames: x_T first, then x after every k-th step and after the last, k = ceil(steps / MAX_FRAMES), so a run
streams at most MAX_FRAMES + 1 frames, small (STREAM_PX; the page enlarges them without smoothing). The grids of a
class-conditional model carry each image's class name in a caption strip under it, drawn into the picture (so the
downloaded PNG keeps them; the GIF stays the small plain grids); a cell is then at least CAPTION_CELL_PX wide. A stream
yields a dict of the outputs (OUTPUTS, COMPARE_OUTPUTS) that change; a run stopped by its flag
(explorer.app.stops) ends with its status saying where it stopped. Generate's run ends with its shown frames kept
small (explorer.app.reverse_replay.Replay) for the step scrubber, which goes back to them with no model call.

Two kinds of guidance, side by side: classifier-free w (the model's conditional and null-class predictions mixed,
Ho & Salimans 2022) and classifier s (the gradient of the bundled noise-aware classifier p_phi(y | x_t, t),
explorer.noisy_classifier, Dhariwal & Nichol 2021, eq. 14), both applied by samplers.sample. Classifier guidance is
offered for a checkpoint whose dataset, image shape, classes, schedule and T are the classifier's (`guide_for`).
"""
from __future__ import annotations

import functools
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from torchvision.utils import make_grid

from explorer import checks
from explorer.app import catalogue, files, plots
from explorer.app.reverse_replay import Replay, keep
from explorer.app.catalogue import UPLOAD
from explorer.app.options import (MIXED, SEED_MAX, SamplerOptions, UserInputError, class_labels, schedule,
                                  shown_steps, until)
from explorer.checkpoint import DEFAULT_CHECKPOINT as DEFAULT_PATH
from explorer.checkpoint import ModelConfig, fast_precision
from explorer.noisy_classifier import DEFAULT_PATH as GUIDE_PATH
from explorer.noisy_classifier import NoisyClassifier, NoisyClassifierError, load_noisy_classifier
from explorer.samplers import plan, sample

DEFAULT_CHECKPOINT = DEFAULT_PATH.name  # the view opens on it when bundled, else on the first file
MAX_IMAGES = 16
MAX_GUIDANCE = 10.0
MAX_CLASSIFIER_SCALE = 30.0
GUIDE = GUIDE_PATH.name  # the noise-aware classifier of classifier guidance, looked for in catalogue.PRETRAINED
MAX_FRAMES = 50  # frames streamed per run besides x_T
STREAM_PX = 128  # streamed grids are enlarged by whole pixels up to about this size
DOWNLOAD_PX = 512  # and the final grid to download up to about this size
PAD = 2  # white pixels between the images of a grid
CAPTION_CELL_PX = 84  # a captioned grid is enlarged until each image is at least this wide, so its name reads
GIF_MS, GIF_HOLD_MS = 100, 1500  # per GIF frame, and for the last one
KEEP_S = 3600  # result folders older than this are deleted when a new run saves its own
OUT_DIR = Path(tempfile.gettempdir()) / "diffusion-explorer-reverse"
CURVE_POINTS = 250
BLOW_UP = 10.0  # |x0_hat| beyond this (images live in [-1, 1]) gets the status a warning
DEFAULTS = {"checkpoint": DEFAULT_CHECKPOINT, "upload": None, "objective": "v", "method": "ddim",
            "variance": "beta_tilde", "eta": 0.0, "spacing": "trailing", "steps": 50, "label": MIXED,
            "guidance": 1.0, "classifier_scale": 0.0, "seed": 0, "n": 16, "clip": True}
DEFAULTS_B = {"objective_b": "v", "method_b": "ddpm", "variance_b": "beta_tilde", "eta_b": 1.0,
              "spacing_b": "trailing", "steps_b": 50, "guidance_b": 1.0, "classifier_scale_b": 0.0,
              "clip_b": True}
CONTROLS = tuple(DEFAULTS)  # the names of Generate's controls, in the API's order
CONTROLS_B = tuple(DEFAULTS_B)  # and of run B's in Compare, after CONTROLS
OUTPUTS = ("x_t", "x0_hat", "status", "sigmas", "trajectory", "downloads", "replay")
COMPARE_OUTPUTS = ("x_t_a", "x0_hat_a", "x_t_b", "x0_hat_b", "status", "sigmas")
CONVERSIONS = {  # how the sampler turns each objective into the other two (seed 001, eq. 2 and 8, section 2.6)
    "eps": r"$\hat x_0 = (x_t - b_t\hat\varepsilon)/a_t$ and $\hat v = a_t\hat\varepsilon - b_t\hat x_0$",
    "x0": r"$\hat\varepsilon = (x_t - a_t\hat x_0)/b_t$ and $\hat v = a_t\hat\varepsilon - b_t\hat x_0$",
    "v": r"$\hat x_0 = a_t x_t - b_t\hat v$ and $\hat\varepsilon = b_t x_t + a_t\hat v$",
}
SYMBOLS = {"eps": "ε (the noise)", "x0": "x₀ (the clean image)", "v": "v (the velocity a_t ε − b_t x₀)"}


def default_name(found: dict[str, ModelConfig]) -> str | None:
    """The checkpoint the view starts from (and returns to when an upload is removed)."""
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in found else next(iter(found), None)


# --- one run's settings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSettings:
    """One validated run: the checkpoint file and how to sample from it."""
    path: Path
    config: ModelConfig
    sampler: SamplerOptions
    label: str  # MIXED or a class name
    guidance: float
    classifier_scale: float
    seed: int
    n: int
    clip: bool

    @classmethod
    def parse(cls, controls: dict) -> RunSettings:
        """Generate's controls by name (CONTROLS); ValueError names what is wrong."""
        c = controls
        guidance = checks.number("guidance", c["guidance"], 0.0, MAX_GUIDANCE)
        classifier_scale = checks.number("classifier guidance s", c["classifier_scale"], 0.0, MAX_CLASSIFIER_SCALE)
        seed = checks.whole("seed", c["seed"], 0, SEED_MAX)
        n = checks.whole("the number of images", c["n"], 1, MAX_IMAGES)
        path, config = catalogue.resolve(c["checkpoint"], c["upload"], c["objective"])
        options = sampler_options(c, path, config)
        label = c["label"]
        if config.class_names:
            checks.choice("class", label, [MIXED, *config.class_names])
        elif label not in (MIXED, None) or guidance != 1:
            raise UserInputError(f"{path.name} is unconditional (trained without class labels): there is no class "
                                 f"to choose and no classifier-free guidance. Leave the class on {MIXED!r} and "
                                 "guidance at 1, or choose a class-conditional checkpoint.")
        guide, why = guide_for(path, config) if classifier_scale else (True, "")
        if guide is None:
            raise UserInputError(f"classifier guidance is not available for {path.name}: {why}. Leave classifier s "
                                 "at 0.")
        return cls(path, config, options, label or MIXED, guidance, classifier_scale, seed, n, bool(c["clip"]))

    @classmethod
    def parse_b(cls, controls: dict) -> RunSettings:
        """Compare's run B: CONTROLS with the CONTROLS_B ("steps_b" for "steps", ...) in place of A's."""
        return cls.parse({**controls, **{name[:-2]: controls[name] for name in CONTROLS_B}})

    def describe(self) -> str:
        """The run's settings in a few words, e.g. "DDIM, η = 0.5, 50 steps (trailing), classifier-free w = 2,
        classifier s = 3" (s when it is not 0)."""
        parts = [self.sampler.describe()]
        if self.config.class_names:
            parts.append(f"classifier-free w = {self.guidance:g}")
        if self.classifier_scale:
            parts.append(f"classifier s = {self.classifier_scale:g}")
        if self.clip:
            parts.append("x̂₀ clipped")
        return ", ".join(parts)


@functools.lru_cache(maxsize=2)
def _guide(path: str, mtime_ns: int, size: int) -> NoisyClassifier:
    return load_noisy_classifier(path, catalogue.DEVICE)


def guide_for(path: Path, config: ModelConfig) -> tuple[NoisyClassifier | None, str]:
    """The noise-aware classifier p_phi(y | x_t, t) that can guide the checkpoint at `path` (GUIDE in
    catalogue.PRETRAINED, loaded once, again when the file changes) and the words that say where it comes from;
    or None and why not. It can when the checkpoint's dataset, image shape, classes, schedule and T are the
    classifier's (NoisyClassifierConfig.misfit). The labels it steers toward are the Class control's, which an
    unconditional model has not."""
    file = catalogue.PRETRAINED / GUIDE
    try:
        stat = file.stat()
        guide = _guide(str(file), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None, f"there is no noise-aware classifier {GUIDE} in {file.parent.name}/ (train one with " \
                     "scripts/train_noisy_classifier.py)"
    except NoisyClassifierError as err:
        return None, str(err)
    if not config.class_names:
        return None, f"{path.name} is unconditional: there is no class to steer toward"
    why = guide.config.misfit(config)
    if why:
        return None, f"{GUIDE} does not fit {path.name}: {why}"
    return guide, f"{GUIDE}, trained on the x_t of this dataset, schedule and T"


def sampler_options(controls: dict, path: Path, config: ModelConfig) -> SamplerOptions:
    """The sampler's controls checked for the checkpoint at `path`."""
    c = controls
    return SamplerOptions.check(c["method"], c["variance"], c["eta"], c["spacing"], c["steps"], config.T,
                                f" (T = {config.T} for {path.name})")


def initial_noise(settings: RunSettings) -> tuple[torch.Tensor, torch.Generator]:
    """x_T ~ N(0, I), drawn on the CPU from a generator seeded with the seed; the generator goes on to draw
    the sampler's noise."""
    gen = torch.Generator().manual_seed(settings.seed)
    return torch.randn((settings.n, *settings.config.sample_shape), generator=gen), gen


def batch_labels(settings: RunSettings, device: torch.device) -> torch.Tensor | None:
    """Class labels: None for an unconditional model; all the chosen class, or 0, 1, ..., K-1, 0, ... (MIXED)."""
    names = settings.config.class_names
    return class_labels(settings.label, names, settings.n, device) if names else None


# --- the run, frame by frame ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """What one frame shows: the sample x at timestep t after `step` of `n` model calls (x_T first, x_0 last)
    and x0_hat, the guess the model made at t_model on the last call (None before the first); x_model and
    eps_hat are that call's input (the sample at t_model) and its guess of the noise."""
    step: int
    n: int
    t: int
    t_model: int | None
    sigma: float | None
    x: torch.Tensor
    x0_hat: torch.Tensor | None
    x_model: torch.Tensor | None = None
    eps_hat: torch.Tensor | None = None


def _progress(settings: RunSettings, stop: threading.Event | None) -> Iterator[Progress]:
    """x_T, then one Progress per model call; once `stop` is set, no further model call is made."""
    x_T, gen = initial_noise(settings)
    options = settings.sampler
    yield Progress(0, options.steps, settings.config.T, None, None, x_T, None)
    model = catalogue.sampling_model(settings.path)  # after the first frame: loading takes longer than showing x_T
    device = next(model.parameters()).device
    guide = guide_for(settings.path, settings.config)[0] if settings.classifier_scale else None
    steps = sample(model, model.schedule, x_T.to(device), **options.keywords(), objective=model.objective,
                   y=batch_labels(settings, device), guidance=settings.guidance, clip_x0=settings.clip, generator=gen,
                   classifier=guide, classifier_scale=settings.classifier_scale)
    for st in until(steps, stop):
        yield Progress(st.i + 1, st.n, st.t_next, st.t, st.sigma, st.x_next, st.x0_hat, st.x_t, st.eps_hat)


def shown(steps: int) -> list[int]:
    """The steps after which a frame is shown (options.shown_steps with MAX_FRAMES)."""
    return shown_steps(steps, MAX_FRAMES)


def trajectory(settings: RunSettings, stop: threading.Event | None = None) -> Iterator[Progress]:
    """The frames of a run: x_T, then x after each step in `shown` (up to where it was stopped)."""
    show = set(shown(settings.sampler.steps))
    return (f for f in _progress(settings, stop) if f.step == 0 or f.step in show)


def side_by_side(a: RunSettings, b: RunSettings, stop: threading.Event | None = None
                 ) -> Iterator[tuple[Progress, Progress]]:
    """Two runs from the same x_T in lockstep: x_T, then at tick j = 1..F (F = min(MAX_FRAMES, the larger
    number of steps)) each run after ceil(j steps / F) of its steps, so both reach x_0 at the last tick."""
    runs = [_progress(a, stop), _progress(b, stop)]
    current = [next(run) for run in runs]
    yield current[0], current[1]
    ticks = min(MAX_FRAMES, max(a.sampler.steps, b.sampler.steps))
    for j in range(1, ticks + 1):
        for k, (run, settings) in enumerate(zip(runs, (a, b))):
            while current[k].step < math.ceil(j * settings.sampler.steps / ticks):
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


def cell_names(settings: RunSettings) -> list[str] | None:
    """The class name of each image of the run's grid, in order (None for an unconditional model)."""
    y = batch_labels(settings, torch.device("cpu"))
    return None if y is None else [settings.config.class_names[k] for k in y.tolist()]


@dataclass(frozen=True)
class Drawing:
    """How a run's grids are drawn: enlarged `scale` times, with each image's class name under it (names;
    None: no captions)."""
    scale: int
    names: list[str] | None

    @classmethod
    def of(cls, settings: RunSettings, pixels: int = STREAM_PX, captions: bool = True) -> Drawing:
        """The grids of this run at about `pixels`, captioned if asked and the model has classes (and then at
        least CAPTION_CELL_PX per image)."""
        g = grid(torch.zeros(settings.n, *settings.config.sample_shape))
        names = cell_names(settings) if captions else None
        scale = scale_to(g, pixels)
        if names:
            scale = max(scale, math.ceil(CAPTION_CELL_PX / settings.config.sample_shape[-1]))
        return cls(scale, names)

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        """The batch x (N, C, H, W) as uint8 pixels: the grid, enlarged, captioned."""
        pixels = plots.picture(grid(x), self.scale)
        if self.names is None:
            return pixels
        s = self.scale
        return plots.captioned(pixels, self.names, math.ceil(math.sqrt(x.shape[0])), (x.shape[-2] * s,
                               x.shape[-1] * s), PAD * s)


def gif_frame(x: np.ndarray, x0: np.ndarray | None) -> np.ndarray:
    """The streamed pictures of x and x0_hat side by side (grey where there is no guess yet)."""
    right = x0 if x0 is not None else np.full_like(x, 128)
    gap = np.full((x.shape[0], 2 * PAD, *x.shape[2:]), 255, np.uint8)
    return np.concatenate([x, gap, right], axis=1)


def save_results(final: np.ndarray, gif: list[np.ndarray]) -> tuple[Path, Path]:
    """Write the final grid as samples.png and the trajectory as trajectory.gif in a new folder under OUT_DIR."""
    folder = files.new_folder(OUT_DIR, KEEP_S)
    png, anim = folder / "samples.png", folder / "trajectory.gif"
    Image.fromarray(final).save(png)
    frames = [Image.fromarray(f) for f in gif]
    frames[0].save(anim, save_all=True, append_images=frames[1:], loop=0,
                   duration=[GIF_MS] * (len(frames) - 1) + [GIF_HOLD_MS])
    return png, anim


def step_text(f: Progress) -> str:
    if f.step == 0:
        return f"x_T at t = {f.t}: pure noise, no guess yet"
    return (f"step {f.step} of {f.n}: the model saw t = {f.t_model} and guessed x̂₀; σ = {f.sigma:.4f} of fresh "
            f"noise, now at t = {f.t}")


def blow_up_note(settings: RunSettings, f: Progress) -> str:
    """A warning, once x0_hat has left the image range far (an unclipped eps model near t = T, typically)."""
    peak = 0.0 if settings.clip or f.x0_hat is None else float(f.x0_hat.abs().amax())
    if not peak > BLOW_UP:
        return ""
    config = settings.config
    inverse = 1 / float(schedule(config.schedule, config.T).sqrt_alpha_bars[-1])
    return (f"\n\n⚠ x̂₀ reaches ±{peak:.3g}, far outside the image range [−1, 1]. From a "
            "prediction of ε, x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t multiplies the network's error by 1/√ᾱ_t: "
            f"{inverse:.3g} at t = {config.T} on this schedule (DDPM eq. 15). Tick **Clip x̂₀**, or compare "
            "with the x0 or v checkpoint.")


def status(settings: RunSettings, f: Progress, seconds: float) -> str:
    k = math.ceil(settings.sampler.steps / MAX_FRAMES)
    every = f" (showing every {k}th step and the last)" if k > 1 else ""
    head = (f"**{settings.path.name}** predicts {settings.config.objective} · {settings.describe()} · "
            f"seed {settings.seed}{every}")
    text = step_text(f)
    text = text[0].upper() + text[1:]
    if f.step == f.n:
        done = f"**Done**: {settings.n} samples in {seconds:.1f} s ({f.n} model calls)"
        return f"{head}\n\n{done}. {text}.{blow_up_note(settings, f)}"
    return f"{head}\n\n{text} · {seconds:.1f} s{blow_up_note(settings, f)}"


def stopped(shown_last: str | None) -> str:
    """The status of a stopped run, from the Stop button and from the run itself alike."""
    return f"**Stopped** after {shown_last}." if shown_last else "**Stopped** before it started."


def _references(name: str, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t = 1..T at about CURVE_POINTS points (T included) and sqrt(beta_t), sqrt(beta_tilde_t) there."""
    sched = schedule(name, T)
    t = np.unique(np.r_[np.arange(1, T, max(1, T // CURVE_POINTS)), T])
    return (t.astype(np.float32), sched.betas.sqrt().numpy()[t].astype(np.float32),
            sched.beta_tildes.sqrt().numpy()[t].astype(np.float32))


def sigma_figure(config: ModelConfig, runs: list[tuple[str, SamplerOptions]]) -> go.Figure:
    """The sigma each sampler adds on each step (from samplers.plan), over sqrt(beta_t) and sqrt(beta_tilde_t)
    of the checkpoint's schedule; runs are (name, sampler options)."""
    sched = schedule(config.schedule, config.T)
    traces = []
    for name, options in runs:
        planned = np.array(plan(sched, options.method, options.steps, options.eta, options.spacing,
                                options.variance), dtype=np.float64)
        traces.append((f"{name}{options.describe()}", planned[:, 0].astype(np.float32),
                       planned[:, 2].astype(np.float32)))
    title = f"σ used on each step ({config.schedule} schedule, T = {config.T})"
    return plots.sampler_sigmas(*_references(config.schedule, config.T), traces, title)


def with_checkpoint(controls: dict, path: Path, config: ModelConfig) -> dict:
    """`controls` (any of CONTROLS and CONTROLS_B, by name) as choosing the checkpoint at `path` moves them on the
    page: the objectives become its own, the steps stay within its T, a class it lacks becomes MIXED, guidance w
    goes to 1 where it is unconditional and classifier s to 0 where the noise-aware classifier does not fit it
    (guide_for); the other controls are left as they are."""
    steered = guide_for(path, config)[0] is not None
    moves = {"objective": lambda v: config.objective,
             "steps": lambda v: min(int(v), config.T),
             "label": lambda v: v if v in config.class_names else MIXED,
             "guidance": lambda v: v if config.class_names else 1.0,
             "classifier_scale": lambda v: v if steered else 0.0}
    return {k: moves[k.removesuffix("_b")](v) if k.removesuffix("_b") in moves else v for k, v in controls.items()}


def model_info(path: Path, config: ModelConfig) -> str:
    c, h, w = config.sample_shape
    kind = f"class-conditional ({len(config.class_names)} classes)" if config.class_names else "unconditional"
    fast = fast_precision(config, catalogue.DEVICE) == "bf16"
    return (f"**{path.name}**: {config.dataset}, {c}×{h}×{w} samples, {kind}, {config.schedule} schedule, "
            f"T = {config.T}, {config.step} training steps."
            + (" Sampled here in bfloat16 autocast: this CPU multiplies bf16 natively, which is faster and moves "
               "the samples by rounding only." if fast else "") + "\n\n"
            f"The network predicts **{SYMBOLS[config.objective]}**. With $a_t = \\sqrt{{\\bar\\alpha_t}}$ and "
            f"$b_t = \\sqrt{{1-\\bar\\alpha_t}}$ the sampler turns every prediction into the other two: "
            f"{CONVERSIONS[config.objective]} (DDPM eq. 4; v from Salimans & Ho 2022).{guidance_info(path, config)}")


def guidance_info(path: Path, config: ModelConfig) -> str:
    """The two kinds of guidance side by side, for a class-conditional checkpoint ("" for another), and whether
    classifier guidance is available for it and why."""
    if not config.class_names:
        return ""
    guide, why = guide_for(path, config)
    return ("\n\n**Two kinds of guidance.** Classifier-free $w$ mixes the model's own conditional and null-class "
            r"guesses, $\hat\varepsilon_\varnothing + w(\hat\varepsilon_y - \hat\varepsilon_\varnothing)$ "
            "(Ho & Salimans 2022); classifier $s$ adds the gradient of a classifier of noisy images, "
            r"$\hat\varepsilon - s\,b_t\nabla_{x_t}\log p_\phi(y \mid x_t, t)$ (Dhariwal & Nichol 2021, eq. 14). "
            + (f"Here $p_\\phi$ is {why}." if guide else f"**Classifier s is unavailable here**: {why}."))


# --- the streams the view shows ------------------------------------------------------------------------------

@torch.inference_mode()
def generate_stream(settings: RunSettings, running) -> Iterator[dict]:
    """One run for Generate, as dicts of the OUTPUTS that change: x_T with the sigma plot (clearing the last
    run's x0_hat, GIF and downloads), then every shown step; the last adds the trajectory GIF (the streamed
    pictures, without captions) and the downloads (the final grid as a PNG of about DOWNLOAD_PX, the GIF).
    "replay" is None from x_T on (the last run's is dropped) and the run's shown frames (reverse_replay.Replay)
    once it ends or is stopped after a model call. `running` is the run's explorer.app.stops.Running: its flag
    stops the run, and a stopped run ends with a status saying where."""
    start = time.perf_counter()
    draw, gif, kept, done = Drawing.of(settings), [], [], False
    plain = Drawing.of(settings, captions=False)  # the GIF's frames
    sched = schedule(settings.config.schedule, settings.config.T)
    for f in trajectory(settings, running.stop):
        if not running.show(f"step {f.step} of {f.n}"):
            break
        x_img = draw(f.x)
        x0_img = draw(f.x0_hat) if f.x0_hat is not None else None
        gif.append(gif_frame(plain(f.x), plain(f.x0_hat) if f.x0_hat is not None else None))
        kept.append(keep(f, sched))
        update = {"x_t": x_img, "x0_hat": x0_img, "status": status(settings, f, time.perf_counter() - start)}
        if f.step == 0:
            update |= {"sigmas": sigma_figure(settings.config, [("", settings.sampler)]), "trajectory": None,
                       "downloads": None, "replay": None}
        elif f.step == f.n:
            png, anim = save_results(Drawing.of(settings, DOWNLOAD_PX)(f.x), gif)
            done = True
            update |= {"trajectory": str(anim), "downloads": [str(png), str(anim)],
                       "replay": Replay(tuple(kept), draw)}
        yield update
    if not done:  # stopped: the same words as the Stop button's, whichever lands last
        yield {"status": stopped(running.shown)} | ({"replay": Replay(tuple(kept), draw)} if len(kept) > 1 else {})


@torch.inference_mode()
def compare_stream(a: RunSettings, b: RunSettings, running) -> Iterator[dict]:
    """Two runs from the same x_T side by side, as dicts of the COMPARE_OUTPUTS that change."""
    start = time.perf_counter()
    draw, done = Drawing.of(a), False  # A and B share the class and the number of images
    for fa, fb in side_by_side(a, b, running.stop):
        if not running.show(f"A: step {fa.step} of {fa.n}, B: step {fb.step} of {fb.n}"):
            break
        update = {"x_t_a": draw(fa.x), "x0_hat_a": None, "x_t_b": draw(fb.x), "x0_hat_b": None}
        if fa.x0_hat is not None:
            update |= {"x0_hat_a": draw(fa.x0_hat), "x0_hat_b": draw(fb.x0_hat)}
        seconds = time.perf_counter() - start
        done = fa.step == fa.n and fb.step == fb.n
        update["status"] = (f"{'**Done**' if done else 'Same x_T'} (seed {a.seed}), {seconds:.1f} s\n\n"
                            f"**A** ({a.path.name}, {a.describe()}): {step_text(fa)}\n\n"
                            f"**B** ({b.path.name}, {b.describe()}): {step_text(fb)}")
        if fa.step == 0:
            update["sigmas"] = sigma_figure(a.config, [("A: ", a.sampler), ("B: ", b.sampler)])
        yield update
    if not done:
        yield {"status": stopped(running.shown)}
