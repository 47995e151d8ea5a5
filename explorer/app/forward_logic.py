"""What the forward view shows for its controls, with no gradio in it: the view (explorer.app.forward) only
builds the page and calls `show`.

Timesteps follow explorer.schedules: t = 0..T, and t = 0 is the image itself. All the diffusion maths is
explorer's (q_sample, the chain walk q_chain_walk, the schedule arrays, the spectrum functions); this module
picks what to show.

Same seed family: one torch.Generator seeded with the seed draws eps_1, eps_2, ... (each the shape of x_0).
The closed form uses eps = eps_1 at every t; the iterated chain uses eps_1, ..., eps_t, one per step. So at
t = 1 both pictures are the same, and later they are two different draws from the same q(x_t | x_0).

`show(ForwardSettings.parse(controls))` gives the four pictures, three figures and four Markdown texts (OUTPUTS
names them) for one slider position. Everything that does not change with t is cached per (image, schedule, T,
seed) in a `Scene`: x_0, eps, x_0's spectrum and the chain, kept at checkpoints so that any t costs a few
steps at most. The schedule curves are cached per T.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer import checks
from explorer.app import plots
from explorer.app.options import UserInputError, schedule
from explorer.app.uploads import MODES, load_upload
from explorer.forward import q_chain_walk, q_sample
from explorer.schedules import SCHEDULES, T_RANGE, NoiseSchedule
from explorer.spectrum import crossover_frequency, noise_floor, radial_power_spectrum, signal_power

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
HIST_EDGES = np.linspace(-4, 4, 65, dtype=np.float32)
HIST_Y_MAX = 1.2  # fixed axes keep the picture still while playing; taller bars (pixels at t ~ 0) are cut
NORMAL_X = np.linspace(-4, 4, 161, dtype=np.float32)
NORMAL_PDF = (np.exp(-NORMAL_X ** 2 / 2) / math.sqrt(2 * math.pi)).astype(np.float32)  # the N(0, 1) reference


@dataclass(frozen=True)
class ForwardSettings:
    """The view's controls, checked (in the order of DEFAULTS)."""
    image: str  # a GALLERY name or UPLOAD
    upload: str | None
    size: int
    colour: str
    schedule: str
    T: int
    seed: int
    t: int
    log_y: bool

    @classmethod
    def parse(cls, controls: dict) -> ForwardSettings:
        """The controls as the page sends them (a dict named as DEFAULTS); ValueError names what is wrong."""
        c = {**DEFAULTS, **controls}
        image, upload = checks.choice("image", c["image"], [*GALLERY, UPLOAD]), c["upload"]
        checks.choice("resolution", c["size"], SIZES)  # checked even when unused: a bad value is a message
        checks.choice("colour", c["colour"], MODES)
        if image == UPLOAD:
            if not upload:
                raise UserInputError("upload an image first")
            if not Path(upload).is_file():
                raise UserInputError("the uploaded file is no longer on the server; please upload it again")
        T = checks.whole("T", c["T"], *T_RANGE)
        return cls(image, str(upload) if upload else None, int(c["size"]), c["colour"],
                   checks.choice("schedule", c["schedule"], SCHEDULES), T, checks.whole("seed", c["seed"], 0, SEED_MAX),
                   checks.whole("t", c["t"], 0, T, f" (T = {T})"), bool(c["log_y"]))


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


def picture(settings: ForwardSettings) -> Picture:
    """The chosen x_0: a gallery image as it is (28x28 grey) or the upload at size x size in colour mode."""
    if settings.image in GALLERY:
        return _picture(settings.image, None, None, None)
    return _picture(UPLOAD, settings.upload, settings.size, settings.colour)


class Chain:
    """x_t of the iterated chain (explorer.forward.q_chain_walk) with eps_1, eps_2, ... drawn one per step from
    torch.Generator().manual_seed(seed), for any t in any order.

    x_s and the generator state are kept every `every` steps, as far as asked for, and also at the last t
    asked for; x_t walks on from the nearest of these at or before t, so moving the slider forward by a little
    (or playing) costs a few steps, and any t at most every - 1 steps. Calls are serialised by a lock.
    """

    def __init__(self, sched: NoiseSchedule, x0: torch.Tensor, seed: int):
        self.schedule = sched
        gen = torch.Generator().manual_seed(seed)
        mark_bytes = x0.numel() * x0.element_size() + gen.get_state().numel()
        self.every = max(1, math.ceil((sched.T + 1) * mark_bytes / CHAIN_BYTES))
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
            if t > start:
                for s, x in q_chain_walk(self.schedule, x, start, gen):
                    if s == len(self._marks) * self.every:
                        self._marks.append((x, gen.get_state()))
                    if s == t:
                        break
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
def _scene(pic: Picture, schedule_name: str, T: int, seed: int) -> Scene:
    sched = schedule(schedule_name, T)
    eps = torch.randn(pic.x0.shape, generator=torch.Generator().manual_seed(seed))  # eps_1 of the chain's draws
    return Scene(pic, sched, seed, eps, Chain(sched, pic.x0, seed))


