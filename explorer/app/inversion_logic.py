"""What the DDIM-inversion view runs and shows, with no gradio in it: the view (explorer.app.inversion) only builds
the page, parses the controls into `InversionSettings` and streams what `invert_stream` / `edit_stream` yield.

Timesteps follow explorer.schedules: t = 0 is the image, t = T the noise. The maths is explorer's:
`samplers.inversion_errors` runs deterministic DDIM backwards (`samplers.invert`, x_0 -> x_T at the sampler's own
trailing timesteps), regenerates x_0 from that x_T with as many steps of DDIM eta 0 and measures the error;
`samplers.sample` decodes the same x_T with another class (the edit); explorer.spectrum gives the power spectra.

The model is a bundled class-conditional image checkpoint (explorer.app.catalogue). The image, a gallery picture or
an upload (explorer.app.uploads), is resized to the model's samples and inverted with the class the visitor names
for it. Invert runs the chosen number of steps N first, streaming x on its way up to x_T and back down (at most
MAX_FRAMES pictures each way), then the error for every count of samplers.INVERSION_STEPS below N, so the error curve
grows while the reconstruction is already shown. Edit inverts again (the result is the same x_T: DDIM with eta 0
draws nothing) and decodes with the other class, streaming both ways. A stream yields dicts of the outputs (OUTPUTS,
EDIT_OUTPUTS) that change; a run stopped by its flag (explorer.app.stops) ends with its status saying where.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

from explorer import checks
from explorer.app import catalogue, plots
from explorer.app.forward_logic import (GALLERY, HIST_EDGES, HIST_Y_MAX, NORMAL_PDF, NORMAL_X, UPLOAD,
                                       pixel_density)
from explorer.app.options import UserInputError, class_labels, schedule, shown_steps, until
from explorer.app.reverse_logic import default_name, stopped
from explorer.app.uploads import load_upload
from explorer.checkpoint import ModelConfig
from explorer.samplers import INVERSION_STEPS, Reconstruction, Step, invert, inversion_errors, sample
from explorer.spectrum import crossover_frequency, noise_floor, radial_power_spectrum, signal_power

MAX_STEPS = INVERSION_STEPS[-1]  # each way; Invert then also measures every smaller count of INVERSION_STEPS
MAX_FRAMES = 20  # pictures streamed per direction
DISPLAY_PX = 224  # pictures are enlarged by whole pixels up to about this size
DEFAULTS = {"image": next(iter(GALLERY)), "upload": None, "steps": 50}  # and the checkpoint's own (`start`)
CONTROLS = ("checkpoint", "image", "upload", "label", "steps")  # Invert's, by name; Edit's add "target"
OUTPUTS = ("original", "x_t", "x_T", "reconstruction", "status", "histogram", "spectrum", "errors")
EDIT_OUTPUTS = ("edited", "edit_status")
TEXT = (r"$$x_t = \sqrt{\bar\alpha_t}\,\frac{x_s - \sqrt{1-\bar\alpha_s}\,\hat\varepsilon}{\sqrt{\bar\alpha_s}}"
        r" + \sqrt{1-\bar\alpha_t}\,\hat\varepsilon$$"
        "\n\nDDIM eq. 12 (Song et al. 2021) with η = 0 adds no fresh noise, so it can run backwards: each step from "
        r"s up to t > s takes the model's $\hat\varepsilon = \hat\varepsilon_\theta(x_s, t, y)$ on the x_s at hand, "
        "exact only as the steps shrink. Decoding x_T with the image's class y gives the image back; with another "
        "class, a translation.")


def conditional() -> dict[str, ModelConfig]:
    """The bundled image checkpoints trained with class labels, by file name."""
    return {name: config for name, config in catalogue.bundled_images().items() if config.class_names}


def start() -> tuple[str | None, ModelConfig | None]:
    """The checkpoint the view opens on (the reverse view's default when it qualifies) and its config."""
    found = conditional()
    name = default_name(found)
    return name, found.get(name)


def checkpoint(name: str) -> tuple[Path, ModelConfig]:
    """The bundled class-conditional checkpoint of that file name and its config; UserInputError for any other."""
    found = conditional()
    if name not in tuple(found):
        raise UserInputError(f"{name!r} is not a bundled class-conditional image model; inverting an image with its "
                             f"class needs one of: {', '.join(found) or 'none is bundled'}")
    return catalogue.PRETRAINED / name, found[name]


def image_class(image: str, class_names: list[str]) -> str | None:
    """The class of a gallery image (each is named after its Fashion-MNIST class), if the model has it."""
    return {name.lower().replace("/", "-"): name for name in class_names}.get(image)


@dataclass(frozen=True)
class InversionSettings:
    """One validated inversion: the checkpoint, the image and its class, the number of DDIM steps each way."""
    path: Path
    config: ModelConfig
    image: str  # a GALLERY name or UPLOAD
    upload: str | None
    label: str  # the image's class, which the inversion and the reconstruction are conditioned on
    steps: int

    @classmethod
    def parse(cls, controls: dict) -> InversionSettings:
        """The controls by name (CONTROLS); ValueError names what is wrong."""
        c = controls
        path, config = checkpoint(c["checkpoint"])
        image = checks.choice("image", c["image"], [*GALLERY, UPLOAD])
        if image == UPLOAD and not c["upload"]:
            raise UserInputError("upload an image first")
        label = checks.choice("class", c["label"], config.class_names)
        steps = checks.whole("steps", c["steps"], 1, min(MAX_STEPS, config.T), " (each way)")
        return cls(path, config, image, str(c["upload"]) if c["upload"] else None, label, steps)

    def target(self, controls: dict) -> str:
        """Edit's class ("target" in the controls), checked."""
        return checks.choice("class to decode with", controls["target"], self.config.class_names)

    def counts(self) -> list[int]:
        """The step counts Invert runs: the chosen one first, then those of INVERSION_STEPS below it."""
        return [self.steps, *(n for n in INVERSION_STEPS if n < self.steps)]

    def describe(self) -> str:
        shown = "your upload" if self.image == UPLOAD else f"the {self.image}"
        return f"**{self.path.name}** · {shown} as **{self.label}** · DDIM η = 0, {self.steps} steps each way"


def source(settings: InversionSettings) -> torch.Tensor:
    """The image as the model's samples, (1, C, H, W) in [-1, 1]; UserInputError says why an upload is refused."""
    c, size, _ = settings.config.sample_shape
    path = GALLERY[settings.image] if settings.image in GALLERY else settings.upload
    return load_upload(path, size, "grey" if c == 1 else "colour")[None]


def picture(x: torch.Tensor) -> np.ndarray:
    """The first image of a batch as uint8 pixels, enlarged by whole pixels to about DISPLAY_PX."""
    return plots.picture(x[0].detach().float().cpu().numpy(), max(1, DISPLAY_PX // x.shape[-1]))


def frame(x: torch.Tensor, t: int) -> np.ndarray:
    """A streamed picture: `picture(x)` with its timestep t in a caption strip under it."""
    pixels = picture(x)
    return plots.captioned(pixels, [f"t = {t}"], 1, pixels.shape[:2], 0)


# --- figures -------------------------------------------------------------------------------------------------

def histogram_figure(x_T: torch.Tensor) -> go.Figure:
    """x_T's pixels as a density histogram against the N(0, 1) density (the forward view's panel at t = T)."""
    pixels = x_T.float().cpu().numpy()
    density = pixel_density(pixels)
    return plots.histogram(HIST_EDGES, density, NORMAL_X, NORMAL_PDF, float(pixels.mean()), float(pixels.std()),
                           max(HIST_Y_MAX, 1.05 * float(density.max())))


def spectrum_figure(x_0: torch.Tensor, x_T: torch.Tensor, config: ModelConfig) -> go.Figure:
    """The radially averaged power of x_0 and of the inverted x_T against the white-noise floor 1 - alpha_bar_T
    and the signal alpha_bar_T P_0 that q(x_T | x_0) keeps (the forward view's panel at t = T)."""
    sched = schedule(config.schedule, config.T)
    freqs, power0 = radial_power_spectrum(x_0)
    _, power_T = radial_power_spectrum(x_T)
    floor = noise_floor(sched, config.T)
    shown = torch.cat([power0, power_T, torch.tensor([floor], dtype=power0.dtype)])
    shown = shown[shown > 0]
    y_range = (math.log10(float(shown.min())) - 0.3, math.log10(float(shown.max())) + 0.3)
    f32 = {k: v.numpy().astype(np.float32) for k, v in
           {"freqs": freqs, "power0": power0, "power_T": power_T,
            "signal": signal_power(sched, config.T, power0)}.items()}
    return plots.power_spectrum(f32["freqs"], f32["power0"], f32["power_T"], f32["signal"], floor,
                                crossover_frequency(sched, config.T, freqs, power0), y_range)


def error_figure(done: list[Reconstruction]) -> go.Figure:
    """The RMSE of each reconstruction against its number of steps (log axis)."""
    steps = np.array(sorted(r.steps for r in done), dtype=np.float32)
    rmse = np.array([float(r.rmse.mean()) for r in sorted(done, key=lambda r: r.steps)], dtype=np.float32)
    return plots._figure(  # the app's figure base (fonts for a projector)
        [{"type": "scatter", "mode": "lines+markers", "x": steps, "y": rmse, "name": "RMSE",
          "line": {"color": "#1f77b4", "width": 2.5}, "marker": {"size": 10}, "hoverinfo": "x+y"}],
        {"title": {"text": "Reconstruction error against steps"}, "showlegend": False,
         "xaxis": {"type": "log", "tickvals": steps, "ticktext": [f"{n:g}" for n in steps],
                   "title": {"text": "DDIM steps, each way"}},
         "yaxis": {"rangemode": "tozero", "title": {"text": "RMSE (pixels in [−1, 1])"}}})


# --- the streams ---------------------------------------------------------------------------------------------

def _model_and_labels(settings: InversionSettings, *labels: str):
    """The model (loaded once, catalogue.model_at), its device and one (1,) label tensor per class name."""
    model = catalogue.model_at(settings.path)
    device = next(model.parameters()).device
    return model, device, *(class_labels(name, settings.config.class_names, 1, device) for name in labels)


def _frame(step: Step, show: set[int]) -> str | None:
    """What a streamed Step shows in words ("inverting: step 3 of 10"), or None if it is not shown."""
    if step.i + 1 not in show:
        return None
    return f"{'inverting' if step.t_next > step.t else 'decoding'}: step {step.i + 1} of {step.n}, t = {step.t_next}"


def _summary(done: list[Reconstruction], left: list[int]) -> str:
    x_T = done[0].x_T.float()
    text = (f"x_T: mean {float(x_T.mean()):+.3f}, std {float(x_T.std(correction=0)):.3f} (N(0, I) noise: 0 and 1). "
            "Reconstruction RMSE: " + ", ".join(f"{float(r.rmse.mean()):.4f} at {r.steps} steps" for r in done))
    return text + (f"; measuring {', '.join(map(str, left))} steps…" if left else ".")


@torch.inference_mode()
def invert_stream(settings: InversionSettings, running) -> Iterator[dict]:
    """Invert (OUTPUTS): the image (clearing the last run's results), x on its way up and back down, then x_T,
    its histogram and spectrum and the reconstruction, then the error curve, a point per step count. `running`
    is the run's explorer.app.stops.Running."""
    begin, counts, done = time.perf_counter(), settings.counts(), []
    x_0 = source(settings)
    if not running.show("the image"):
        yield {"status": stopped(running.shown)}
        return
    yield {"original": picture(x_0), "x_t": frame(x_0, 0), "x_T": None, "reconstruction": None, "histogram": None,
           "spectrum": None, "errors": None, "status": f"{settings.describe()}\n\nLoading the model…"}
    model, device, y = _model_and_labels(settings, settings.label)
    runs = inversion_errors(model, model.schedule, x_0.to(device), counts, objective=model.objective, y=y)
    show = set(shown_steps(settings.steps, MAX_FRAMES))
    for item in until(runs, running.stop):
        if isinstance(item, Reconstruction):
            done.append(item)
            words, left = f"the error at {item.steps} steps", counts[len(done):]
            update = {"errors": error_figure(done), "status": f"{settings.describe()}\n\n{_summary(done, left)}"}
            if len(done) == 1:
                update |= {"x_T": picture(item.x_T), "reconstruction": picture(item.x0),
                           "histogram": histogram_figure(item.x_T), "spectrum": spectrum_figure(x_0, item.x_T,
                                                                                                settings.config)}
            if not left:
                calls = sum(r.calls for r in done)
                update["status"] += f"\n\n**Done**: {calls} model calls in {time.perf_counter() - begin:.1f} s."
        elif done or (words := _frame(item, show)) is None:
            continue
        else:
            update = {"x_t": frame(item.x_next, item.t_next), "status": f"{settings.describe()}\n\n{words[0].upper()}{words[1:]}"}
        if not running.show(words):
            break
        yield update
    if len(done) < len(counts):  # stopped: the same words as the Stop button's, whichever lands last
        yield {"status": stopped(running.shown)}


def _round_trip(model, settings: InversionSettings, x_0: torch.Tensor, y: torch.Tensor, y_edit: torch.Tensor):
    """The Steps of inverting x_0 with class y, then of decoding the x_T reached with class y_edit (DDIM eta 0)."""
    x_T = yield from invert(model, model.schedule, x_0, steps=settings.steps, objective=model.objective, y=y)
    yield from sample(model, model.schedule, x_T, method="ddim", eta=0.0, steps=settings.steps,
                      objective=model.objective, y=y_edit)


@torch.inference_mode()
def edit_stream(settings: InversionSettings, target: str, running) -> Iterator[dict]:
    """Edit (EDIT_OUTPUTS): the image's x_T decoded with the class `target`, x streamed up and back down."""
    begin, done = time.perf_counter(), False
    x_0 = source(settings)
    model, device, y, y_edit = _model_and_labels(settings, settings.label, target)
    show = set(shown_steps(settings.steps, MAX_FRAMES))
    head = f"{settings.describe()} · decoded as **{target}**"
    for step in until(_round_trip(model, settings, x_0.to(device), y, y_edit), running.stop):
        words = _frame(step, show)
        if words is None:
            continue
        if not running.show(words):
            break
        done = step.t_next == 0
        status = f"**Done** in {time.perf_counter() - begin:.1f} s." if done else words[0].upper() + words[1:]
        shown = picture(step.x_next) if done else frame(step.x_next, step.t_next)
        yield {"edited": shown, "edit_status": f"{head}\n\n{status}"}
    if not done:
        yield {"edit_status": stopped(running.shown)}
