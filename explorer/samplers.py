"""Reverse-process samplers, each a generator that yields one `Step` per model call and returns x_0.

    >>> steps = sample(model, schedule, torch.randn(16, 1, 28, 28), method="ddim", steps=50)
    >>> for step in steps: ...            # step.t, step.x_t, step.x0_hat, step.eps_hat, step.sigma, step.x_next

Methods (all move from t to the next timestep s < t of a decreasing sequence ending at 0):
- "ddpm": ancestral sampling, DDPM Algorithm 2 (seed 001, section 2.3). With fewer than T steps the chain is
  respaced: the step t -> s uses beta_{t,s} = 1 - alpha_bar_t / alpha_bar_s, the exact q(x_s | x_t, x_0) of the
  sub-sequence (improved-diffusion's respacing); sigma^2 = beta_{t,s} ("beta") or beta_tilde ("beta_tilde").
- "ddim": DDIM (seed 001, section 2.4; Song et al. 2021, eq. 12 and 16) with eta in [0, 1]; eta = 1 over all
  T steps is DDPM with sigma^2 = beta_tilde, eta = 0 is deterministic.
- "dpm-solver++": DPM-Solver++(2M), the second-order multistep solver in x_0 of Lu et al. (2022),
  Algorithm 2, for good samples in 10-20 model calls.

`plan(schedule, method, steps, eta, spacing, variance)` lists (t, t_next, sigma) for every step without running
a model (for plots); the samplers take their sigma from the same functions, `ddpm_sigma` and `ddim_sigma`.

The model contract is `model(x_t, t, y) -> prediction` in `objective` ("eps", "x0", "v"), with t an integer
tensor of shape (B,) in 1..T and y class labels or None. Classifier-free guidance with scale w combines the
conditional and null-class outputs as out = out_null + w (out_cond - out_null), both in one batched call:
w = 1 is the plain conditional model, w = 0 the unconditional one, w > 1 pushes further toward the class.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch

from explorer.checks import choice, number, whole
from explorer.parameterization import Prediction, check_objective, predictions
from explorer.schedules import NoiseSchedule

METHODS = ("ddpm", "ddim", "dpm-solver++")
SPACINGS = ("trailing", "linspace", "leading")
VARIANCES = ("beta", "beta_tilde")


@dataclass(frozen=True)
class Step:
    """One model call of a sampler: the input x_t at timestep t, the model's guesses x0_hat and eps_hat,
    the noise scale sigma used for this step, and x_next, the sample at the next timestep t_next."""

    i: int  # 0-based index of this model call
    n: int  # number of model calls in the run
    t: int
    t_next: int
    x_t: torch.Tensor
    x0_hat: torch.Tensor
    eps_hat: torch.Tensor
    sigma: float
    x_next: torch.Tensor


def timesteps(T: int, steps: int, spacing: str = "trailing") -> list[int]:
    """The decreasing timesteps t_1 > ... > t_N at which the model is called (N = steps); the last step then
    goes to t = 0.

    - "trailing" (default): round(T - i T / N), i = 0..N-1; starts at T, evenly spaced, ends near T / N.
    - "linspace": N points evenly spaced from T down to 1, rounded.
    - "leading": 1 + i floor(T / N) in reverse, as in DDIM's original code; it never starts at T, so x_T
      drawn from N(0, I) meets a model that expects less noise (kept for comparison).
    """
    choice("spacing", spacing, SPACINGS)
    steps = whole("steps", steps, 1, T)
    if spacing == "trailing":
        ts = [round(T - i * T / steps) for i in range(steps)]
    elif spacing == "linspace":
        ts = [round(T - i * (T - 1) / (steps - 1)) for i in range(steps)] if steps > 1 else [T]
    else:
        ts = [1 + i * (T // steps) for i in reversed(range(steps))]
    return ts


def _randn(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def make_denoiser(model: Callable, schedule: NoiseSchedule, objective: str, y: torch.Tensor | None = None,
                  guidance: float = 1.0, null_label: int | None = None,
                  clip_x0: bool | float = False) -> Callable[[torch.Tensor, int], Prediction]:
    """Wrap `model` as denoise(x_t, t) -> Prediction(eps, x0, v), applying classifier-free guidance and
    clipping, so that samplers never branch on the objective or on guidance."""
    check_objective(objective)
    a_all, b_all = schedule.sqrt_alpha_bars.tolist(), schedule.sqrt_one_minus_alpha_bars.tolist()
    guided = y is not None and guidance != 1
    if guided and null_label is None:
        raise ValueError("classifier-free guidance needs a model with a null class (model.null_label)")

    def denoise(x: torch.Tensor, t: int) -> Prediction:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        if not guided:
            out = model(x, tt, y)
        elif guidance == 0:
            out = model(x, tt, torch.full_like(y, null_label))
        else:  # one batched call for the conditional and the null-class halves
            both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, torch.full_like(y, null_label)]))
            cond, null = both.chunk(2)
            out = null + guidance * (cond - null)
        return predictions(objective, out, x, a_all[t], b_all[t], clip_x0=clip_x0)

    return denoise


def ddpm_sigma(alpha_bars: list[float], t: int, s: int, variance: str = "beta_tilde") -> float:
    """The noise scale of DDPM's step t -> s: sigma^2 = beta_{t,s} = 1 - alpha_bar_t / alpha_bar_s ("beta") or
    beta_tilde = (1 - alpha_bar_s) / (1 - alpha_bar_t) beta_{t,s} ("beta_tilde") (seed 001, eq. 5, with t - 1
    replaced by s); 0 on the last step to s = 0 (DDPM Algorithm 2, line 6). alpha_bars is indexed by t."""
    beta_ts = 1 - alpha_bars[t] / alpha_bars[s]  # beta_t when s = t - 1
    var = beta_ts if variance == "beta" else (1 - alpha_bars[s]) / (1 - alpha_bars[t]) * beta_ts
    return math.sqrt(var) if s > 0 else 0.0


def ddim_sigma(alpha_bars: list[float], t: int, s: int, eta: float) -> float:
    """The noise scale of DDIM's step t -> s: eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t))
    sqrt(1 - alpha_bar_t / alpha_bar_s) (DDIM eq. 16); 0 for eta = 0 and on the last step to s = 0."""
    return eta * math.sqrt((1 - alpha_bars[s]) / (1 - alpha_bars[t]) * (1 - alpha_bars[t] / alpha_bars[s]))


def _check_options(method: str, eta: float, variance: str) -> None:
    choice("sampler", method, METHODS)
    choice("variance", variance, VARIANCES)
    number("eta", eta, 0.0, 1.0)


def plan(schedule: NoiseSchedule, method: str = "ddim", steps: int = 50, eta: float = 0.0,
           spacing: str = "trailing", variance: str = "beta_tilde") -> list[tuple[int, int, float]]:
    """The steps a sampler would take, without running a model: (t, t_next, sigma) per model call, sigma being
    the scale of the fresh noise added on the step t -> t_next (the `Step.sigma` the sampler yields). DDPM and
    DDIM take it from `ddpm_sigma` / `ddim_sigma`, as their loops do; DPM-Solver++ adds no noise (0)."""
    _check_options(method, eta, variance)
    ts = timesteps(schedule.T, steps, spacing)
    ab = schedule.alpha_bars.tolist()
    pairs = list(zip(ts, [*ts[1:], 0]))
    if method == "ddpm":
        return [(t, s, ddpm_sigma(ab, t, s, variance)) for t, s in pairs]
    if method == "ddim":
        return [(t, s, ddim_sigma(ab, t, s, eta)) for t, s in pairs]
    return [(t, s, 0.0) for t, s in pairs]


def ddpm(denoise, schedule: NoiseSchedule, x: torch.Tensor, ts: list[int], variance: str = "beta_tilde",
         generator: torch.Generator | None = None) -> Generator[Step, None, torch.Tensor]:
    """Ancestral sampling, DDPM Algorithm 2, respaced to the timesteps `ts`."""
    ab = schedule.alpha_bars.tolist()
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        pred = denoise(x, t)
        beta_ts = 1 - ab[t] / ab[s]  # beta_t when s = t - 1
        # posterior mean mu_t(x_t, x0_hat), seed 001 eq. 4 and eq. 6, with t - 1 replaced by s
        mean = (math.sqrt(ab[s]) * beta_ts / (1 - ab[t])) * pred.x0 \
            + (math.sqrt(1 - beta_ts) * (1 - ab[s]) / (1 - ab[t])) * x
        sigma = ddpm_sigma(ab, t, s, variance)  # seed 001, eq. 5; 0 on the last step (Algorithm 2, line 6)
        x_next = mean + sigma * _randn(x, generator) if sigma > 0 else mean  # Algorithm 2, line 8
        yield Step(i, len(ts), t, s, x, pred.x0, pred.eps, sigma, x_next)
        x = x_next
    return x


def ddim(denoise, schedule: NoiseSchedule, x: torch.Tensor, ts: list[int], eta: float = 0.0,
         generator: torch.Generator | None = None) -> Generator[Step, None, torch.Tensor]:
    """DDIM: x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps_hat + sigma z (DDIM eq. 12;
    seed 001, section 2.4), with sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s)
    (DDIM eq. 16)."""
    ab = schedule.alpha_bars.tolist()
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        pred = denoise(x, t)
        sigma = ddim_sigma(ab, t, s, eta)  # DDIM eq. 16
        direction = math.sqrt(max(1 - ab[s] - sigma ** 2, 0.0))  # "direction pointing to x_t", DDIM eq. 12
        x_next = math.sqrt(ab[s]) * pred.x0 + direction * pred.eps
        if sigma > 0:
            x_next = x_next + sigma * _randn(x, generator)
        yield Step(i, len(ts), t, s, x, pred.x0, pred.eps, sigma, x_next)
        x = x_next
    return x


def dpm_solver_pp(denoise, schedule: NoiseSchedule, x: torch.Tensor, ts: list[int]
                  ) -> Generator[Step, None, torch.Tensor]:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in the half log-SNR lambda_t = log(a_t / b_t):

        h = lambda_s - lambda_t,  r = h_prev / h,  D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_prev
        x_s = (b_s / b_t) x_t - a_s (e^{-h} - 1) D

    The first step uses D = x0_hat (first order). The last step to t = 0 (a_0 = 1, b_0 = 0, h = inf) is the
    first-order limit x_0 = x0_hat, as in DPM-Solver's "lower order final".
    """
    a, b = schedule.sqrt_alpha_bars.tolist(), schedule.sqrt_one_minus_alpha_bars.tolist()
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        s = ts[i + 1] if i + 1 < len(ts) else 0
        pred = denoise(x, t)
        if s == 0:
            x_next, h = pred.x0, None
        else:
            h = math.log(a[s] / b[s]) - math.log(a[t] / b[t])
            if x0_prev is None:
                d = pred.x0
            else:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * pred.x0 - (1 / (2 * r)) * x0_prev
            x_next = (b[s] / b[t]) * x - (a[s] * math.expm1(-h)) * d
        yield Step(i, len(ts), t, s, x, pred.x0, pred.eps, 0.0, x_next)
        x, x0_prev, h_prev = x_next, pred.x0, h
    return x


