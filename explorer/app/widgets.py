"""The pieces of gradio every view uses: formulas' delimiters, bad input turned into a message for the visitor,
handlers marked GPU-bound for Hugging Face ZeroGPU, and the sampler's controls (the reverse view and the toy lab
offer the same ones) with the handler that shows only the options of the chosen sampler.

Importing it also makes gradio write the pictures it sends whole (whole_pictures) and answer a number field sent
something else with a message (numbers_only), for every view.
"""
from __future__ import annotations

import functools
import inspect
import os
import tempfile
from pathlib import Path

import gradio as gr
from gradio import processing_utils

from explorer import checks
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


def gpu_bound(fn=None, *, duration=None):
    """Mark a handler that runs a model (as @gpu_bound or @gpu_bound(duration=...)). Where the `spaces` package
    imports (Hugging Face Spaces, where it is preinstalled) this returns spaces.GPU(fn, duration=duration); elsewhere
    `fn` itself, unchanged. spaces.GPU takes plain and generator (streaming) functions alike and is a no-op on a
    Space without ZeroGPU hardware; on ZeroGPU it holds a GPU for each call, relaying a generator's yields one by
    one until it ends. `duration`: the most seconds one call may hold the GPU (None: spaces' default, 60), or a
    callable of the handler's arguments that returns them.
    Put it under for_visitor (for_visitor(gpu_bound(fn))): on ZeroGPU the call runs in a worker process forked from
    the server, so its arguments, results and exceptions travel pickled, and it sees nothing the server changes
    after the fork, such as the flag a Stop button sets (explorer.app.stops)."""
    if fn is None:
        return functools.partial(gpu_bound, duration=duration)
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn, duration=duration)


def whole_pictures(save):
    """Wrap gradio's processing_utils.save_pil_to_cache, which writes a picture in place at a path named by the
    hash of its bytes: two visitors sent the same picture at once (the forward view's noise at the default seed)
    could download it while the other's request rewrites it, and get it cut short (bench/load.py saw this). The
    wrapper lets gradio write it in a temporary folder beside, then renames it into place: a file at that path is
    always whole."""
    @functools.wraps(save)
    def save_whole(img, cache_dir: str, *args, **kwargs) -> str:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            written = Path(save(img, tmp, *args, **kwargs))
            final = Path(cache_dir) / written.relative_to(Path(tmp).resolve())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, final)
        return str(final.resolve())
    return save_whole


processing_utils.save_pil_to_cache = whole_pictures(processing_utils.save_pil_to_cache)


def numbers_only(preprocess):
    """Wrap the preprocess of gradio's Slider or Number, which compares the payload with its bounds before checking
    that it is a number, so that a string or a list sent through the API raised an unhandled TypeError: anything
    but a finite int or float (None passes on to Number's own handling) is answered with a gr.Error naming the
    field."""
    @functools.wraps(preprocess)
    def checked(self, payload):
        if payload is not None and not checks.is_number(payload):
            raise gr.Error(f"{self.label or 'a number field'}: {str(payload)[:40]!r} is not a number.",
                           print_exception=False)
        return preprocess(self, payload)
    return checked


gr.Slider.preprocess = numbers_only(gr.Slider.preprocess)
gr.Number.preprocess = numbers_only(gr.Number.preprocess)


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
            gr.Radio(list(SPACINGS), value=spacing, label="Timestep spacing",
                     info="last model call at t = T/N (trailing) or t = 1 (linspace: better for few-step DPM-Solver++)",
                     elem_id=f"{prefix}-spacing"))


def sampler_options(method: str, variance: str | None = None, eta: float | None = None):
    """Show sigma^2 for DDPM and eta for DDIM only (outputs: the variance radio, the eta slider), set to `variance`
    and `eta` where they are given (a link's)."""
    def given(value) -> dict:
        return {} if value is None else {"value": value}
    return gr.Radio(visible=method == "ddpm", **given(variance)), gr.Slider(visible=method == "ddim", **given(eta))
