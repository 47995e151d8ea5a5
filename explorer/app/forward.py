"""The forward-noising view: an image dissolving into noise as t moves, with the maths beside it.

Timesteps follow explorer.schedules: t = 0..T, and t = 0 is the image itself. All the diffusion maths is
explorer's (q_sample, q_step, the schedule arrays, the spectrum functions); this module picks what to show.

Same seed family: one torch.Generator seeded with the seed draws eps_1, eps_2, ... (each the shape of x_0).
The closed form uses eps = eps_1 at every t; the iterated chain uses eps_1, ..., eps_t, one per step. So at
t = 1 both pictures are the same, and later they are two different draws from the same q(x_t | x_0).

`forward(...)` is the handler for one slider position: it returns the four pictures, three figures and four
Markdown texts (OUTPUTS names them). Everything that does not change with t is cached per (image, schedule,
T, seed) in a `Scene`: x_0, eps, x_0's spectrum and the chain, kept at checkpoints so that any t costs a few
steps at most. The schedule curves are cached per T.
"""
from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from explorer.app import plots
from explorer.app.messages import for_visitor
from explorer.app.runtime import MODES, UserInputError, load_upload
from explorer.forward import q_sample, q_step
from explorer.schedules import SCHEDULES, NoiseSchedule, make_schedule
from explorer.spectrum import crossover_frequency, noise_floor, radial_power_spectrum, signal_power

TITLE = "Forward process"
GALLERY = {p.stem.split("_", 1)[1].replace("_", " "): p
           for p in sorted((Path(__file__).parent / "assets" / "gallery").glob("*.png"))}
UPLOAD = "your upload"
SIZES = (32, 64, 128)
T_CHOICES = (1000, 200, 50)
SEED_MAX = 2 ** 32 - 1
DEFAULTS = {"image": next(iter(GALLERY)), "upload": None, "size": 64, "colour": "grey", "schedule": "cosine",
            "T": 1000, "seed": 0, "t": 250, "log_y": False}
PICTURES = {"x0": "x_0", "xt": "x_t, closed form", "chain": "x_t, iterated chain", "eps": "ε, the noise"}
OUTPUTS = ("x0", "x_t", "x_t_chain", "eps", "curves", "spectrum", "histogram",
           "text_images", "text_curves", "text_spectrum", "text_histogram")
DISPLAY_PX = 224  # pictures are enlarged by whole pixels up to about this size
CHAIN_BYTES = 8 << 20  # memory for one chain's checkpoints
CURVE_POINTS = 250  # points per schedule curve on screen
PLAY_FRAMES = 100  # play runs through 0..T in this many ticks
PLAY_INTERVAL = 0.15  # seconds between ticks
HIST_EDGES = np.linspace(-4, 4, 65, dtype=np.float32)
HIST_Y_MAX = 1.2  # fixed axes keep the picture still while playing; taller bars (pixels at t ~ 0) are cut
NORMAL_X = np.linspace(-4, 4, 161, dtype=np.float32)
NORMAL_PDF = (np.exp(-NORMAL_X ** 2 / 2) / math.sqrt(2 * math.pi)).astype(np.float32)  # the N(0, 1) reference
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
CSS = """
#forward-gallery .grid-wrap { min-height: 0 !important; height: auto !important; padding: 4px !important; }
#forward-gallery .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important;
                                   grid-auto-rows: auto !important; gap: 4px !important; }
#forward-gallery .thumbnail-item { aspect-ratio: 1 / 1; height: auto !important; }
#forward-gallery .thumbnail-item img { width: 100%; height: 100%; object-fit: cover; }
"""  # the gallery as a compact 5 x 2 grid of square thumbnails in the narrow control column


@functools.lru_cache(maxsize=16)
def _schedule(name: str, T: int) -> NoiseSchedule:
    return make_schedule(name, T)


@dataclass(frozen=True, eq=False)
class Picture:
    """An x_0, (C, H, W) float32 in [-1, 1], and its radially averaged power spectrum."""
    x0: torch.Tensor
    freqs: torch.Tensor
    power0: torch.Tensor


