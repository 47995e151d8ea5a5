"""The pieces of gradio every view uses: formulas' delimiters, bad input turned into a message for the visitor,
and the sampler's choices with the handler that shows only the options of the chosen sampler."""
from __future__ import annotations

import functools
import inspect

import gradio as gr

from explorer.app.options import METHOD_NAMES, VARIANCE_NAMES
from explorer.samplers import METHODS, VARIANCES

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


def sampler_options(method: str):
    """Show sigma^2 for DDPM and eta for DDIM only (outputs: the variance radio, the eta slider)."""
    return gr.Radio(visible=method == "ddpm"), gr.Slider(visible=method == "ddim")
