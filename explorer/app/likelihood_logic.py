"""What the likelihood view runs and shows, with no gradio in it: the view (explorer.app.likelihood) only builds the
page, parses the controls into `ElboSettings` and streams what `elbo_updates` yields.

The ELBO is explorer.likelihood's (`elbo_stream`: DDPM eq. 5 in bits per dimension, one partial result per model
call, t stratified with a stride, "log" or "uniform" strata); this module picks the test images, runs it for
checkpoint A, then for B, and draws the terms as they come in. Timesteps follow explorer.schedules: t = 1 holds L_0,
t >= 2 holds L_{t-1}, and L_T belongs to t = T.

Both runs see the same images, and each gets a generator seeded with the seed, so with the same T they draw the
same timesteps and the same noise: their curves differ by the models alone. The bound is on log p(x) without a
class: a class-conditional checkpoint gets its null class (y = None, explorer.nets). Images are 8-bit: the gallery
(the first Fashion-MNIST test image of each class, as the forward view shows them) or an upload, read by
explorer.app.uploads at the checkpoint's resolution and channels.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

from explorer import checks
from explorer.app import catalogue, plots
from explorer.app.catalogue import UPLOAD
from explorer.app.forward_logic import GALLERY
from explorer.app.options import SEED_MAX, UserInputError, until
from explorer.app.reverse_logic import DEFAULT_CHECKPOINT, stopped
from explorer.app.uploads import load_upload
from explorer.checkpoint import ModelConfig
from explorer.likelihood import ELBO, STRATA, elbo_stream

GALLERY_SET = "gallery"  # the images choice that scores the first n gallery images
NONE = "none"  # checkpoint B's choice for no second curve
DEFAULT_B = "fashion_eps_cosine.safetensors"  # B starts on it when bundled: eps against the default v checkpoint
DEFAULTS = {"checkpoint": DEFAULT_CHECKPOINT, "upload": None, "checkpoint_b": DEFAULT_B, "images": GALLERY_SET,
            "n": 4, "image_upload": None, "t_stride": 40, "strata": "log", "seed": 0}
CONTROLS = tuple(DEFAULTS)  # the names of the run's controls, in the API's order
OUTPUTS = ("curve", "status")
LABELS = ("A", "B")
HEIGHT = 440  # the figure, with its legend under the plot
EXPLAIN = (r"$$L = \underbrace{D_{KL}(q(x_T \mid x_0) \,\|\, p(x_T))}_{L_T} + \sum_{t=2}^{T}"
           r"\underbrace{D_{KL}(q(x_{t-1} \mid x_t, x_0) \,\|\, p_\theta(x_{t-1} \mid x_t))}_{L_{t-1}}"
           r"\underbrace{- \log p_\theta(x_0 \mid x_1)}_{L_0}$$"
           "\n\nThe ELBO of DDPM eq. 5 (Ho et al. 2020), divided by pixels × ln 2: bits per dimension. Solid: each "
           "term at its t; dashed: the bits spent up to t, ending at the total. One t per stratum stands for its "
           "whole span, so the total stays unbiased. Most bits go to the few steps next to t = 1, the finest "
           "detail.")


def default_b(found: dict[str, ModelConfig]) -> str:
    """Checkpoint B the view starts on: DEFAULT_B when bundled, else none."""
    return DEFAULT_B if DEFAULT_B in found else NONE


@dataclass(frozen=True, eq=False)
class ElboSettings:
    """One validated run: the checkpoints (A, then B if chosen), the images x0 (N, C, H, W) in [-1, 1] on the
    8-bit grid, and how t is stratified."""
    runs: tuple[tuple[Path, ModelConfig], ...]
    x0: torch.Tensor
    t_stride: int
    strata: str
    seed: int

    @classmethod
    def parse(cls, controls: dict) -> ElboSettings:
        """The controls by name (CONTROLS); ValueError names what is wrong."""
        c = controls
        runs = checkpoints(c["checkpoint"], c["upload"], c["checkpoint_b"])
        T = stride_limit(runs)
        t_stride = checks.whole("t stride", c["t_stride"], 1, T, f" (T = {T})")
        strata = checks.choice("strata", c["strata"], STRATA)
        seed = checks.whole("seed", c["seed"], 0, SEED_MAX)
        n = checks.whole("the number of images", c["n"], 1, len(GALLERY))
        images = checks.choice("images", c["images"], [GALLERY_SET, UPLOAD])
        return cls(runs, test_images(runs[0][1], images, n, c["image_upload"]), t_stride, strata, seed)


def checkpoints(checkpoint: str, upload: str | None, checkpoint_b: str) -> tuple[tuple[Path, ModelConfig], ...]:
    """A (a bundled image checkpoint or UPLOAD) and B (a bundled one of the same sample shape, or NONE) with their
    configs; ValueError says why not."""
    path, config = catalogue.chosen(checkpoint, upload)
    b = checks.choice("checkpoint B", checkpoint_b, [NONE, *catalogue.bundled_images()])
    if b == NONE:
        return ((path, config),)
    path_b, config_b = catalogue.chosen(b, None)
    if list(config_b.sample_shape) != list(config.sample_shape):
        raise UserInputError(f"{b} models images of shape {list(config_b.sample_shape)}, {path.name} of shape "
                             f"{list(config.sample_shape)}; both curves score the same images, so choose a "
                             "checkpoint B of the same shape, or none.")
    return (path, config), (path_b, config_b)


def stride_limit(runs: tuple[tuple[Path, ModelConfig], ...]) -> int:
    """The largest t stride: the smaller T."""
    return min(config.T for _, config in runs)


def test_images(config: ModelConfig, images: str, n: int, upload: str | None) -> torch.Tensor:
    """The first n gallery images, or the uploaded one, as (N, C, H, W) at the checkpoint's sample shape."""
    channels, side = config.sample_shape[0], config.sample_shape[-1]
    if images == UPLOAD:
        if not upload:
            raise UserInputError("upload an image first, or score the gallery")
        if not Path(upload).is_file():
            raise UserInputError("the uploaded image is no longer on the server; please upload it again")
    files = list(GALLERY.values())[:n] if images == GALLERY_SET else [upload]
    return torch.stack([load_upload(f, side, "grey" if channels == 1 else "colour") for f in files])


