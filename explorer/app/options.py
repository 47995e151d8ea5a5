"""What the views share, with no gradio in it: the error meant for the visitor, the schedules the views draw,
the sampler options that the reverse view and the toy lab both offer, with their names as the page shows them,
class labels for a batch, which steps of a run are shown, and a stream that ends when its stop flag is set.

Checks of single values are explorer.checks' (ValueError naming the option and the allowed values); the rules
that are the app's own (an unconditional model has no class to choose, ...) raise UserInputError.
"""
from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

from explorer import checks
from explorer.samplers import METHODS, SPACINGS, VARIANCES
from explorer.schedules import NoiseSchedule, make_schedule

SEED_MAX = 2 ** 63 - 1
METHOD_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "dpm-solver++": "DPM-Solver++(2M)"}
VARIANCE_NAMES = {"beta": "β", "beta_tilde": "β̃"}
T_ = TypeVar("T_")
MIXED = "mixed (one of each class in turn)"  # the class choice that asks for classes 0, 1, ..., K - 1, 0, ...


class UserInputError(ValueError):
    """A problem with what the visitor sent; the message is shown to them as is."""


@functools.lru_cache(maxsize=16)
def schedule(name: str, T: int) -> NoiseSchedule:
    """The schedule `name` with T steps, made once and shared read-only by every view."""
    return make_schedule(name, T)


@dataclass(frozen=True)
class SamplerOptions:
    """A sampler and the options that set its sigma on each step (those of samplers.sample)."""
    method: str
    variance: str
    eta: float
    spacing: str
    steps: int

    @classmethod
    def check(cls, method, variance, eta, spacing, steps, T: int, note: str = "") -> SamplerOptions:
        """The options as the controls send them, checked for a model with T steps (`note` follows the
        message about steps); ValueError names what is wrong."""
        return cls(checks.choice("sampler", method, METHODS), checks.choice("variance", variance, VARIANCES),
                   checks.number("eta", eta, 0.0, 1.0), checks.choice("spacing", spacing, SPACINGS),
                   checks.whole("steps", steps, 1, T, note))

    @property
    def name(self) -> str:
        """The sampler with the option that sets its noise, e.g. "DDPM, σ² = β̃", "DDIM, η = 0.5"."""
        if self.method == "ddpm":
            return f"DDPM, σ² = {VARIANCE_NAMES[self.variance]}"
        if self.method == "ddim":
            return f"DDIM, η = {self.eta:g}"
        return METHOD_NAMES[self.method]

    def describe(self) -> str:
        """In a few words, e.g. "DDIM, η = 0.5, 50 steps (trailing)"."""
        return f"{self.name}, {self.steps} step{'s' * (self.steps > 1)} ({self.spacing})"

    def keywords(self) -> dict:
        """The keyword options of samplers.sample and samplers.plan."""
        return {"method": self.method, "steps": self.steps, "eta": self.eta, "spacing": self.spacing,
                "variance": self.variance}


def class_labels(label: str, class_names: list[str], n: int, device) -> torch.Tensor:
    """Labels of a batch of n: classes 0, 1, ..., K - 1, 0, ... for MIXED, else all the class `label`."""
    if label == MIXED:
        return torch.arange(n, device=device) % len(class_names)
    return torch.full((n,), class_names.index(label), dtype=torch.long, device=device)


def shown_steps(steps: int, max_frames: int) -> list[int]:
    """The steps after which a run shows a frame: every k-th, k = ceil(steps / max_frames), and the last."""
    k = math.ceil(steps / max_frames)
    return [j for j in range(1, steps + 1) if j % k == 0 or j == steps]


def until(items: Iterator[T_], stop: threading.Event | None) -> Iterator[T_]:
    """The items of an iterator until `stop` is set, checked before each one is computed (a Stop button's
    flag, explorer.app.stops, checked before each model call or training step)."""
    while stop is None or not stop.is_set():
        item = next(items, None)
        if item is None:
            return
        yield item