@functools.lru_cache(maxsize=16)
def _picture(image: str, upload: str | None, size: int | None, colour: str | None) -> Picture:
    if image in GALLERY:
        x0 = torch.from_numpy(np.asarray(Image.open(GALLERY[image]), dtype=np.float32)[None] / 127.5 - 1.0)
    else:
        x0 = load_upload(upload, size, colour)
    return Picture(x0, *radial_power_spectrum(x0))


def picture(image: str, upload: str | None, size: int, colour: str) -> Picture:
    """The chosen x_0: a gallery image as it is (28x28 grey) or the upload at size x size in colour mode."""
    if image in GALLERY:
        return _picture(image, None, None, None)
    if image != UPLOAD:
        raise UserInputError(f"unknown image {image!r}; choose one of: {', '.join([*GALLERY, UPLOAD])}")
    if not upload:
        raise UserInputError("upload an image first")
    if size not in SIZES or colour not in MODES:
        raise UserInputError(f"resolution must be one of {SIZES} and colour one of {MODES}, got {size!r}, {colour!r}")
    if not Path(upload).is_file():
        raise UserInputError("the uploaded file is no longer on the server; please upload it again")
    return _picture(UPLOAD, str(upload), int(size), colour)


class Chain:
    """The iterated chain x_s = sqrt(alpha_s) x_{s-1} + sqrt(beta_s) eps_s (explorer.forward.q_step), s = 1..T,
    with eps_1, eps_2, ... drawn one per step from torch.Generator().manual_seed(seed).

    x_s and the generator state are kept every `every` steps, computed as far as asked for, and also at the
    last t asked for; x_t starts from the nearest of these at or before t, so moving the slider forward by a
    little (or playing) costs a few steps, and any t at most every - 1 steps. Calls are serialised by a lock.
    """

    def __init__(self, schedule: NoiseSchedule, x0: torch.Tensor, seed: int):
        self.schedule = schedule
        gen = torch.Generator().manual_seed(seed)
        mark_bytes = x0.numel() * x0.element_size() + gen.get_state().numel()
        self.every = max(1, math.ceil((schedule.T + 1) * mark_bytes / CHAIN_BYTES))
        self._marks = [(x0, gen.get_state())]  # (x_s, generator state after eps_1..eps_s) for s = 0, every, ...
        self._last = (0, x0, gen.get_state())  # (s, x_s, state) of the last call
        self._lock = threading.Lock()

    @torch.inference_mode()
    def __call__(self, t: int) -> torch.Tensor:
        with self._lock:
            i = min(t // self.every, len(self._marks) - 1)
            start, x, state = i * self.every, *self._marks[i]
            if start < self._last[0] <= t:
                start, x, state = self._last
            gen = torch.Generator()
            gen.set_state(state)
            for s in range(start + 1, t + 1):
                x = q_step(self.schedule, x, s, torch.randn(x.shape, generator=gen))
                if s == len(self._marks) * self.every:
                    self._marks.append((x, gen.get_state()))
            self._last = (t, x, gen.get_state())
            return x


@dataclass(frozen=True, eq=False)
class Scene:
    """What does not change with t: the picture, the schedule, eps (= eps_1) and the chain."""
    picture: Picture
    schedule: NoiseSchedule
    seed: int
    eps: torch.Tensor
    chain: Chain


@functools.lru_cache(maxsize=8)
def _scene(picture_: Picture, schedule_name: str, T: int, seed: int) -> Scene:
    x0 = picture_.x0
    schedule = _schedule(schedule_name, T)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))  # eps_1 of the chain's draws
    return Scene(picture_, schedule, seed, eps, Chain(schedule, x0, seed))


