"""Validation at the boundary, in one place: each check returns the value (converted) or raises ValueError with a
message that names the option, the allowed values or range, and what was given. The library, the trainer and the
app all use these, so a bad option reads the same wherever it comes from (the app shows the message as is)."""
from __future__ import annotations

import math
from collections.abc import Iterable


def choice(name: str, value, allowed: Iterable):
    """`value` if it is one of `allowed`, else "unknown NAME 'value'; allowed: a, b, c"."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def whole(name: str, value, low: int, high: int | None = None, note: str = "") -> int:
    """`value` as an int if it is a whole number (an int, or a float such as a slider's 5.0) in [low, high]
    (no upper bound when `high` is None), else a ValueError saying so, followed by `note`."""
    if not _is_number(value) or int(value) != value or value < low or (high is not None and value > high):
        span = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be a whole number {span}{note}, got {value!r}")
    return int(value)


def number(name: str, value, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = False) -> float:
    """`value` as a float if it is a finite number in the interval from `low` to `high` (closed unless
    `open_low` / `open_high`), else a ValueError naming the interval."""
    ok = _is_number(value) and (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if open_low else '['}{low:g}, {high:g}"
                         f"{')' if open_high else ']'}, got {value!r}")
    return float(value)


def flag(name: str, value) -> bool:
    """`value` if it is True or False, else a ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
