"""Validation at the boundary, in one place: each check returns the value (converted) or raises ValueError with a
message that names the option, the allowed values or range, and what was given. The library, the trainer and the
app all use these, so a bad option reads the same wherever it comes from (the app shows the message as is).
`Config` is the one (de)serialisation of the config dataclasses stored in checkpoints, which validate themselves
in __post_init__ with these checks."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, fields


class Config:
    """Mixin for config dataclasses: plain JSON-able dicts and JSON text (tuples become lists), and back; unknown
    keys raise ValueError naming them."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict):
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; allowed: {allowed}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


def choice(name: str, value, allowed: Iterable):
    """`value` if it is one of `allowed`, else "unknown NAME 'value'; allowed: a, b, c"."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def is_number(value) -> bool:
    """A finite int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def whole(name: str, value, low: int, high: int | None = None, note: str = "") -> int:
    """`value` as an int if it is a whole number (an int, or a float such as a slider's 5.0) in [low, high]
    (no upper bound when `high` is None), else a ValueError saying so, followed by `note`."""
    if not is_number(value) or int(value) != value or value < low or (high is not None and value > high):
        span = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be a whole number {span}{note}, got {value!r}")
    return int(value)


def number(name: str, value, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = False) -> float:
    """`value` as a float if it is a finite number in the interval from `low` to `high` (closed unless
    `open_low` / `open_high`), else a ValueError naming the interval."""
    ok = is_number(value) and (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high)
    if not ok:
        if math.isinf(low) and math.isinf(high):
            span = ""
        elif math.isinf(high):
            span = f" {'>' if open_low else '>='} {low:g}"
        elif math.isinf(low):
            span = f" {'<' if open_high else '<='} {high:g}"
        else:
            span = f" in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a finite number{span}, got {value!r}")
    return float(value)


def flag(name: str, value) -> bool:
    """`value` if it is True or False, else a ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
