"""Pictures and Plotly figures built from float32 numpy arrays; no diffusion maths here, only drawing.

Figures are built from plain dicts with Plotly's validation switched off (`_validate=False`): validating a
figure of a few traces costs about 10 ms, building it this way about 1 ms, and the slider redraws three of
them per move. tests/test_app_forward.py rebuilds each figure with validation on, so a wrong property name
still fails a test. Each figure's modebar camera ("Download plot as a PNG") saves `<panel>.png`, named by
the function that drew it, at twice the size on screen (Figure).
"""
from __future__ import annotations

import json
import re

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

HEIGHT = 360
FONT, TITLE_FONT, LEGEND_FONT = 15, 17, 13  # px: ticks and axis titles, figure titles, legends and notes; sized
# to read on a projector from the back of a room (Plotly's default is 12)
COLOURS = {"alpha_bar": "#1f77b4", "sqrt_alpha_bar": "#2ca02c", "sqrt_one_minus_alpha_bar": "#d62728",
           "snr": "#9467bd"}
LABELS = {"alpha_bar": "ᾱ_t", "sqrt_alpha_bar": "√ᾱ_t", "sqrt_one_minus_alpha_bar": "√(1−ᾱ_t)", "snr": "SNR_t (right)"}
ON_RIGHT = {"snr"}  # drawn on the right-hand log axis: the SNR runs from about 10^4 down to 0, far off a 0-1 axis


PNG_SCALE = 2  # the modebar's PNG is twice the size on screen: sharp on slides
MAX_NAME = 48  # characters of a PNG's name made from a figure's title


class Figure(go.Figure):
    """A go.Figure whose JSON, what gradio's gr.Plot sends to the page, carries Plotly's config too (the page
    passes it to Plotly.react): the modebar's PNG download is named `filename`.png and drawn at PNG_SCALE."""

    def __init__(self, figure: dict, filename: str):
        super().__init__(figure, _validate=False)
        self._filename = filename

    def to_json(self, *args, **kwargs) -> str:
        config = {"toImageButtonOptions": {"format": "png", "filename": self._filename, "scale": PNG_SCALE},
                  "displaylogo": False}
        return f'{super().to_json(*args, **kwargs)[:-1]},"config":{json.dumps(config)}}}'

    def __reduce__(self):  # copies keep the name
        return self.__class__, (self.to_dict(), self._filename)


def _figure(data: list[dict], layout: dict, filename: str | None = None) -> Figure:
    """The app's figure from plain dicts: its fonts, margins and template under `layout`; the PNG download is
    named `filename` (None: the title's words, such as "elbo_terms_per_timestep")."""
    base = {"height": HEIGHT, "margin": {"l": 60, "r": 15, "t": 45, "b": 50}, "uirevision": "keep",
            "font": {"size": FONT},
            "legend": {"x": 0.99, "xanchor": "right", "y": 0.99, "yanchor": "top", "font": {"size": LEGEND_FONT},
                       "bgcolor": "rgba(255, 255, 255, 0.8)"},
            "template": "plotly_white"}
    title = {"font": {"size": TITLE_FONT}, **layout.get("title", {})}
    filename = filename or re.sub(r"\W+", "_", title.get("text", "plot").lower()).strip("_")[:MAX_NAME]
    return Figure({"data": data, "layout": {**base, **layout, "title": title}}, filename or "plot")


