"""Words for the visitor: input checks whose bad values become clear messages (never stack traces), and the
samplers' names as every view shows them."""
from __future__ import annotations

import math

from explorer.app.options import UserInputError
from explorer.app.widgets import for_visitor  # noqa: F401  (the views import it from here until they move)

METHOD_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "dpm-solver++": "DPM-Solver++(2M)"}
VARIANCE_NAMES = {"beta": "β", "beta_tilde": "β̃"}


def sampler_name(method: str, variance: str, eta: float) -> str:
    """A sampler with the option that sets its noise, e.g. "DDPM, σ² = β̃", "DDIM, η = 0.5", "DPM-Solver++(2M)"."""
    if method == "ddpm":
        return f"DDPM, σ² = {VARIANCE_NAMES[variance]}"
    if method == "ddim":
        return f"DDIM, η = {eta:g}"
    return METHOD_NAMES[method]


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