def scene(image: str, upload: str | None, size: int, colour: str, schedule: str, T: int, seed: int) -> Scene:
    """The cached Scene for these controls; raises UserInputError or ValueError naming what is wrong."""
    if schedule not in SCHEDULES:
        raise UserInputError(f"unknown schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")
    if isinstance(seed, bool) or seed is None or int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise UserInputError(f"seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    if isinstance(T, bool) or T is None or int(T) != T:
        raise UserInputError(f"T must be a whole number, got {T!r}")
    return _scene(picture(image, upload, size, colour), schedule, int(T), int(seed))


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything shown for one t, as float32 numpy arrays and Python floats."""
    t: int
    x_t: np.ndarray  # closed form, (C, H, W)
    x_t_chain: np.ndarray  # iterated chain, (C, H, W)
    power_t: np.ndarray  # radially averaged power of x_t
    signal: np.ndarray  # alpha_bar_t P_0(f)
    floor: float  # 1 - alpha_bar_t
    crossover: float | None  # where alpha_bar_t P_0(f) meets the floor
    density: np.ndarray  # histogram of x_t's pixels over HIST_EDGES
    mean: float
    std: float


@torch.inference_mode()
def frame(sc: Scene, t: int) -> Frame:
    """Compute what t shows: x_t both ways, its spectrum against x_0's, its histogram."""
    s, pic = sc.schedule, sc.picture
    if isinstance(t, bool) or t is None or int(t) != t or not 0 <= t <= s.T:
        raise UserInputError(f"t must be a whole number from 0 to T = {s.T}, got {t!r}")
    t = int(t)
    x_t = q_sample(s, pic.x0, t, sc.eps)  # seed 001, eq. 1
    _, power_t = radial_power_spectrum(x_t)
    pixels = x_t.numpy()
    counts, _ = np.histogram(pixels, bins=HIST_EDGES)
    return Frame(
        t=t,
        x_t=pixels,
        x_t_chain=sc.chain(t).numpy(),
        power_t=power_t.numpy().astype(np.float32),
        signal=signal_power(s, t, pic.power0).numpy().astype(np.float32),
        floor=noise_floor(s, t),
        crossover=crossover_frequency(s, t, pic.freqs, pic.power0),
        density=(counts / (pixels.size * np.diff(HIST_EDGES))).astype(np.float32),
        mean=float(pixels.mean()),
        std=float(pixels.std()),
    )


def _values(s: NoiseSchedule, t: int) -> dict[str, float]:
    """The schedule's quantities at t, read from its arrays (SNR is +inf at t = 0)."""
    return {"alpha_bar": float(s.alpha_bars[t]), "sqrt_alpha_bar": float(s.sqrt_alpha_bars[t]),
            "sqrt_one_minus_alpha_bar": float(s.sqrt_one_minus_alpha_bars[t]), "snr": float(s.snr[t])}


@functools.lru_cache(maxsize=8)
def _curves(T: int) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Every schedule's quantities at about CURVE_POINTS timesteps (always including 0 and T), float32;
    SNR starts at t = 1 (it is infinite at 0)."""
    t_axis = np.unique(np.r_[np.arange(0, T, max(1, T // CURVE_POINTS)), T])
    curves = {}
    for name in SCHEDULES:
        s = _schedule(name, T)
        snr = s.snr.numpy()[t_axis].astype(np.float32)
        snr[t_axis == 0] = np.nan
        curves[name] = {"alpha_bar": s.alpha_bars.numpy()[t_axis].astype(np.float32),
                        "sqrt_alpha_bar": s.sqrt_alpha_bars.numpy()[t_axis].astype(np.float32),
                        "sqrt_one_minus_alpha_bar": s.sqrt_one_minus_alpha_bars.numpy()[t_axis].astype(np.float32),
                        "snr": snr}
    return t_axis.astype(np.float32), curves


@functools.lru_cache(maxsize=16)
def _spectrum_range(pic: Picture) -> tuple[float, float]:
    """Fixed log10 y range for a picture's spectrum plot: x_0's power and the floor's range (1 down to 0)."""
    p0 = pic.power0[pic.power0 > 0]
    lo = min(float(p0.min()), 1e-2) if len(p0) else 1e-2
    hi = max(float(pic.power0.max()), 1.0)
    return math.log10(lo) - 0.3, math.log10(hi) + 0.3


def num(v: float) -> str:
    """A value for the texts: four decimals between 0.001 and 10^4, else scientific notation in LaTeX."""
    if math.isinf(v):
        return r"\infty"
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4f}"
    mantissa, exponent = f"{v:.3e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _text_images(sc: Scene, f: Frame, v: dict[str, float]) -> str:
    s = sc.schedule
    beta = num(float(s.betas[f.t])) if f.t else "0"
    return (
        f"**t = {f.t} of T = {s.T}** ({s.name} schedule, seed {sc.seed}). Pixels are shown clipped to [−1, 1].\n\n"
        r"**Closed form**, one draw (seed 001, eq. 1): $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,"
        rf"\varepsilon$ with $\sqrt{{\bar\alpha_t}} = {num(v['sqrt_alpha_bar'])}$ and "
        rf"$\sqrt{{1-\bar\alpha_t}} = {num(v['sqrt_one_minus_alpha_bar'])}$.""\n\n"
        r"**Iterated chain**, t steps: $x_s = \sqrt{\alpha_s}\,x_{s-1} + \sqrt{\beta_s}\,\varepsilon_s$ for "
        rf"$s = 1, \dots, t$ (here $\beta_t = {beta}$).""\n\n"
        r"**Same seed family**: one generator seeded with the seed draws $\varepsilon_1, \varepsilon_2, \dots$ "
        r"The closed form uses $\varepsilon = \varepsilon_1$ (right) at every t; the chain uses "
        r"$\varepsilon_1, \dots, \varepsilon_t$. At t = 1 the two pictures agree exactly; later they are different "
        r"draws of the same $q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I)$, "
        "because independent Gaussian steps merge into one (seed 002)."
    )