@dataclass(frozen=True)
class Curve:
    """The ELBO of one checkpoint so far (`elbo.complete` once every term is in)."""
    label: str
    path: Path
    config: ModelConfig
    elbo: ELBO

    @property
    def name(self) -> str:
        return f"{self.label}: {self.path.stem}"

    def cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """Bits/dim spent at timesteps up to t, at the last t of each span so far; with L_T at t = T once complete
        (so the last value is the total)."""
        e = self.elbo
        ends, spent = e.spans.cumsum(0).numpy(), (e.terms_bpd * e.spans).cumsum(0).numpy()
        if e.complete:
            ends, spent = np.r_[ends, self.config.T], np.r_[spent, e.total_bpd]
        return ends.astype(np.float32), spent.astype(np.float32)

    def half_way(self) -> int:
        """The timestep by which half of the total is spent."""
        ends, spent = self.cumulative()
        return int(ends[np.searchsorted(spent, spent[-1] / 2)])


def elbo_figure(curves: list[Curve], T: int) -> go.Figure:
    """Each checkpoint's terms against t = 1..T on log-log axes (L_{t-1} a line, L_0 a square at t = 1, L_T a
    diamond at its T when it is not 0), and the bits spent up to t, dashed, on a linear axis on the right."""
    data = []
    for c, colour, fill in zip(curves, plots.RUN_COLOURS, ("", "-open")):  # B's markers open: A's show through
        e, group = c.elbo, {"legendgroup": c.label, "hoverinfo": "x+y+text"}
        edge = {"color": colour, "width": 2.5} if fill else {"color": "black", "width": 1}
        mark = {"color": colour, "size": 12, "line": edge}
        t, terms = e.t.numpy().astype(np.float32), e.terms_bpd.numpy().astype(np.float32)
        ends, spent = c.cumulative()
        total = f": {e.total_bpd:.3f} bits/dim" if e.complete else " …"
        data += [{"type": "scatter", "mode": "lines+markers", "x": t[1:], "y": terms[1:], "name": c.name + total,
                  "text": "L_{t−1}", "line": {"color": colour, "width": 2.5}, "marker": {"size": 5}, **group},
                 {"type": "scatter", "mode": "markers", "x": t[:1], "y": terms[:1], "text": "L_0", "showlegend": False,
                  "marker": {**mark, "symbol": "square" + fill}, **group},
                 {"type": "scatter", "mode": "lines", "x": ends, "y": spent, "yaxis": "y2",
                  "text": "spent up to t", "showlegend": False, "line": {"color": colour, "width": 1.5, "dash": "dash"},
                  **group}]
        if e.complete and e.prior_bpd > 0:
            data.append({"type": "scatter", "mode": "markers", "x": [c.config.T], "y": [e.prior_bpd], "text": "L_T",
                         "showlegend": False, "marker": {**mark, "symbol": "diamond" + fill}, **group})
    ticks = plots.log_ticks(1, T)
    return plots._figure(data, {
        "height": HEIGHT, "title": {"text": f"ELBO terms over t: where the bits go (T = {T})"},
        "xaxis": {"type": "log", "range": [-0.08, float(np.log10(T)) + 0.04], "tickvals": ticks,
                  "ticktext": [f"{v:g}" for v in ticks], "title": {"text": "t"}},
        "yaxis": {"type": "log", "dtick": 1, "exponentformat": "power", "title": {"text": "bits/dim per timestep"}},
        "yaxis2": {"overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False,
                   "title": {"text": "bits/dim up to t (dashed)"}},
        "legend": {"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top", "font": {"size": plots.LEGEND_FONT}},
        "margin": {"l": 70, "r": 70, "t": 45, "b": 90},
    })


