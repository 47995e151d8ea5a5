"""The evidence lower bound (ELBO) of seed 001, eq. 3, for a trained model, in bits per dimension:

    L = L_T + sum_{t=2}^T L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) || N(0, I))                                 (closed form)
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))          (two Gaussians, seed 001 eq. 4-6)
    L_0     = -log p_theta(x_0 | x_1)   with a discretized Gaussian decoder (DDPM, section 3.3)

p_theta(x_{t-1} | x_t) = N(mu_t(x_t, x0_hat), sigma_t^2 I), with mu_t from eq. 4 evaluated at the model's
x0_hat (eq. 6) and sigma_t^2 = beta_tilde_t (eq. 5) or beta_t; the decoder uses sigma_1^2 = beta_1 (seed 001,
"the third term L_0"). Data are 8-bit images scaled to [-1, 1], so each pixel's bin has width 2/255.

Stratified t: with a stride k, t = 2..T is cut into n = ceil((T - 1) / k) spans, one t drawn uniformly in each
stands for its whole span (weight = its length), so the total stays unbiased for any cut (`STRATA`): "uniform" spans
of k timesteps, or "log" spans whose lengths grow geometrically, as many per decade of t, for a log t axis.

Note: seed 001 prints L_T as 1/2 (log(1 - ab) + n (1/(1 - ab) - 1) + ab/(1 - ab) E||X_0||^2), which is the
reverse divergence KL(N(0, I) || q(x_T | x_0)) (with n missing on the log). Eq. 3 defines L_T as
KL(q || p), which is what `prior_kl` computes; both vanish as alpha_bar_T -> 0.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from explorer.checks import choice, whole
from explorer.forward import q_posterior, q_sample
from explorer.parameterization import check_objective, predictions
from explorer.samplers import VARIANCES
from explorer.schedules import NoiseSchedule, at

STRATA = ("uniform", "log")


def normal_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """Elementwise KL(N(mean1, var1) || N(mean2, var2))."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def _log_diff_ndtr(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) without cancellation in either tail."""
    right = lower > 0  # in the right tail use Phi(u) - Phi(l) = Phi(-l) - Phi(-u)
    hi = torch.where(right, torch.special.log_ndtr(-lower), torch.special.log_ndtr(upper))
    lo = torch.where(right, torch.special.log_ndtr(-upper), torch.special.log_ndtr(lower))
    return hi + torch.log(-torch.expm1(lo - hi)).clamp(min=math.log(1e-12))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, std) -> torch.Tensor:
    """log P(x) per element, for x on the 256-level grid in [-1, 1] under N(mean, std^2) integrated over the
    pixel's bin [x - 1/255, x + 1/255]; the end bins extend to -inf and +inf (DDPM, section 3.3)."""
    upper = torch.where(x > 0.999, torch.full_like(x, math.inf), (x + 1 / 255 - mean) / std)
    lower = torch.where(x < -0.999, torch.full_like(x, -math.inf), (x - 1 / 255 - mean) / std)
    return _log_diff_ndtr(upper, lower)