def _text_curves(sc: Scene, f: Frame, v: dict[str, float]) -> str:
    s = sc.schedule
    others = ", ".join(rf"{name}: $\bar\alpha_t = {num(float(_schedule(name, s.T).alpha_bars[f.t]))}$"
                       for name in SCHEDULES if name != s.name)
    log_snr = num(float(s.log_snr[f.t]))
    return (
        rf"$\bar\alpha_t = \prod_{{s=1}}^{{t}} (1-\beta_s) = {num(v['alpha_bar'])}$, "
        rf"$\sqrt{{\bar\alpha_t}} = {num(v['sqrt_alpha_bar'])}$ (how much of $x_0$ is left), "
        rf"$\sqrt{{1-\bar\alpha_t}} = {num(v['sqrt_one_minus_alpha_bar'])}$ (the noise's scale) and "
        rf"$\mathrm{{SNR}}_t = \bar\alpha_t / (1-\bar\alpha_t) = {num(v['snr'])}$ "
        rf"($\log \mathrm{{SNR}}_t = {log_snr}$). The other schedule at the same t: {others}.""\n\n"
        r"The SNR falls through 1 where $\bar\alpha_t = 1/2$. The cosine schedule keeps more signal in the middle "
        "of the process and drops the SNR faster near the end than the linear one (seed 002)."
    )


def _text_spectrum(f: Frame) -> str:
    if f.crossover is None:
        drowned = "The signal stays above the noise floor at every frequency: nothing is drowned yet."
    else:
        drowned = (rf"Crossover $f_c = {f.crossover:.3f}$ cycles per pixel (details smaller than "
                   rf"{1 / f.crossover:.1f} pixels): above it $\bar\alpha_t P_0(f)$ is below the floor, so those "
                   "frequencies are already drowned (shaded).")
    return (
        r"On average (seed 002, frequency view) $\mathbb E\,P_{x_t}(f) = \bar\alpha_t\,P_0(f) + (1-\bar\alpha_t)$: "
        rf"white noise adds the same floor $1-\bar\alpha_t = {num(f.floor)}$ at every frequency, while images "
        "keep most of their power at low frequencies, so fine detail goes first. " + drowned
    )


def _text_histogram(f: Frame) -> str:
    return (
        rf"Pixels of $x_t$: mean $= {f.mean:.4f}$, std $= {f.std:.4f}$ ({f.x_t.size} values). Given $x_0$, "
        r"each pixel is $\mathcal N(\sqrt{\bar\alpha_t}\,x_0,\ 1-\bar\alpha_t)$; as $\bar\alpha_t \to 0$ the "
        r"histogram approaches the standard normal density $\varphi(x) = e^{-x^2/2}/\sqrt{2\pi}$ (line): "
        "at t = T nothing of the image is left to see."
    )