def scene(settings: ForwardSettings) -> Scene:
    """The cached Scene of these settings."""
    return _scene(picture(settings), settings.schedule, settings.T, settings.seed)


@dataclass(frozen=True, eq=False)
class Snapshot:
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
def pixel_density(pixels: np.ndarray) -> np.ndarray:
    """The pixels' histogram over HIST_EDGES as a density (it integrates to 1 over the range), to set beside
    N(0, 1)'s NORMAL_PDF."""
    counts, _ = np.histogram(pixels, bins=HIST_EDGES)
    return (counts / (pixels.size * np.diff(HIST_EDGES))).astype(np.float32)


def snapshot(sc: Scene, t: int) -> Snapshot:
    """Compute what t shows: x_t both ways, its spectrum against x_0's, its histogram."""
    sched, pic = sc.schedule, sc.picture
    t = checks.whole("t", t, 0, sched.T, f" (T = {sched.T})")
    x_t = q_sample(sched, pic.x0, t, sc.eps)  # seed 001, eq. 1 (DDPM eq. 4)
    _, power_t = radial_power_spectrum(x_t)
    pixels = x_t.numpy()
    return Snapshot(
        t=t,
        x_t=pixels,
        x_t_chain=sc.chain(t).numpy(),
        power_t=power_t.numpy().astype(np.float32),
        signal=signal_power(sched, t, pic.power0).numpy().astype(np.float32),
        floor=noise_floor(sched, t),
        crossover=crossover_frequency(sched, t, pic.freqs, pic.power0),
        density=pixel_density(pixels),
        mean=float(pixels.mean()),
        std=float(pixels.std()),
    )


def _values(sched: NoiseSchedule, t: int) -> dict[str, float]:
    """The schedule's quantities at t, read from its arrays (SNR is +inf at t = 0)."""
    return {"alpha_bar": float(sched.alpha_bars[t]), "sqrt_alpha_bar": float(sched.sqrt_alpha_bars[t]),
            "sqrt_one_minus_alpha_bar": float(sched.sqrt_one_minus_alpha_bars[t]), "snr": float(sched.snr[t])}


