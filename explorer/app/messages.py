"""Words for the visitor: input checks whose bad values become clear messages (never stack traces), and the
samplers' names as every view shows them."""
from __future__ import annotations

import functools
import inspect
import math

import gradio as gr

from explorer.app.runtime import UserInputError

METHOD_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "dpm-solver++": "DPM-Solver++(2M)"}
VARIANCE_NAMES = {"beta": "β", "beta_tilde": "β̃"}


def sampler_name(method: str, variance: str, eta: float) -> str:
    """A sampler with the option that sets its noise, e.g. "DDPM, σ² = β̃", "DDIM, η = 0.5", "DPM-Solver++(2M)"."""
    if method == "ddpm":
        return f"DDPM, σ² = {VARIANCE_NAMES[variance]}"
    if method == "ddim":
        return f"DDIM, η = {eta:g}"
    return METHOD_NAMES[method]


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


def choice(name: str, value, allowed):
    """`value` if it is one of `allowed`, else a UserInputError naming the allowed values."""
    if value not in allowed:
        raise UserInputError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def number(name: str, value, low: float, high: float) -> float:
    """`value` as a float if it is a number in [low, high], else a UserInputError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UserInputError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def whole(name: str, value, low: int, high: int, note: str = "") -> int:
    """`value` as an int if it is a whole number in [low, high], else a UserInputError saying so (+ `note`)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or int(value) != value or not low <= value <= high):
        raise UserInputError(f"{name} must be a whole number from {low} to {high}{note}, got {value!r}")
    return int(value)
