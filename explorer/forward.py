"""The forward (noising) process q and its posterior.

- `q_sample`: the closed form q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), drawn by the
  reparameterization x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (seed 001, eq. 1; seed 000).
- `q_chain`: the Markov chain it summarises, x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps_t
  (seed 001, section 2); the two agree in distribution because independent Gaussians merge (seed 002).
  `q_chain_walk` is the same chain as a generator that yields every x_s and can resume from any (s, x_s) with
  the generator state saved there; q_chain drains it.
- `q_posterior`: q(x_{t-1} | x_t, x_0) = N(mu_t(x_t, x_0), beta_tilde_t I) (seed 001, eq. 4).
- `q_marginal_mixture`, `mixture_log_prob_grid`: the exact marginal q(x_t) of Gaussian-mixture data (the 2D toys'
  `explorer.data.toy_mixture`) and its log-density, for contours of the flow of distributions (seed 003).

t is an int or an integer tensor of shape (B,) in 0..T (0 returns x_0 itself).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator

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


def q_chain_walk(schedule: NoiseSchedule, x: torch.Tensor, start: int = 0, generator: torch.Generator | None = None,
                 noises: Iterable[torch.Tensor] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """The Markov chain continued from x = x_start: yields (s, x_s) for s = start + 1, ..., T (or until `noises`
    runs out), x_s = sqrt(alpha_s) x_{s-1} + sqrt(beta_s) eps_s (seed 001, section 2.1).

    eps_s is the next of `noises`, else one fresh N(0, I) draw per step from `generator`, made just before x_s,
    so after x_s is yielded the generator holds the state that continues the same chain: saving (s, x_s,
    generator.get_state()) and walking again from there with a generator set to that state gives the same draws.
    """
    _check_t(schedule, start)
    if noises is None:
        noises = (torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) for _ in itertools.count())
    for s, eps in zip(range(start + 1, schedule.T + 1), noises):  # zip stops at T before asking for another draw
        x = q_step(schedule, x, s, eps)
        yield s, x


def q_chain(schedule: NoiseSchedule, x0: torch.Tensor, t: int, generator: torch.Generator | None = None,
            noises: torch.Tensor | None = None) -> torch.Tensor:
    """Iterate the Markov chain from x_0 up to x_t (q_chain_walk), one fresh eps_s ~ N(0, I) per step s = 1..t.

    `noises` (shape (t, *x0.shape)) fixes the per-step draws; otherwise they come from `generator`, one per step.
    The result has the law of `q_sample(schedule, x0, t, eps)` but is a different draw.
    """
    _check_t(schedule, t)
    if noises is not None and noises.shape != (int(t), *x0.shape):
        raise ValueError(f"noises must have shape {(int(t), *x0.shape)}, got {tuple(noises.shape)}")
    x = x0
    for _, x in itertools.islice(q_chain_walk(schedule, x0, 0, generator, noises), int(t)):
        pass
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


def q_marginal_mixture(schedule: NoiseSchedule, t: int, means: torch.Tensor, stds: torch.Tensor,
                       weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The marginal q(x_t) of Gaussian-mixture data, itself a Gaussian mixture (seed 003, "flow of distributions").

    q(x_t) = int q(x_t | x_0) q(x_0) dx_0 convolves the data density, dilated by sqrt(alpha_bar_t), with
    N(0, (1 - alpha_bar_t) I) (seed 001, eq. 1); component j of the data, N(m_j, diag(s_j^2)), becomes

        N(sqrt(alpha_bar_t) m_j, diag(alpha_bar_t s_j^2 + 1 - alpha_bar_t))

    and the weights stay. means (K, D), stds (K, D) or (K,), weights (K,); returns (means_t, stds_t, weights)
    in the dtype of `means`, stds_t shaped like `stds`. t = 0 gives the data mixture back, t = T nearly N(0, I).
    """
    _check_t(schedule, t)
    ab = float(schedule.alpha_bars[int(t)])
    return ab ** 0.5 * means, (ab * stds ** 2 + (1 - ab)).sqrt(), weights


def mixture_log_prob_grid(xs: torch.Tensor, ys: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                          weights: torch.Tensor) -> torch.Tensor:
    """log p on the grid xs x ys of a 2D diagonal Gaussian mixture p = sum_j w_j N(m_j, diag(s_j^2)).

    xs (Nx,), ys (Ny,); means (K, 2), stds (K, 2) or (K,), weights (K,) summing to 1. Returns (Ny, Nx) float64,
    row b and column a holding log p(xs[a], ys[b]) (the layout of an image or a Plotly contour's z).

    Each component factorises over the two coordinates, N(x; m_j, s_j^2) = phi_j1(x_1) phi_j2(x_2), so the
    density on the grid is one matmul, p[b, a] = sum_j phi_j2(ys_b) w_j phi_j1(xs_a): O(K (Nx + Ny) + K Nx Ny)
    multiply-adds and no N x K exponentials. Each phi is scaled by its largest grid value before exp, so in
    float64 only log-densities more than about 700 below the grid's maximum underflow (to -inf).
    """
    if means.ndim != 2 or means.shape[1] != 2 or weights.shape != means.shape[:1]:
        raise ValueError(f"means must be (K, 2) and weights (K,), got {tuple(means.shape)} and {tuple(weights.shape)}")
    f64 = {"dtype": torch.float64, "device": means.device}
    means, stds, weights = means.to(**f64), stds.to(**f64), weights.to(**f64)
    stds = stds[:, None].expand_as(means) if stds.ndim == 1 else stds

    def log_phi(u: torch.Tensor, d: int) -> torch.Tensor:  # (K, len(u)): log N(u; m_jd, s_jd^2)
        z = (u.to(**f64)[None, :] - means[:, d, None]) / stds[:, d, None]
        return -0.5 * z.square() - stds[:, d, None].log() - 0.5 * math.log(2 * math.pi)

    l1, l2 = log_phi(xs, 0), log_phi(ys, 1)
    c1, c2 = l1.amax(1, keepdim=True), l2.amax(1, keepdim=True)  # (K, 1): each factor's largest value
    c = weights.log()[:, None] + c1 + c2
    top = c.max()
    p = (l2 - c2).exp().T @ ((c - top).exp() * (l1 - c1).exp())  # (Ny, K) @ (K, Nx)
    return top + p.log()