def picture(x: np.ndarray, scale: int) -> np.ndarray:
    """A (C, H, W) image in [-1, 1] as uint8 pixels (H*scale, W*scale) or (H*scale, W*scale, 3), values
    clipped to [-1, 1] and each pixel repeated scale times (nearest neighbour) so small images stay crisp."""
    u8 = np.rint((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    u8 = u8[0] if u8.shape[0] == 1 else u8.transpose(1, 2, 0)  # (C, H, W) -> (H, W) or (H, W, C)
    return u8.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else u8


CAPTION_SHARE = 0.22  # a caption strip is this share of a cell's height
CAPTION_INK = 40  # dark grey text on the white strip


def captioned(pixels: np.ndarray, names: list[str], columns: int, cell: tuple[int, int], pad: int) -> np.ndarray:
    """A grid picture (uint8 (H, W) or (H, W, 3), cells of `cell` = (h, w) pixels `pad` apart and around, as
    `columns` per row, in the order of `names`) with a white caption strip under each row of cells: each cell's
    name centred under it, in the largest type (up to the strip's height) that fits the widest name in a cell."""
    h, w = cell
    rows = -(-len(names) // columns)
    strip = max(10, round(CAPTION_SHARE * h))
    font = ImageFont.load_default(size=strip)
    widest = max(font.getlength(name) for name in names)
    if widest > 0.95 * w:
        font = ImageFont.load_default(size=max(6, int(strip * 0.95 * w / widest)))
    white = np.full((strip, *pixels.shape[1:]), 255, np.uint8)
    bands = [pixels[:pad]]
    for i in range(rows):
        top = pad + i * (h + pad)
        bands += [pixels[top:top + h], white, pixels[top + h:top + h + pad]]
    out = Image.fromarray(np.concatenate(bands, axis=0))
    draw = ImageDraw.Draw(out)
    ink = CAPTION_INK if out.mode == "L" else (CAPTION_INK,) * 3
    for k, name in enumerate(names):
        i, j = divmod(k, columns)
        x = pad + j * (w + pad) + w / 2
        y = pad + i * (h + pad + strip) + h + strip / 2
        draw.text((x, y), name, fill=ink, font=font, anchor="mm")
    return np.asarray(out)


def schedule_curves(t_axis: np.ndarray, curves: dict[str, dict[str, np.ndarray]], selected: str, t: int,
                    at_t: dict[str, float], log_y: bool) -> go.Figure:
    """Each quantity of `curves[schedule][quantity]` against t_axis: the selected schedule solid, the others
    dotted, markers at (t, at_t[quantity]) and a vertical line at t; those in ON_RIGHT (the SNR) on a log axis
    of their own on the right. log_y: logarithmic left y axis."""
    data = []
    for name, quantities in curves.items():
        solid = name == selected
        for q, y in quantities.items():
            data.append({"type": "scatter", "mode": "lines", "x": t_axis, "y": y, "name": LABELS[q],
                         "legendgroup": q, "showlegend": solid, "hoverinfo": "x+y+name",
                         "yaxis": "y2" if q in ON_RIGHT else "y",
                         "line": {"color": COLOURS[q], "width": 2.5 if solid else 1.5,
                                  "dash": "solid" if solid else "dot"}})
    for group in ([q for q in at_t if q not in ON_RIGHT], [q for q in at_t if q in ON_RIGHT]):
        data.append({"type": "scatter", "mode": "markers", "x": [t] * len(group),
                     "y": [at_t[q] if np.isfinite(at_t[q]) else None for q in group],  # SNR is infinite at t = 0
                     "yaxis": "y2" if group and group[0] in ON_RIGHT else "y",
                     "marker": {"color": [COLOURS[q] for q in group], "size": 10,
                                "line": {"color": "black", "width": 1}},
                     "hovertext": [LABELS[q] for q in group], "hoverinfo": "text+y", "showlegend": False})
    yaxis = {"type": "log", "exponentformat": "power"} if log_y else {"range": [0, 1.05]}
    return _figure(data, {
        "title": {"text": f"Schedule at t = {t} ({selected} solid, other dotted)"},
        "xaxis": {"title": {"text": "t"}, "range": [0, float(t_axis[-1])], "automargin": True},
        # margins grow to fit the ticks and axis titles at any font size (projector mode), the legend at the bottom
        "margin": {"l": 60, "r": 15, "t": 45, "b": 10},
        "legend": {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom"},
        "yaxis": {**yaxis, "title": {"text": "value" + (" (log)" if log_y else "")}, "automargin": True},
        "yaxis2": {"type": "log", "exponentformat": "power", "overlaying": "y", "side": "right", "showgrid": False,
                   "automargin": True,
                   "title": {"text": "SNR_t (log)", "font": {"color": COLOURS["snr"]}},
                   "tickfont": {"color": COLOURS["snr"]}},
        "shapes": [{"type": "line", "x0": t, "x1": t, "yref": "paper", "y0": 0, "y1": 1,
                    "line": {"color": "black", "width": 1, "dash": "dash"}}],
    }, f"schedule_{selected}_T{int(t_axis[-1])}")  # no t: a new config redraws the plot from scratch


def log_ticks(low: float, high: float) -> list[float]:
    """Tick values 1, 2, 5 times the powers of ten from `low` to `high`, written out in full on a log axis
    (Plotly's own minor labels read "5, 0.1, 2, 5")."""
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    values = [round(m * 10.0 ** e, 12) for e in decades for m in (1, 2, 5)]
    return [v for v in values if low <= v <= high]


def power_spectrum(freqs: np.ndarray, power0: np.ndarray, power_t: np.ndarray, signal: np.ndarray, floor: float,
                   crossover: float | None, y_range: tuple[float, float]) -> go.Figure:
    """Radially averaged power of x_0 and x_t, the scaled signal part, the noise floor (horizontal line) and the
    crossover frequency (vertical line; the band above it is shaded as drowned). Log-log axes, y_range in log10."""
    data = [
        {"type": "scatter", "mode": "lines", "x": freqs, "y": power0, "name": "x_0", "line": {"color": "#7f7f7f"}},
        {"type": "scatter", "mode": "lines", "x": freqs, "y": signal, "name": "ᾱ_t·P_0 (signal part)",
         "line": {"color": "#2ca02c", "dash": "dash"}},
        {"type": "scatter", "mode": "lines+markers", "x": freqs, "y": power_t, "name": "x_t",
         "line": {"color": "#1f77b4"}, "marker": {"size": 4}},
    ]
    shapes, annotations = [], []
    if floor > 0:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": floor, "y1": floor,
                       "line": {"color": "#d62728", "dash": "dot", "width": 2}})
        annotations.append({"xref": "paper", "x": 0.01, "y": float(np.log10(floor)), "yanchor": "bottom",
                            "xanchor": "left", "showarrow": False, "text": f"noise floor {floor:.4g}",
                            "font": {"color": "#d62728", "size": LEGEND_FONT}})
    if crossover is not None:
        shapes.append({"type": "rect", "x0": crossover, "x1": float(freqs[-1]), "yref": "paper", "y0": 0, "y1": 1,
                       "fillcolor": "rgba(214, 39, 40, 0.08)", "line": {"width": 0}, "layer": "below"})
        shapes.append({"type": "line", "x0": crossover, "x1": crossover, "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": "#d62728", "width": 1.5}})
        annotations.append({"x": float(np.log10(crossover)), "yref": "paper", "y": 1, "yanchor": "bottom",
                            "showarrow": False, "text": f"f_c = {crossover:.3f}", "font": {"color": "#d62728"}})
    ticks = log_ticks(float(freqs[0]), float(freqs[-1]))
    return _figure(data, {
        "title": {"text": "Radially averaged power spectrum"},
        "xaxis": {"type": "log", "tickvals": ticks, "ticktext": [f"{v:g}" for v in ticks],
                  "title": {"text": "frequency (cycles / pixel)"}},
        "yaxis": {"type": "log", "dtick": 1, "range": list(y_range), "title": {"text": "power"},
                  "exponentformat": "power"},
        "shapes": shapes, "annotations": annotations,
    }, "power_spectrum")


def histogram(edges: np.ndarray, density: np.ndarray, normal_x: np.ndarray, normal_pdf: np.ndarray,
              mean: float, std: float, y_max: float) -> go.Figure:
    """Bars of a density histogram over `edges` with the reference density (normal_x, normal_pdf) as a line."""
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    data = [
        {"type": "bar", "x": centres, "y": density, "width": widths, "name": "pixels of x_t",
         "marker": {"color": "rgba(31, 119, 180, 0.6)", "line": {"width": 0}}},
        {"type": "scatter", "mode": "lines", "x": normal_x, "y": normal_pdf, "name": "N(0, 1) density",
         "line": {"color": "black", "width": 2}},
    ]
    return _figure(data, {
        "title": {"text": f"Histogram of x_t: mean {mean:+.3f}, std {std:.3f}"},
        "xaxis": {"range": [float(edges[0]), float(edges[-1])], "title": {"text": "pixel value"}},
        "yaxis": {"range": [0, y_max], "title": {"text": "density"}},
        "bargap": 0,
    }, "histogram")


RUN_COLOURS = ("#ff7f0e", "#9467bd")  # the sampler runs drawn by sampler_sigmas: A, then B


def sampler_sigmas(t_axis: np.ndarray, sqrt_beta: np.ndarray, sqrt_beta_tilde: np.ndarray,
                   runs: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> go.Figure:
    """The noise scale sigma each sampler run adds on its step from t (one trace of markers and lines per
    (name, t, sigma) in `runs`), over the reference curves sqrt(beta_t) and sqrt(beta_tilde_t) against t_axis.
    A run whose sigma is 0 on every step (DDIM with eta = 0, DPM-Solver++) gets an arrow in its colour saying
    what that means."""
    data = [
        {"type": "scatter", "mode": "lines", "x": t_axis, "y": sqrt_beta, "name": "√β_t (σ² = β_t, all T steps)",
         "line": {"color": "#7f7f7f", "dash": "dot", "width": 1.5}, "hoverinfo": "x+y+name"},
        {"type": "scatter", "mode": "lines", "x": t_axis, "y": sqrt_beta_tilde,
         "name": "√β̃_t (σ² = β̃_t, all T steps)", "line": {"color": "#2ca02c", "dash": "dash", "width": 1.5},
         "hoverinfo": "x+y+name"},
    ]
    annotations = []
    for k, ((name, t, sigma), colour) in enumerate(zip(runs, RUN_COLOURS)):
        data.append({"type": "scatter", "mode": "lines+markers", "x": t, "y": sigma, "name": name,
                     "line": {"color": colour, "width": 2}, "marker": {"size": 5}, "hoverinfo": "x+y+name"})
        if not np.any(sigma):  # a flat line on the axis reads as an empty plot: say what it means
            annotations.append({"x": float(np.median(t)), "y": 0, "ax": 0, "ay": -40 - 30 * k, "showarrow": True,
                                "arrowcolor": colour, "arrowhead": 2, "bgcolor": "rgba(255, 255, 255, 0.9)",
                                "bordercolor": colour, "font": {"color": colour, "size": FONT},
                                "text": "σ = 0 on every step: deterministic, no fresh noise"})
    return _figure(data, {
        "title": {"text": title},
        "legend": {"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255, 255, 255, 0.8)",
                   "font": {"size": LEGEND_FONT}},
        "xaxis": {"title": {"text": "t (the model's timestep on that step)"}, "range": [0, float(t_axis[-1])]},
        "yaxis": {"title": {"text": "σ, the scale of the fresh noise"}, "range": [-0.04, 1.05],
                  "zeroline": False},  # below 0, so a run at sigma = 0 is drawn above the axis, not hidden by it
        "annotations": annotations,
    }, "sampler_sigmas")


# --- the 2D toy lab ------------------------------------------------------------------------------------------

TOY_HEIGHT = 520
CLASS_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")  # points of class 0, 1, ...
POINT_COLOUR = "#1b1f3b"
PATH_COLOUR = "#ff7f0e"
ARROW_COLOUR = "rgba(40, 40, 40, 0.6)"
DENSITY_SCALE = [[0.0, "rgba(255, 255, 255, 0)"], [0.4, "#eeeeee"], [0.75, "#d4d4d4"], [1.0, "#b0b0b0"]]
ARROW_CAP = 90  # arrows longer than this percentile of the lengths are drawn at that length
HEAD = 0.35  # arrowhead length as a share of the arrow
HEAD_ANGLE = 0.45  # radians between the shaft and each barb


def _arrow_polylines(origins: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arrows from origins (M, 2) along vectors (M, 2) as one polyline per arrow, tail -> tip -> left barb
    -> tip -> right barb, separated by NaN (a gap), so all of them draw as one Plotly trace."""
    tips = origins + vectors
    back = -HEAD * vectors
    c, s = np.cos(HEAD_ANGLE), np.sin(HEAD_ANGLE)
    left = tips + np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], axis=1)
    right = tips + np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], axis=1)
    gap = np.full_like(origins, np.nan)
    lines = np.stack([origins, tips, left, tips, right, gap], axis=1).reshape(-1, 2)  # (M * 6, 2)
    return lines[:, 0].astype(np.float32), lines[:, 1].astype(np.float32)


def toy_plane(axis: np.ndarray, log_density: np.ndarray | None, points: np.ndarray, labels: np.ndarray | None,
              paths: np.ndarray | None, arrows: tuple[np.ndarray, np.ndarray] | None, title: str,
              extent: float, legend: dict[str, str] | None = None) -> go.Figure:
    """The toy lab's picture on the fixed square [-extent, extent]^2 (so the cloud never jumps):

    - log_density (len(axis), len(axis)), rows along y: filled contours behind everything (None: none);
    - points (N, 2): markers, coloured by labels (N,) of classes 0, 1, ... (None: one colour);
    - paths (H, S, 2): H highlighted trajectories of S positions each, drawn as lines, with a marker at the
      last position (None: none);
    - arrows (origins (M, 2), vectors (M, 2)): a field drawn as arrows, lengths proportional to the vectors'
      up to their ARROW_CAP percentile (0.9 grid spacings), longer ones drawn at that length (None: none).
    legend names the traces: keys "density", "points", "paths", "field".
    """
    names = {"density": "log q(x_t)", "points": "particles", "paths": "highlighted paths", "field": "field",
             **(legend or {})}
    data = []
    if log_density is not None:
        data.append({"type": "contour", "x": axis, "y": axis, "z": log_density, "name": names["density"],
                     "colorscale": DENSITY_SCALE, "showscale": False, "ncontours": 14, "hoverinfo": "skip",
                     "contours": {"coloring": "fill"}, "line": {"width": 0.6, "color": "rgba(90, 90, 90, 0.45)"},
                     "showlegend": True})
    if arrows is not None:
        origins, vectors = arrows
        lengths = np.sqrt((vectors ** 2).sum(1))
        cap = float(np.percentile(lengths, ARROW_CAP)) if len(lengths) else 0.0
        spacing = 2 * extent / max(1, round(np.sqrt(len(origins))))
        shrink = 0.9 * spacing / np.maximum(lengths, cap) if cap > 0 else np.zeros_like(lengths)
        scaled = vectors * shrink[:, None]
        x, y = _arrow_polylines(origins, scaled)
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": y, "name": names["field"],
                     "line": {"color": ARROW_COLOUR, "width": 1}, "hoverinfo": "skip", "connectgaps": False})
    colour = POINT_COLOUR if labels is None else [CLASS_COLOURS[int(k) % len(CLASS_COLOURS)] for k in labels]
    # SVG, not WebGL ("scattergl"): a WebGL trace drawn while its tab is hidden (the lab's first frame, drawn as
    # the page loads) stays blank until the next redraw; the lab's 5000 points at most draw fine in SVG
    data.append({"type": "scatter", "mode": "markers", "x": points[:, 0], "y": points[:, 1],
                 "name": names["points"], "hoverinfo": "skip",
                 "marker": {"size": 3.5, "color": colour, "opacity": 0.65, "line": {"width": 0}}})
    if paths is not None:
        h, s = paths.shape[:2]
        lines = np.concatenate([paths, np.full((h, 1, 2), np.nan, dtype=paths.dtype)], axis=1).reshape(-1, 2)
        data.append({"type": "scatter", "mode": "lines", "x": lines[:, 0], "y": lines[:, 1],
                     "name": names["paths"], "line": {"color": PATH_COLOUR, "width": 1.6}, "hoverinfo": "skip",
                     "connectgaps": False})
        data.append({"type": "scatter", "mode": "markers", "x": paths[:, -1, 0], "y": paths[:, -1, 1],
                     "showlegend": False, "hoverinfo": "skip",
                     "marker": {"size": 8, "color": PATH_COLOUR, "line": {"color": "black", "width": 1}}})
    square = [-extent, extent]
    return _figure(data, {
        "height": TOY_HEIGHT, "title": {"text": title},
        "margin": {"l": 40, "r": 15, "t": 45, "b": 30},
        "xaxis": {"range": square, "zeroline": False, "constrain": "domain"},
        "yaxis": {"range": square, "zeroline": False, "scaleanchor": "x", "scaleratio": 1, "constrain": "domain"},
        "legend": {"orientation": "h", "y": -0.04, "x": 0, "yanchor": "top", "font": {"size": LEGEND_FONT}},
    }, "toy_plane")


def training_curves(steps: np.ndarray, loss: np.ndarray, smooth: np.ndarray, eval_steps: np.ndarray,
                    distance: np.ndarray, floor: float, total: int) -> go.Figure:
    """Live training: the loss of every step (faint) and its running average against steps 1..total, and the
    sliced Wasserstein distance of the samples to the data at eval_steps on a second (log) axis, with its
    data-vs-data `floor` (two fresh draws of the data, the distance's sampling noise) as a dotted line."""
    data = [
        {"type": "scattergl", "mode": "lines", "x": steps, "y": loss, "name": "loss per step",
         "line": {"color": "rgba(31, 119, 180, 0.25)", "width": 1}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "lines", "x": steps, "y": smooth, "name": "loss, running average",
         "line": {"color": "#1f77b4", "width": 2}, "hoverinfo": "x+y"},
        {"type": "scatter", "mode": "lines+markers", "x": eval_steps, "y": distance, "yaxis": "y2",
         "name": "sliced W₂ to data", "line": {"color": "#d62728", "width": 2}, "marker": {"size": 5},
         "hoverinfo": "x+y"},
    ]
    top = float(np.nanmax(loss)) if len(loss) else 1.0
    return _figure(data, {
        "height": 380, "title": {"text": "Live training"},
        "xaxis": {"title": {"text": "optimizer step"}, "range": [0, total]},
        "yaxis": {"title": {"text": "loss"}, "range": [0, 1.05 * top]},
        "yaxis2": {"title": {"text": "sliced W₂ to data", "font": {"color": "#d62728"}}, "overlaying": "y",
                   "side": "right", "type": "log", "exponentformat": "power", "showgrid": False},
        "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y2", "y0": floor, "y1": floor,
                    "line": {"color": "#d62728", "dash": "dot", "width": 1}}],
        "annotations": [{"xref": "paper", "x": 0.99, "yref": "y2", "y": float(np.log10(floor)), "xanchor": "right",
                         "yanchor": "bottom", "showarrow": False, "text": "data vs data",
                         "font": {"color": "#d62728", "size": LEGEND_FONT}}],
        "legend": {"orientation": "h", "y": -0.28, "x": 0, "font": {"size": LEGEND_FONT}},
        "margin": {"l": 55, "r": 60, "t": 40, "b": 80},
    }, "training_curves")
