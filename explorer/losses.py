"""Training losses: L_simple for the eps, x0 and v objectives (DDPM Algorithm 1; seed 001, sections 2.3 and
2.6), with optional min-SNR-gamma weighting (Hang et al. 2023, cited in seed 001).

Min-SNR-gamma weights the per-timestep loss so that its weight *in x_0 terms* is min(SNR_t, gamma). Since
||eps - eps_hat||^2 = SNR_t ||x_0 - x0_hat||^2 and ||v - v_hat||^2 = (SNR_t + 1) ||x_0 - x0_hat||^2, the weight
applied to each objective's own MSE is

    eps: min(SNR_t, gamma) / SNR_t      x0: min(SNR_t, gamma)      v: min(SNR_t, gamma) / (SNR_t + 1)

written so that each stays finite for SNR_t in [0, inf).

Timesteps are drawn uniformly (DDPM Algorithm 1, line 2) or from the discrete image of EDM's log-normal noise
levels (Karras et al. 2022, Table 1: ln sigma ~ N(P_mean, P_std^2) with P_mean = -1.2, P_std = 1.2), where
sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) = SNR_t^(-1/2) is the noise level of x_t / sqrt(alpha_bar_t).
With the v objective and no min-SNR weight this is EDM's training: their loss weight lambda(sigma) with
sigma_data = 1 makes the per-sigma weight in x_0 terms (1 + sigma^2) / sigma^2 = SNR_t + 1, which is what the
plain v-MSE puts on ||x_0 - x0_hat||^2.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from explorer.forward import q_sample
from explorer.parameterization import check_objective, target
from explorer.schedules import NoiseSchedule, at

T_SAMPLINGS = ("uniform", "log-normal")
EDM_P_MEAN, EDM_P_STD = -1.2, 1.2  # Karras et al. 2022, Table 1 (training)


def t_probabilities(schedule: NoiseSchedule, how: str = "uniform", p_mean: float = EDM_P_MEAN,
                    p_std: float = EDM_P_STD) -> torch.Tensor:
    """P(t) for t = 1..T (float64, length T, summing to 1): uniform, or "log-normal": the probability that
    ln sigma ~ N(p_mean, p_std^2) falls in t's bin, the bins meeting halfway between neighbouring ln sigma_t
    and the two tails going to t = 1 and t = T (see the module docstring)."""
    if how not in T_SAMPLINGS:
        raise ValueError(f"unknown t sampling {how!r}; allowed: {', '.join(T_SAMPLINGS)}")
    if how == "uniform":
        return torch.full((schedule.T,), 1 / schedule.T, dtype=torch.float64)
    if not p_std > 0:
        raise ValueError(f"p_std must be > 0, got {p_std!r}")
    log_sigma = -0.5 * schedule.log_snr[1:]  # ln sigma_t, increasing in t
    edges = (log_sigma[1:] + log_sigma[:-1]) / 2
    cdf = torch.distributions.Normal(torch.tensor(p_mean, dtype=torch.float64), p_std).cdf(edges)
    cdf = torch.cat([cdf.new_zeros(1), cdf, cdf.new_ones(1)])
    return cdf.diff()


def min_snr_weight(snr: torch.Tensor, objective: str, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weight for each objective (see module docstring); finite for every SNR >= 0."""
    check_objective(objective)
    if not gamma > 0:
        raise ValueError(f"min-SNR gamma must be > 0, got {gamma!r}")
    clipped = snr.clamp(max=gamma)  # min(SNR, gamma)
    if objective == "eps":
        return (gamma / snr).clamp(max=1.0)  # = min(SNR, gamma) / SNR, and 1 where SNR = 0
    if objective == "x0":
        return clipped
    return clipped / (snr + 1)


def draw_t_eps(schedule: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None = None,
               t_probs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of DDPM Algorithm 1 for a batch shaped like x0: t ~ Uniform{1..T} (line 2; or `t_probs`,
    see `t_probabilities`), then eps ~ N(0, I) (line 4), from `generator` on x0's device."""
    n = x0.shape[0]
    if t_probs is None:
        t = torch.randint(1, schedule.T + 1, (n,), generator=generator, device=x0.device)
    else:
        t = 1 + torch.multinomial(t_probs.to(x0.device), n, replacement=True, generator=generator)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return t, eps


def diffusion_loss(model: Callable, schedule: NoiseSchedule, x0: torch.Tensor, objective: str = "eps",
                   y: torch.Tensor | None = None, min_snr_gamma: float | None = None,
                   generator: torch.Generator | None = None, t_probs: torch.Tensor | None = None,
                   draws: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One Monte-Carlo estimate of the training loss on a batch (DDPM Algorithm 1):

        (t, eps) = draw_t_eps(...), x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
        loss = mean_batch[ w_t * mean_dims (target - model(x_t, t, y))^2 ]

    with w_t = 1 (L_simple) or the min-SNR-gamma weight. `model(x_t, t, y)` predicts `objective`.
    Random draws come from `generator` (on x0's device) so that training can be resumed exactly, or are given as
    `draws` = (t, eps) (a data-parallel rank passes its slice of the whole batch's draws).
    """
    check_objective(objective)
    t, eps = draws if draws is not None else draw_t_eps(schedule, x0, generator, t_probs)
    x_t = q_sample(schedule, x0, t, eps)  # line 5
    a, b = at(schedule.sqrt_alpha_bars, t, x0), at(schedule.sqrt_one_minus_alpha_bars, t, x0)
    out = model(x_t, t, y)
    per_example = (target(objective, x0, eps, a, b) - out).float().pow(2).flatten(1).mean(1)  # line 6
    if min_snr_gamma is not None:
        per_example = per_example * min_snr_weight(at(schedule.snr, t, per_example), objective, min_snr_gamma)
    return per_example.mean()