def render(sc: Scene, f: Frame, log_y: bool = False) -> tuple:
    """The view's outputs for one frame, in the order of OUTPUTS."""
    s, pic = sc.schedule, sc.picture
    v = _values(s, f.t)
    scale = max(1, DISPLAY_PX // pic.x0.shape[-1])
    t_axis, curves = _curves(s.T)
    return (
        plots.picture(pic.x0.numpy(), scale),
        plots.picture(f.x_t, scale),
        plots.picture(f.x_t_chain, scale),
        plots.picture(sc.eps.numpy(), scale),
        plots.schedule_curves(t_axis, curves, s.name, f.t, v, bool(log_y)),
        plots.power_spectrum(pic.freqs.numpy().astype(np.float32), pic.power0.numpy().astype(np.float32),
                             f.power_t, f.signal, f.floor, f.crossover, _spectrum_range(pic)),
        plots.histogram(HIST_EDGES, f.density, NORMAL_X, NORMAL_PDF, f.mean, f.std, HIST_Y_MAX),
        _text_images(sc, f, v),
        _text_curves(sc, f, v),
        _text_spectrum(f),
        _text_histogram(f),
    )


def forward(image: str, upload: str | None, size: int, colour: str, schedule: str, T: int, seed: int, t: int,
            log_y: bool) -> tuple:
    """Everything the view shows for these controls at t (OUTPUTS). Raises UserInputError for bad input."""
    sc = scene(image, upload, size, colour, schedule, T, seed)
    return render(sc, frame(sc, t), log_y)


# --- Gradio wiring -------------------------------------------------------------------------------------------


@for_visitor
def use_upload(upload, size, colour, schedule, T, seed, t, log_y):
    """A new upload: check it, select it in the image list and show it."""
    out = forward(UPLOAD, upload, size, colour, schedule, T, seed, t, log_y)
    return gr.Dropdown(choices=[*GALLERY, UPLOAD], value=UPLOAD), *out


@for_visitor
def drop_upload(schedule, T, seed, t, log_y):
    """The upload was removed: back to the first gallery image."""
    image = DEFAULTS["image"]
    out = forward(image, None, DEFAULTS["size"], DEFAULTS["colour"], schedule, T, seed, t, log_y)
    return gr.Dropdown(choices=list(GALLERY), value=image), *out


def pick_gallery(evt: gr.SelectData, upload, size, colour, schedule, T, seed, t, log_y):
    """A click on a gallery thumbnail selects that image."""
    image = list(GALLERY)[evt.index]
    return image, *for_visitor(forward)(image, upload, size, colour, schedule, T, seed, t, log_y)


@for_visitor
def set_T(image, upload, size, colour, schedule, T, seed, t, log_y, T_before):
    """A new T: rescale the slider and keep t at the same fraction of the process."""
    T = int(T)
    t = min(T, round(t * T / T_before))
    return gr.Slider(maximum=T, value=t), T, *forward(image, upload, size, colour, schedule, T, seed, t, log_y)


@for_visitor
def step_back(image, upload, size, colour, schedule, T, seed, t, log_y):
    """One step back, t - 1 (not below 0)."""
    t = max(0, int(t) - 1)
    return t, *forward(image, upload, size, colour, schedule, T, seed, t, log_y)


@for_visitor
def step_forward(image, upload, size, colour, schedule, T, seed, t, log_y):
    """One step on, t + 1 (not beyond T)."""
    t = min(int(T), int(t) + 1)
    return t, *forward(image, upload, size, colour, schedule, T, seed, t, log_y)


def toggle_play(playing: bool):
    """Play or pause: the timer steps t by T / PLAY_FRAMES every PLAY_INTERVAL seconds."""
    playing = not playing
    return playing, gr.Timer(active=playing), gr.Button("⏸ Pause" if playing else "▶ Play")


@for_visitor
def tick(image, upload, size, colour, schedule, T, seed, t, log_y):
    """One step of play: t advances (from 0 again after T); reaching T stops the timer. Otherwise the play
    state is left alone (gr.skip), so a pause clicked while a tick is running is not undone."""
    T, t = int(T), int(t)
    t = 0 if t >= T else min(T, t + max(1, T // PLAY_FRAMES))
    out = forward(image, upload, size, colour, schedule, T, seed, t, log_y)
    if t < T:
        return t, gr.skip(), gr.skip(), gr.skip(), *out
    return t, False, gr.Timer(active=False), gr.Button("▶ Play"), *out


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d = DEFAULTS
    first = forward(**d)
    pixelated = ["pixelated"]
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = gr.Dropdown(list(GALLERY), value=d["image"], label="Image", elem_id="forward-image")
            gallery = gr.Gallery([str(p) for p in GALLERY.values()], columns=5, height="auto", allow_preview=False,
                                 show_label=False, elem_id="forward-gallery", elem_classes=pixelated, buttons=[])
            schedule = gr.Radio(list(SCHEDULES), value=d["schedule"], label="Schedule", elem_id="forward-schedule")
            T = gr.Radio(list(T_CHOICES), value=d["T"], label="T (number of steps)", elem_id="forward-T")
            seed = gr.Number(d["seed"], precision=0, minimum=0, maximum=SEED_MAX, label="Seed",
                             elem_id="forward-seed")
            with gr.Accordion("Upload your own image", open=False):
                upload = gr.File(label="Image file, any format (≤ 40 MP)", type="filepath",
                                 file_count="single", elem_id="forward-upload")
                size = gr.Radio(list(SIZES), value=d["size"], label="Resolution (centre square, resized)")
                colour = gr.Radio(list(MODES), value=d["colour"], label="Colour")
        with gr.Column(scale=4):
            with gr.Row(equal_height=True):
                t = gr.Slider(0, d["T"], value=d["t"], step=1, precision=0, scale=8, elem_id="forward-t",
                              label="t: 0 is the image, T is pure noise")
                back = gr.Button("◀ −1", scale=0, min_width=90, elem_id="forward-back")
                play = gr.Button("▶ Play", variant="primary", scale=0, min_width=120, elem_id="forward-play")
                ahead = gr.Button("+1 ▶", scale=0, min_width=90, elem_id="forward-ahead")
            with gr.Row():
                pictures = [gr.Image(value, label=label, format="png", interactive=False, elem_id=f"forward-{key}",
                                     elem_classes=pixelated, buttons=["download"])
                            for value, (key, label) in zip(first[:4], PICTURES.items())]
            text_images = gr.Markdown(first[7], label="about the pictures", latex_delimiters=LATEX,
                                      elem_id="forward-text-images")
    with gr.Row(equal_height=False):
        with gr.Column():
            curves = gr.Plot(first[4], label="schedule curves", show_label=False, elem_id="forward-curves")
            log_y = gr.Checkbox(d["log_y"], label="logarithmic y axis", elem_id="forward-log")
            text_curves = gr.Markdown(first[8], label="about the schedule", latex_delimiters=LATEX,
                                      elem_id="forward-text-curves")
        with gr.Column():
            spectrum = gr.Plot(first[5], label="power spectrum", show_label=False, elem_id="forward-spectrum")
            text_spectrum = gr.Markdown(first[9], label="about the spectrum", latex_delimiters=LATEX,
                                        elem_id="forward-text-spectrum")
        with gr.Column():
            hist = gr.Plot(first[6], label="histogram", show_label=False, elem_id="forward-histogram")
            text_hist = gr.Markdown(first[10], label="about the histogram", latex_delimiters=LATEX,
                                    elem_id="forward-text-histogram")
    timer = gr.Timer(PLAY_INTERVAL, active=False)
    playing = gr.State(False)  # whether the timer runs
    T_shown = gr.State(d["T"])

    controls = [image, upload, size, colour, schedule, T, seed, t, log_y]
    outputs = [*pictures, curves, spectrum, hist, text_images, text_curves, text_spectrum, text_hist]
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    gr.on([t.input, image.input, size.input, colour.input, schedule.input, seed.input, log_y.input],
          for_visitor(forward), controls, outputs, api_name="forward", **quiet)
    upload.upload(use_upload, controls[1:], [image, *outputs], api_name="upload", show_progress="minimal")
    upload.clear(drop_upload, [schedule, T, seed, t, log_y], [image, *outputs], api_name="drop_upload", **quiet)
    gallery.select(pick_gallery, controls[1:], [image, *outputs], api_visibility="private", **quiet)
    T.input(set_T, [*controls, T_shown], [t, T_shown, *outputs], api_name="set_T", **quiet)
    back.click(step_back, controls, [t, *outputs], api_name="step_back", **quiet)
    ahead.click(step_forward, controls, [t, *outputs], api_name="step_forward", **quiet)
    play.click(toggle_play, playing, [playing, timer, play], api_name="toggle_play", show_progress="hidden")
    timer.tick(tick, controls, [t, playing, timer, play, *outputs], api_name="tick", show_progress="hidden")