def sample(model: Callable, schedule: NoiseSchedule, x_T: torch.Tensor, *, method: str = "ddim", steps: int = 50,
           eta: float = 0.0, objective: str = "eps", y: torch.Tensor | None = None, guidance: float = 1.0,
           spacing: str = "trailing", variance: str = "beta_tilde", clip_x0: bool | float = False,
           generator: torch.Generator | None = None, null_label: int | None = None
           ) -> Generator[Step, None, torch.Tensor]:
    """Run a sampler from x_T; a generator yielding one `Step` per model call and returning x_0.

    model(x_t, t, y) predicts `objective`; y is a LongTensor of class labels (B,) or None; guidance is the
    classifier-free scale w >= 0 (needs y and a model with `null_label`, or `null_label` given). `eta` is
    used by DDIM, `variance` ("beta" or "beta_tilde") by DDPM. `clip_x0` clamps x0_hat to [-1, 1] (True) or to
    [-c, c] for a number c > 0 (see `parameterization.predictions`). Options are validated here, before any model
    call; bad values raise ValueError naming the allowed ones.
    """
    _check_options(method, eta, variance)
    number("guidance", guidance, 0.0)
    if y is not None and (y.ndim != 1 or y.shape[0] != x_T.shape[0]):
        raise ValueError(f"y must hold one label per sample, shape ({x_T.shape[0]},), got {tuple(y.shape)}")
    if not isinstance(clip_x0, bool) and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be True, False or a bound > 0, got {clip_x0!r}")
    if guidance != 1 and y is None:
        raise ValueError("guidance != 1 needs class labels y (classifier-free guidance of a conditional model)")
    ts = timesteps(schedule.T, steps, spacing)
    if null_label is None:
        null_label = getattr(model, "null_label", None)
    denoise = make_denoiser(model, schedule, objective, y, guidance, null_label, clip_x0)
    if method == "ddpm":
        return ddpm(denoise, schedule, x_T, ts, variance, generator)
    if method == "ddim":
        return ddim(denoise, schedule, x_T, ts, eta, generator)
    return dpm_solver_pp(denoise, schedule, x_T, ts)


def run(steps: Generator[Step, None, torch.Tensor]) -> torch.Tensor:
    """Exhaust a sampler generator and return its final x_0."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