def describe(c: Curve) -> str:
    return f"{c.path.name} ({c.config.objective}, {c.config.schedule})"


def progress(c: Curve) -> str:
    """What a frame shows: e.g. "A: 12 of 26 timesteps"."""
    return f"{c.label}: {len(c.elbo.t)} of {c.elbo.n} timesteps"


def row(c: Curve) -> str:
    """A line of the status table: total, L_T, the sum of the L_{t-1}, L_0 and the half-way timestep."""
    e = c.elbo
    l0 = float(e.terms_bpd[0])
    if not e.complete:
        return f"| **{c.label}** {describe(c)} | {e.total_bpd:.3f} so far | | | {l0:.3f} | |"
    return (f"| **{c.label}** {describe(c)} | **{e.total_bpd:.3f}** | {e.prior_bpd:.2g} | "
            f"{e.total_bpd - e.prior_bpd - l0:.3f} | {l0:.3f} | {c.half_way()} |")


def status(curves: list[Curve], settings: ElboSettings, seconds: float, done: bool) -> str:
    c = curves[-1]
    n, spacing = len(settings.x0), "log-spaced" if settings.strata == "log" else "uniform"
    if done:
        head = (f"**Done** in {seconds:.1f} s: {c.elbo.n} model calls per checkpoint ({spacing} strata, stride "
                f"{settings.t_stride}) on {n} image{'s' * (n > 1)}; the same t and noise for each "
                f"(seed {settings.seed}).")
    else:
        head = f"Evaluating **{progress(c)}** · {seconds:.1f} s"
    table = [r"| checkpoint | bits/dim | $L_T$ | $\sum_t L_{t-1}$ | $L_0$ | half spent by t = |", "|---" * 6 + "|"]
    return "\n".join([head, "", *table, *map(row, curves)])


def _curves(settings: ElboSettings, stop: threading.Event | None) -> Iterator[list[Curve]]:
    """The curves so far after each model call: A's, then B's beside A's complete one; once `stop` is set, no
    further model call is made."""
    done = []
    for label, (path, config) in zip(LABELS, settings.runs):
        model = catalogue.model_at(path)
        device = next(model.parameters()).device
        stream = elbo_stream(model, model.schedule, settings.x0.to(device), model.objective,
                             t_stride=settings.t_stride, strata=settings.strata,
                             generator=torch.Generator(device).manual_seed(settings.seed))
        for part in until(stream, stop):
            yield [*done, Curve(label, path, config, part)]
        if stop is not None and stop.is_set():
            return
        done.append(Curve(label, path, config, part))


@torch.inference_mode()
def elbo_updates(settings: ElboSettings, running) -> Iterator[dict]:
    """The run, as dicts of the OUTPUTS: the figure and the status after each model call. `running` is the run's
    explorer.app.stops.Running: its flag stops the run, which then ends with a status saying where."""
    start, done = time.perf_counter(), False
    T = max(config.T for _, config in settings.runs)
    for curves in _curves(settings, running.stop):
        if not running.show(progress(curves[-1])):
            break
        done = curves[-1].elbo.complete and len(curves) == len(settings.runs)
        seconds = time.perf_counter() - start
        yield {"curve": elbo_figure(curves, T), "status": status(curves, settings, seconds, done)}
    if not done:  # stopped: the same words as the Stop button's, whichever lands last
        yield {"status": stopped(running.shown)}
