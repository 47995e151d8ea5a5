"""Noise schedules: beta_t, alpha_t, alpha_bar_t and everything derived from them.

Symbols follow seed 001 and DDPM: alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s, t = 1..T.
Every array has length T + 1 and index 0 means "no noise": beta_0 = 0, alpha_bar_0 = 1 (seed 001 sets
alpha_bar_0 := 1 for the t = 1 case of eq. 6). All arrays are float64; cast them where they are used.

    >>> s = make_schedule("cosine", T=1000)
    >>> s.alpha_bars[0].item(), s.T
    (1.0, 1000)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from explorer.checks import choice, whole

SCHEDULES = ("linear", "cosine")
T_RANGE = (10, 4000)
MAX_BETA = 0.999  # Nichol & Dhariwal (2021) clip beta_t at 0.999 to avoid a singularity at t = T


def linear_betas(T: int) -> torch.Tensor:
    """DDPM's linear schedule (seed 002, "Linear Schedule"): beta from 1e-4 to 0.02 over T = 1000 steps.

    For other T both ends are scaled by 1000 / T (as in improved-diffusion), which keeps the total noise
    sum_t beta_t, and hence alpha_bar at the same fraction of the process, about the same as at T = 1000.
    For T < 50 the scaled end passes 0.999 and is clipped there like the cosine schedule.
    Returns beta_1..beta_T (length T).
    """
    scale = 1000.0 / T
    betas = torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    return betas.clamp(max=MAX_BETA)


def cosine_betas(T: int, s: float = 0.008) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021), eq. 17: alpha_bar(t) = f(t) / f(0) with
    f(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2), and beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1)
    clipped at 0.999 (seed 002, "Cosine Schedule"). Returns beta_1..beta_T (length T)."""
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(min=0.0, max=MAX_BETA)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A variance-preserving noise schedule. `betas`, `alphas`, `alpha_bars` and the derived arrays have
    length T + 1, indexed by t = 0..T (index 0 is clean data)."""

    name: str
    T: int
    betas: torch.Tensor  # beta_t, with beta_0 = 0

    def __post_init__(self):
        if self.betas.shape != (self.T + 1,) or self.betas.dtype != torch.float64:
            raise ValueError("betas must be a float64 tensor of length T + 1 (index 0 = no noise)")

    @cached_property
    def alphas(self) -> torch.Tensor:
        return 1 - self.betas  # alpha_t = 1 - beta_t (seed 001, section 2)

    @cached_property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, 0)  # alpha_bar_t = alpha_t alpha_{t-1} ... alpha_1; alpha_bar_0 = 1

    @cached_property
    def sqrt_alpha_bars(self) -> torch.Tensor:
        return self.alpha_bars.sqrt()  # a_t in seed 001, section 2.6

    @cached_property
    def sqrt_one_minus_alpha_bars(self) -> torch.Tensor:
        return (1 - self.alpha_bars).sqrt()  # b_t in seed 001, section 2.6

    @cached_property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio SNR_t = alpha_bar_t / (1 - alpha_bar_t); +inf at t = 0."""
        ab = self.alpha_bars
        return ab / (1 - ab)

    @cached_property
    def log_snr(self) -> torch.Tensor:
        """log SNR_t = log alpha_bar_t - log(1 - alpha_bar_t); +inf at t = 0."""
        ab = self.alpha_bars
        return ab.log() - torch.log1p(-ab)

    @cached_property
    def beta_tildes(self) -> torch.Tensor:
        """Posterior variance beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
        (seed 001, eq. 4-5); beta_tilde_1 = 0 and index 0 is defined as 0."""
        ab = self.alpha_bars
        out = torch.zeros_like(ab)
        out[1:] = (1 - ab[:-1]) / (1 - ab[1:]) * self.betas[1:]
        return out

    @cached_property
    def posterior_mean_coef_x0(self) -> torch.Tensor:
        """Coefficient of x_0 in mu_t(x_t, x_0): sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) (seed 001, eq. 4)."""
        ab = self.alpha_bars
        out = torch.zeros_like(ab)
        out[1:] = ab[:-1].sqrt() * self.betas[1:] / (1 - ab[1:])
        return out

    @cached_property
    def posterior_mean_coef_xt(self) -> torch.Tensor:
        """Coefficient of x_t in mu_t(x_t, x_0): sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) (seed 001, eq. 4)."""
        ab = self.alpha_bars
        out = torch.zeros_like(ab)
        out[1:] = self.alphas[1:].sqrt() * (1 - ab[:-1]) / (1 - ab[1:])
        return out


def make_schedule(name: str = "cosine", T: int = 1000) -> NoiseSchedule:
    """Build a schedule by name ("linear" or "cosine") with T steps (10 <= T <= 4000)."""
    T = whole("T", T, *T_RANGE)
    betas = {"linear": linear_betas, "cosine": cosine_betas}[choice("schedule", name, SCHEDULES)](T)
    return NoiseSchedule(name=name, T=T, betas=torch.cat([torch.zeros(1, dtype=torch.float64), betas]))


def at(values: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
    """Gather a schedule array at timestep(s) t and shape it to broadcast against `like` (batch first).

    t is an int or an integer tensor of shape (B,); the result has shape (B, 1, ..., 1) (or a 0-d tensor for
    an int t) in the dtype and device of `like`.
    """
    if isinstance(t, torch.Tensor):
        values = values.to(dtype=like.dtype).to(like.device)  # cast first: MPS has no float64
        t = t.to(device=like.device, dtype=torch.long)
        return values[t].reshape(-1, *([1] * (like.ndim - 1))) if t.ndim else values[t]
    return values[int(t)].to(device=like.device, dtype=like.dtype)