@functools.lru_cache(maxsize=8)
def _curves(T: int) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Every schedule's quantities at about CURVE_POINTS timesteps (always including 0 and T), float32;
    SNR starts at t = 1 (it is infinite at 0)."""
    t_axis = np.unique(np.r_[np.arange(0, T, max(1, T // CURVE_POINTS)), T])
    curves = {}
    for name in SCHEDULES:
        sched = schedule(name, T)
        snr = sched.snr.numpy()[t_axis].astype(np.float32)
        snr[t_axis == 0] = np.nan
        curves[name] = {"alpha_bar": sched.alpha_bars.numpy()[t_axis].astype(np.float32),
                        "sqrt_alpha_bar": sched.sqrt_alpha_bars.numpy()[t_axis].astype(np.float32),
                        "sqrt_one_minus_alpha_bar":
                            sched.sqrt_one_minus_alpha_bars.numpy()[t_axis].astype(np.float32),
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


def _text_images(sc: Scene, snap: Snapshot, values: dict[str, float]) -> str:
    sched = sc.schedule
    beta = num(float(sched.betas[snap.t])) if snap.t else "0"
    return (
        f"**t = {snap.t} of T = {sched.T}** · {sched.name} schedule · seed {sc.seed}\n\n"
        rf"$$x_t = \sqrt{{\bar\alpha_t}}\,x_0 + \sqrt{{1-\bar\alpha_t}}\,\varepsilon = "
        rf"{num(values['sqrt_alpha_bar'])}\,x_0 + {num(values['sqrt_one_minus_alpha_bar'])}\,\varepsilon$$""\n\n"
        r"**Closed form**: one draw of $q(x_t \mid x_0)$, DDPM eq. 4. **Iterated chain**: t small steps "
        rf"$q(x_s \mid x_{{s-1}})$, DDPM eq. 2 (here $\beta_t = {beta}$). Both take one seed's draws: the closed "
        "form uses the first, ε (right), so at t = 1 the two pictures agree; later they are two draws of the "
        "same Gaussian, since Gaussian steps merge into one."
    )


def _text_curves(sc: Scene, snap: Snapshot, values: dict[str, float]) -> str:
    sched = sc.schedule
    others = ", ".join(rf"{name} $\bar\alpha_t = {num(float(schedule(name, sched.T).alpha_bars[snap.t]))}$"
                       for name in SCHEDULES if name != sched.name)
    return (
        rf"$$\bar\alpha_t = \prod_{{s=1}}^{{t}} (1-\beta_s) = {num(values['alpha_bar'])}$$""\n\n"
        rf"Signal left $\sqrt{{\bar\alpha_t}} = {num(values['sqrt_alpha_bar'])}$, noise "
        rf"$\sqrt{{1-\bar\alpha_t}} = {num(values['sqrt_one_minus_alpha_bar'])}$, "
        rf"$\mathrm{{SNR}}_t = \bar\alpha_t / (1-\bar\alpha_t) = {num(values['snr'])}$ (right axis, log). "
        f"Other schedule: {others}. The SNR falls through 1 where ᾱ_t = 1/2; cosine keeps more signal "
        "mid-way than linear."
    )


def _text_spectrum(snap: Snapshot) -> str:
    if snap.crossover is None:
        drowned = "The signal is above the floor at every frequency: nothing is drowned yet."
    else:
        drowned = (rf"Above $f_c = {snap.crossover:.3f}$ cycles per pixel (details under "
                   rf"{1 / snap.crossover:.1f} pixels) the signal is below the floor: drowned (shaded).")
    return (
        r"$$\mathbb E\,P_{x_t}(f) = \bar\alpha_t\,P_0(f) + (1-\bar\alpha_t)$$""\n\n"
        rf"White noise adds the same floor $1-\bar\alpha_t = {num(snap.floor)}$ at every frequency; images keep "
        "their power at low frequencies, so fine detail goes first. " + drowned
    )


def _text_histogram(snap: Snapshot) -> str:
    return (
        r"$$x_t \mid x_0 \sim \mathcal N(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I)$$""\n\n"
        rf"Pixels of $x_t$: mean $= {snap.mean:.4f}$, std $= {snap.std:.4f}$ ({snap.x_t.size} values). As "
        r"$\bar\alpha_t \to 0$ the histogram becomes the standard normal density (line): at t = T nothing of the "
        "image is left."
    )


def render(sc: Scene, snap: Snapshot, log_y: bool = False) -> tuple:
    """The view's outputs for one snapshot, in the order of OUTPUTS."""
    sched, pic = sc.schedule, sc.picture
    values = _values(sched, snap.t)
    scale = max(1, DISPLAY_PX // pic.x0.shape[-1])
    t_axis, curves = _curves(sched.T)
    return (
        plots.picture(pic.x0.numpy(), scale),
        plots.picture(snap.x_t, scale),
        plots.picture(snap.x_t_chain, scale),
        plots.picture(sc.eps.numpy(), scale),
        plots.schedule_curves(t_axis, curves, sched.name, snap.t, values, bool(log_y)),
        plots.power_spectrum(pic.freqs.numpy().astype(np.float32), pic.power0.numpy().astype(np.float32),
                             snap.power_t, snap.signal, snap.floor, snap.crossover, _spectrum_range(pic)),
        plots.histogram(HIST_EDGES, snap.density, NORMAL_X, NORMAL_PDF, snap.mean, snap.std, HIST_Y_MAX),
        _text_images(sc, snap, values),
        _text_curves(sc, snap, values),
        _text_spectrum(snap),
        _text_histogram(snap),
    )


def show(settings: ForwardSettings) -> tuple:
    """Everything the view shows for these settings (OUTPUTS)."""
    sc = scene(settings)
    return render(sc, snapshot(sc, settings.t), settings.log_y)


def curves_csv(selected: str, T: int, folder: Path) -> Path:
    """The schedule curves at this T as a CSV file in `folder`, named alpha_bar_<selected>_T<T>.csv: a row per t
    = 0..T with alpha_bar and SNR of each schedule (the selected one first) exactly as explorer.schedules
    computes them (float64, written to round-trip; SNR is inf at t = 0). Written whole, then renamed into place."""
    names = [selected, *(name for name in SCHEDULES if name != selected)]
    columns = {}
    for name in names:
        sched = schedule(name, T)
        columns[f"alpha_bar_{name}"], columns[f"snr_{name}"] = sched.alpha_bars.tolist(), sched.snr.tolist()
    rows = [",".join(["t", *columns])] + [",".join([str(t), *(repr(c[t]) for c in columns.values())])
                                          for t in range(T + 1)]
    path = folder / f"alpha_bar_{selected}_T{T}.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".part", delete=False) as part:
        part.write("\n".join(rows) + "\n")
    os.replace(part.name, path)
    return path


def play_step(t: int, T: int) -> int:
    """The t of play's next tick: T / PLAY_FRAMES further on, from 0 again after T."""
    return 0 if t >= T else min(T, t + max(1, T // PLAY_FRAMES))


def rescaled_t(t: int, T_before: int, T: int) -> int:
    """t at the same fraction of the process after T changes from T_before."""
    return min(T, round(t * T / T_before))
