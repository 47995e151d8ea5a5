"""The pieces of gradio every view uses: formulas' delimiters, bad input turned into a message for the visitor,
and the sampler's controls (the reverse view and the toy lab offer the same ones) with the handler that shows
only the options of the chosen sampler."""
from __future__ import annotations

import functools
import inspect

import gradio as gr

from explorer.app.options import METHOD_NAMES, VARIANCE_NAMES
from explorer.samplers import METHODS, SPACINGS, VARIANCES

METHOD_CHOICES = [(METHOD_NAMES[m], m) for m in METHODS]
VARIANCE_CHOICES = [(f"σ_t² = {VARIANCE_NAMES[v]}_t", v) for v in VARIANCES]
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def for_visitor(fn):
    """Turn a ValueError (UserInputError, CheckpointError, an out-of-range option...) raised by the handler
    `fn` into a gr.Error with the same message; works for plain and for streaming (generator) handlers."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return call


def sampler_choice(prefix: str, method: str) -> gr.Radio:
    """The sampler radio (elem_id `{prefix}-method`)."""
    return gr.Radio(METHOD_CHOICES, value=method, label="Sampler", elem_id=f"{prefix}-method")


def steps_slider(prefix: str, T: int, steps: int) -> gr.Slider:
    """The number of model calls, 1..T (elem_id `{prefix}-steps`)."""
    return gr.Slider(1, T, value=min(steps, T), step=1, label="Steps", info="model calls, at most T",
                     elem_id=f"{prefix}-steps")


def noise_controls(prefix: str, method: str, variance: str, eta: float, spacing: str):
    """The options that set each step's fresh noise and timesteps: DDPM's sigma^2 (shown for DDPM), DDIM's eta
    (shown for DDIM) and the timestep spacing (elem_ids `{prefix}-variance`, `-eta`, `-spacing`)."""
    return (gr.Radio(VARIANCE_CHOICES, value=variance, label="DDPM noise", visible=method == "ddpm",
                     elem_id=f"{prefix}-variance"),
            gr.Slider(0, 1, value=eta, step=0.05, label="DDIM η", info="0: deterministic · 1: DDPM-like",
                      visible=method == "ddim", elem_id=f"{prefix}-eta"),
            gr.Radio(list(SPACINGS), value=spacing, label="Timestep spacing", elem_id=f"{prefix}-spacing"))


def sampler_options(method: str):
    """Show sigma^2 for DDPM and eta for DDIM only (outputs: the variance radio, the eta slider)."""
    return gr.Radio(visible=method == "ddpm"), gr.Slider(visible=method == "ddim")
