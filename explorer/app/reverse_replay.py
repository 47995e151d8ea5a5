"""The reverse view's step scrubber, with no gradio in it: after a Generate run ends (or is stopped), go back to any
step it showed and see x_t, x0_hat and that step's update with its numbers, without a model call.

A run's shown frames are kept small, as uint8 arrays (N, C, H, W) holding the values the page showed
(round((x + 1) 127.5) of x clipped to [-1, 1], as plots.picture quantizes them, so a replayed picture is the
streamed one pixel for pixel), and never a model; the view keeps the last run's `Replay` per session. The update
of step j is the sampler's move on that step, x_t - x_{t_model} (its Step's x_next - x_t), kept divided by its
largest |value| so its picture fills the grey range. Its numbers: t_model -> t, the step's sigma, the signal and
noise scales a = sqrt(alpha_bar) and b = sqrt(1 - alpha_bar) at both (x_t = a_t x_0 + b_t eps, DDPM eq. 4), and
the root-mean-square per pixel of the model's input x_{t_model}, of x0_hat, of eps_hat and of the update.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from explorer import checks
from explorer.app.options import UserInputError
from explorer.schedules import NoiseSchedule

if TYPE_CHECKING:
    from explorer.app.reverse_logic import Progress


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A batch in [-1, 1] (values beyond are clipped) as uint8, quantized as plots.picture does."""
    return np.rint((x.detach().float().cpu().clamp(-1, 1).numpy() + 1.0) * 127.5).astype(np.uint8)


def from_uint8(u8: np.ndarray) -> torch.Tensor:
    """The float batch in [-1, 1] that to_uint8 and plots.picture quantize back to `u8`."""
    return torch.from_numpy(u8.astype(np.float32) / 127.5 - 1.0)


def rms(x: torch.Tensor) -> float:
    """Root-mean-square per pixel of a batch."""
    return float(x.detach().double().pow(2).mean().sqrt())


@dataclass(frozen=True)
class Kept:
    """One shown frame, kept: the sample x at t after `step` of `n` model calls and the RMS per pixel of x
    (x_T) or, for step >= 1, of x_{t_model}, x0_hat, eps_hat and the update; for step >= 1 also the model's x0_hat
    (made at t_model), the step's update scaled by `gain` (= 1 / its largest |value|), sigma, and the signal and
    noise scales (a, b) at t_model and at t."""
    step: int
    n: int
    t: int
    x: np.ndarray
    t_model: int | None = None
    sigma: float | None = None
    x0_hat: np.ndarray | None = None
    update: np.ndarray | None = None
    gain: float = 1.0
    scales: tuple[tuple[float, float], tuple[float, float]] | None = None
    norms: tuple[float, ...] = ()


def keep(f: Progress, schedule: NoiseSchedule) -> Kept:
    """A frame of a run (reverse_logic.Progress) as the scrubber keeps it; `schedule` is the run's."""
    if f.x0_hat is None:
        return Kept(f.step, f.n, f.t, to_uint8(f.x), norms=(rms(f.x),))
    delta = f.x - f.x_model
    peak = float(delta.abs().amax())
    gain = 1.0 / peak if peak > 0 else 1.0
    a, b = schedule.sqrt_alpha_bars.tolist(), schedule.sqrt_one_minus_alpha_bars.tolist()
    return Kept(f.step, f.n, f.t, to_uint8(f.x), f.t_model, f.sigma, to_uint8(f.x0_hat), to_uint8(delta * gain),
                gain, ((a[f.t_model], b[f.t_model]), (a[f.t], b[f.t])),
                (rms(f.x_model), rms(f.x0_hat), rms(f.eps_hat), rms(delta)))


@dataclass(frozen=True)
class Replay:
    """The kept frames of one run, in order (x_T first), and how its grids are drawn (reverse_logic.Drawing)."""
    frames: tuple[Kept, ...]
    draw: Callable[[torch.Tensor], np.ndarray]

    @property
    def last(self) -> int:
        """The last step shown (the run's n when it ran to the end)."""
        return self.frames[-1].step

    def at(self, step) -> Kept:
        """The frame of the last shown step at or before `step` (a whole number from 0 to `last`)."""
        step = checks.whole("step", step, 0, self.last, " (the last step the run showed)")
        return [f for f in self.frames if f.step <= step][-1]


def numbers(k: Kept) -> str:
    """The frame's numbers, as the scrubber's text shows them."""
    if k.update is None:
        return f"**x_T** at t = {k.t}: pure noise (RMS {k.norms[0]:.3f} per pixel), no guess yet."
    (a_m, b_m), (a_t, b_t) = k.scales
    x_rms, x0_rms, eps_rms, update_rms = k.norms
    return (f"**Step {k.step} of {k.n}**: the model saw x at t = {k.t_model} and guessed x̂₀ and ε̂; the step "
            f"moved x to t = {k.t} with σ = {k.sigma:.4f} of fresh noise.\n\n"
            f"Signal √ᾱ {a_m:.3f} → {a_t:.3f} · noise √(1−ᾱ) {b_m:.3f} → {b_t:.3f}\n\n"
            f"RMS per pixel: x at t = {k.t_model} {x_rms:.3f} · x̂₀ {x0_rms:.3f} · ε̂ {eps_rms:.3f} · "
            f"update {update_rms:.4f} (its picture scaled ×{k.gain:.3g} to fill the grey range)")


def scrub(replay: Replay | None, step) -> dict:
    """What the scrubber shows at `step` of the session's last run: {"x_t", "x0_hat", "update", "numbers"}
    (the pictures None before the first model call); UserInputError when no run has ended yet."""
    if replay is None:
        raise UserInputError("nothing to go back to yet: press Generate; once the run ends (or is stopped) the "
                             "step slider shows any of its steps again")
    k = replay.at(step)
    draw = replay.draw
    return {"x_t": draw(from_uint8(k.x)), "x0_hat": None if k.x0_hat is None else draw(from_uint8(k.x0_hat)),
            "update": None if k.update is None else draw(from_uint8(k.update)), "numbers": numbers(k)}
