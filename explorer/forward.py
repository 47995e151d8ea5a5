"""The forward (noising) process q and its posterior.

- `q_sample`: the closed form q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), drawn by the
  reparameterization x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (seed 001, eq. 1; seed 000).
- `q_chain`: the Markov chain it summarises, x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps_t
  (seed 001, section 2); the two agree in distribution because independent Gaussians merge (seed 002).
- `q_posterior`: q(x_{t-1} | x_t, x_0) = N(mu_t(x_t, x_0), beta_tilde_t I) (seed 001, eq. 4).

t is an int or an integer tensor of shape (B,) in 0..T (0 returns x_0 itself).
"""
from __future__ import annotations

import torch

from explorer.schedules import NoiseSchedule, at


def _check_t(schedule: NoiseSchedule, t, lowest: int = 0) -> None:
    lo, hi = (int(t.min()), int(t.max())) if isinstance(t, torch.Tensor) else (int(t), int(t))
    if lo < lowest or hi > schedule.T:
        raise ValueError(f"t must lie in [{lowest}, {schedule.T}], got {lo if lo < lowest else hi}")


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) given the noise: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (seed 001, eq. 1)."""
    _check_t(schedule, t)
    return at(schedule.sqrt_alpha_bars, t, x0) * x0 + at(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """One step of the chain q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (seed 001, section 2.1)."""
    _check_t(schedule, t, lowest=1)
    return at(schedule.alphas.sqrt(), t, x_prev) * x_prev + at(schedule.betas.sqrt(), t, x_prev) * noise


def q_chain(schedule: NoiseSchedule, x0: torch.Tensor, t: int, generator: torch.Generator | None = None,
            noises: torch.Tensor | None = None) -> torch.Tensor:
    """Iterate the Markov chain from x_0 up to x_t, one fresh eps_s ~ N(0, I) per step s = 1..t.

    `noises` (shape (t, *x0.shape)) fixes the per-step draws; otherwise they come from `generator`.
    The result has the law of `q_sample(schedule, x0, t, eps)` but is a different draw.
    """
    _check_t(schedule, t)
    if noises is None:
        noises = torch.randn((int(t), *x0.shape), generator=generator, dtype=x0.dtype, device=x0.device)
    elif noises.shape != (int(t), *x0.shape):
        raise ValueError(f"noises must have shape {(int(t), *x0.shape)}, got {tuple(noises.shape)}")
    x = x0
    for s in range(1, int(t) + 1):
        x = q_step(schedule, x, s, noises[s - 1])
    return x


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) for t >= 1 (seed 001, eq. 4; seed 002 completes the square):

        mu_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t)(1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
        var_t = beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t

    The variance is returned broadcastable against x_t.
    """
    _check_t(schedule, t, lowest=1)
    mean = at(schedule.posterior_mean_coef_x0, t, x_t) * x0 + at(schedule.posterior_mean_coef_xt, t, x_t) * x_t
    return mean, at(schedule.beta_tildes, t, x_t)
