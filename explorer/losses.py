"""Training losses: L_simple for the eps, x0 and v objectives (DDPM Algorithm 1; seed 001, sections 2.3 and
2.6), with optional min-SNR-gamma weighting (Hang et al. 2023, cited in seed 001).

Min-SNR-gamma weights the per-timestep loss so that its weight *in x_0 terms* is min(SNR_t, gamma). Since
||eps - eps_hat||^2 = SNR_t ||x_0 - x0_hat||^2 and ||v - v_hat||^2 = (SNR_t + 1) ||x_0 - x0_hat||^2, the weight
applied to each objective's own MSE is

    eps: min(SNR_t, gamma) / SNR_t      x0: min(SNR_t, gamma)      v: min(SNR_t, gamma) / (SNR_t + 1)

written so that each stays finite for SNR_t in [0, inf).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from explorer.forward import q_sample
from explorer.parameterization import check_objective, target
from explorer.schedules import NoiseSchedule, at


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


def diffusion_loss(model: Callable, schedule: NoiseSchedule, x0: torch.Tensor, objective: str = "eps",
                   y: torch.Tensor | None = None, min_snr_gamma: float | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One Monte-Carlo estimate of the training loss on a batch (DDPM Algorithm 1):

        t ~ Uniform{1..T}, eps ~ N(0, I), x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
        loss = mean_batch[ w_t * mean_dims (target - model(x_t, t, y))^2 ]

    with w_t = 1 (L_simple) or the min-SNR-gamma weight. `model(x_t, t, y)` predicts `objective`.
    Random draws come from `generator` (on x0's device) so that training can be resumed exactly.
    """
    check_objective(objective)
    n = x0.shape[0]
    t = torch.randint(1, schedule.T + 1, (n,), generator=generator, device=x0.device)  # Algorithm 1, line 2
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)  # line 4
    x_t = q_sample(schedule, x0, t, eps)  # line 5
    a, b = at(schedule.sqrt_alpha_bars, t, x0), at(schedule.sqrt_one_minus_alpha_bars, t, x0)
    out = model(x_t, t, y)
    per_example = (target(objective, x0, eps, a, b) - out).float().pow(2).flatten(1).mean(1)  # line 6
    if min_snr_gamma is not None:
        per_example = per_example * min_snr_weight(at(schedule.snr, t, per_example), objective, min_snr_gamma)
    return per_example.mean()