def prior_kl(schedule: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per example, in nats, summed over dimensions."""
    ab = at(schedule.alpha_bars, schedule.T, x0)
    kl = normal_kl(ab.sqrt() * x0, 1 - ab, torch.zeros_like(x0), torch.ones_like(x0))
    return kl.flatten(1).sum(1)


@dataclass
class ELBO:
    """Per-timestep terms and totals of the ELBO, averaged over a batch, in bits per dimension; while it streams
    (`elbo_stream`), the terms evaluated so far, a prefix of the final ones."""

    t: torch.Tensor  # evaluated timesteps; t = 1 holds L_0, t >= 2 holds L_{t-1}
    terms_bpd: torch.Tensor  # the term at each evaluated t
    spans: torch.Tensor  # the number of timesteps each term stands for (its weight in total_bpd)
    prior_bpd: float  # L_T
    total_bpd: float  # L_T + sum of the terms so far (with a stride, each term weighted by the span it stands for)
    n: int = 0  # number of terms of the whole estimate: the result is complete when len(t) == n

    @property
    def complete(self) -> bool:
        return len(self.t) == self.n


def strata_spans(T: int, t_stride: int, strata: str = "uniform") -> list[tuple[int, int]]:
    """The n = ceil((T - 1) / t_stride) spans (first t, length) that cut t = 2..T, in order: "uniform", t_stride
    timesteps each (the last one shorter); "log", span i ending near 2 ((T + 1) / 2)^((i + 1) / n), each at least
    one timestep long."""
    choice("strata", strata, STRATA)
    n = -(-(T - 1) // t_stride)
    if strata == "uniform":
        starts = range(2, T + 1, t_stride)
        return [(start, min(t_stride, T + 1 - start)) for start in starts]
    edges = [2]
    for i in range(1, n):  # at least one t per span, and room left for the spans after it
        edges.append(min(max(edges[-1] + 1, round(2 * ((T + 1) / 2) ** (i / n))), T + 1 - (n - i)))
    edges.append(T + 1)
    return [(a, b - a) for a, b in zip(edges[:n], edges[1:])]


def elbo_stream(model: Callable, schedule: NoiseSchedule, x0: torch.Tensor, objective: str = "eps",
                y: torch.Tensor | None = None, variance: str = "beta_tilde", t_stride: int = 1,
                generator: torch.Generator | None = None, strata: str = "uniform") -> Iterator[ELBO]:
    """`elbo` as a generator: one partial ELBO per model call (timestep evaluated), so a UI can draw the curve as
    it fills and a progress bar (len(t) of n); the last one is the complete estimate `elbo` returns. The options
    are validated here, before any model call."""
    check_objective(objective)
    choice("variance", variance, VARIANCES)
    t_stride = whole("t_stride", t_stride, 1, schedule.T)
    choice("strata", strata, STRATA)
    return _elbo_terms(model, schedule, x0, objective, y, variance, t_stride, generator, strata)


@torch.no_grad()
def _elbo_terms(model, schedule, x0, objective, y, variance, t_stride, generator, strata) -> Iterator[ELBO]:
    dims = x0[0].numel()
    to_bpd = 1 / (dims * math.log(2))
    cut = strata_spans(schedule.T, t_stride, strata)
    starts, spans = [start for start, _ in cut], [span for _, span in cut]
    if t_stride > 1:  # one t drawn uniformly within each span
        u = torch.rand(len(starts), generator=generator, device=generator.device if generator else None).tolist()
        starts = [start + int(ui * span) for start, ui, span in zip(starts, u, spans)]
    ts, spans = [1, *starts], torch.tensor([1, *spans], dtype=torch.float64)
    prior = prior_kl(schedule, x0).mean().item() * to_bpd
    terms = []
    sigma2 = schedule.betas if variance == "beta" else schedule.beta_tildes
    for t in ts:
        tt = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = q_sample(schedule, x0, tt, eps)
        a, b = at(schedule.sqrt_alpha_bars, tt, x0), at(schedule.sqrt_one_minus_alpha_bars, tt, x0)
        x0_hat = predictions(objective, model(x_t, tt, y), x_t, a, b).x0
        mu_theta, _ = q_posterior(schedule, x0_hat, x_t, tt)  # seed 001, eq. 6
        if t == 1:  # L_0: discretized Gaussian decoder with sigma_1^2 = beta_1; mu_1 = x0_hat
            nll = -discretized_gaussian_log_likelihood(x0, mu_theta, math.sqrt(schedule.betas[1].item()))
            terms.append(nll.flatten(1).sum(1).mean())
        else:  # L_{t-1}: KL between q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t)
            mu_q, var_q = q_posterior(schedule, x0, x_t, tt)
            kl = normal_kl(mu_q, var_q, mu_theta, at(sigma2, tt, x0))
            terms.append(kl.flatten(1).sum(1).mean())
        k = len(terms)
        terms_bpd = torch.stack(terms).double().cpu() * to_bpd
        total = prior + float((terms_bpd * spans[:k]).sum())
        yield ELBO(t=torch.tensor(ts[:k]), terms_bpd=terms_bpd, spans=spans[:k], prior_bpd=prior, total_bpd=total,
                   n=len(ts))


def elbo(model: Callable, schedule: NoiseSchedule, x0: torch.Tensor, objective: str = "eps",
         y: torch.Tensor | None = None, variance: str = "beta_tilde", t_stride: int = 1,
         generator: torch.Generator | None = None, strata: str = "uniform") -> ELBO:
    """Estimate the ELBO (seed 001, eq. 3) of `model` on a batch of 8-bit images x0 in [-1, 1].

    Each term is one Monte-Carlo draw of x_t per example. With t_stride = k, t = 2..T is cut into spans of k
    timesteps and one t drawn uniformly in each span stands for the whole span (stratified sampling: T / k model
    calls instead of T, and the total stays an unbiased estimate); strata="log" cuts as many spans with lengths
    growing geometrically in t (`strata_spans`). Drains `elbo_stream`.
    """
    for result in elbo_stream(model, schedule, x0, objective, y, variance, t_stride, generator, strata):
        pass
    return result
