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

Classifier guidance with scale s (seed 001, section 2.5; Dhariwal & Nichol 2021, eq. 14 and Algorithm 2) shifts
the noise prediction by the gradient of a noise-aware classifier p_phi(y | x_t, t) (explorer.noisy_classifier):
eps_hat' = eps_hat - s sqrt(1 - alpha_bar_t) grad_x log p_phi(y | x_t, t), i.e. the score plus s times the
classifier's; s = 0 is the unguided sampler. It is applied in the denoiser, after classifier-free guidance, so
every sampler gets it (for DDPM this is the eps form of Dhariwal & Nichol's section 4.2, not Algorithm 1's mean
shift; the two agree to first order in the step size). The gradient is taken with autograd switched on around the
classifier alone, so guided sampling runs under torch.inference_mode or no_grad like any other.

`invert` runs deterministic DDIM backwards, x_0 -> x_T (DDIM inversion), and `inversion_errors` measures how well
DDIM regenerates x_0 from it per number of steps; `sweep` runs one x_T through several samplers and step counts.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

import torch

from explorer.checks import choice, number, whole
from explorer.parameterization import (
    Prediction,
    check_objective,
    predictions,
    x0_from_eps,
)
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


def transitions(ts: list[int]) -> list[tuple[int, int]]:
    """(t, t_next) of each model call of a run over the decreasing timesteps `ts`: t_next is the next timestep,
    and 0 after the last (the run ends at x_0)."""
    return list(zip(ts, [*ts[1:], 0]))


def _randn(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def classifier_guided_eps(eps_hat: torch.Tensor, b_t: float, grad_log_p: torch.Tensor, scale: float) -> torch.Tensor:
    """eps_hat - s sqrt(1 - alpha_bar_t) grad_x log p_phi(y | x_t, t): the noise prediction of the score
    grad log p(x_t) + s grad log p_phi(y | x_t) (Dhariwal & Nichol 2021, eq. 14; seed 001, section 2.5)."""
    return eps_hat - scale * b_t * grad_log_p


def grad_log_p(classifier: Callable, x_t: torch.Tensor, t: int, y: torch.Tensor) -> torch.Tensor:
    """grad_x log p_phi(y | x_t, t), one row per sample, by autograd through the classifier's log-softmax.

    Samplers run under torch.inference_mode or no_grad; grad mode is switched back on around this forward
    only, on detached copies of x_t and y (inference tensors cannot be saved for backward), so nothing of the
    graph outlives the call. The batch's log-probabilities are summed: each sample's term depends on its own x_t
    alone (a classifier in eval mode mixes no samples), so the gradient of the sum is each sample's gradient.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x_t.detach().clone().requires_grad_(True)
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        log_p = torch.log_softmax(classifier(x, tt), dim=-1)  # (B, num_classes)
        (grad,) = torch.autograd.grad(log_p.gather(1, y.detach().clone()[:, None]).sum(), x)
    return grad


def _check_classifier(classifier, classifier_scale: float, schedule: NoiseSchedule, y: torch.Tensor | None) -> None:
    number("classifier_scale", classifier_scale, 0.0)
    if classifier is None:
        if classifier_scale != 0:
            raise ValueError("classifier_scale != 0 needs a noise-aware classifier (classifier=...)")
        return
    if getattr(classifier, "noise_aware", False) is not True:
        raise ValueError("classifier guidance needs a noise-aware classifier p_phi(y | x_t, t) "
                         "(explorer.noisy_classifier.load_noisy_classifier); got a "
                         f"{type(classifier).__name__}, which is not one (noise_aware is not True)")
    theirs = classifier.schedule
    if theirs.T != schedule.T or not torch.equal(theirs.alpha_bars, schedule.alpha_bars):
        raise ValueError(f"the classifier was trained on x_t of the {theirs.name} schedule with T = {theirs.T}; "
                         f"this sampler runs the {schedule.name} schedule with T = {schedule.T}")
    if y is None:
        raise ValueError("classifier guidance needs class labels y (the class that p_phi(y | x_t, t) steers toward)")
    if bool(((y < 0) | (y >= classifier.num_classes)).any()):
        raise ValueError(f"labels for the classifier must lie in 0..{classifier.num_classes - 1}, "
                         f"got {sorted(set(y.tolist()))[:10]}")


def make_denoiser(model: Callable, schedule: NoiseSchedule, objective: str, y: torch.Tensor | None = None,
                  guidance: float = 1.0, null_label: int | None = None, clip_x0: bool | float = False, *,
                  classifier: Callable | None = None, classifier_scale: float = 0.0
                  ) -> Callable[[torch.Tensor, int], Prediction]:
    """Wrap `model` as denoise(x_t, t) -> Prediction(eps, x0, v), applying classifier-free guidance, classifier
    guidance and clipping, so that samplers never branch on the objective or on guidance."""
    check_objective(objective)
    _check_classifier(classifier, classifier_scale, schedule, y)
    a_all, b_all = schedule.sqrt_alpha_bars.tolist(), schedule.sqrt_one_minus_alpha_bars.tolist()
    guided = y is not None and guidance != 1
    steered = classifier is not None and classifier_scale != 0
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
        if not steered:
            return predictions(objective, out, x, a_all[t], b_all[t], clip_x0=clip_x0)
        eps = classifier_guided_eps(predictions(objective, out, x, a_all[t], b_all[t]).eps, b_all[t],
                                    grad_log_p(classifier, x, t, y), classifier_scale)
        return predictions("eps", eps, x, a_all[t], b_all[t], clip_x0=clip_x0)

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
    pairs = transitions(ts)
    if method == "ddpm":
        return [(t, s, ddpm_sigma(ab, t, s, variance)) for t, s in pairs]
    if method == "ddim":
        return [(t, s, ddim_sigma(ab, t, s, eta)) for t, s in pairs]
    return [(t, s, 0.0) for t, s in pairs]


def ddpm(denoise, schedule: NoiseSchedule, x: torch.Tensor, ts: list[int], variance: str = "beta_tilde",
         generator: torch.Generator | None = None) -> Generator[Step, None, torch.Tensor]:
    """Ancestral sampling, DDPM Algorithm 2, respaced to the timesteps `ts`."""
    ab = schedule.alpha_bars.tolist()
    for i, (t, s) in enumerate(transitions(ts)):
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
    for i, (t, s) in enumerate(transitions(ts)):
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
    for i, (t, s) in enumerate(transitions(ts)):
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


def _check_labels(y: torch.Tensor | None, batch: int, guidance: float) -> None:
    number("guidance", guidance, 0.0)
    if y is not None and (y.ndim != 1 or y.shape[0] != batch):
        raise ValueError(f"y must hold one label per sample, shape ({batch},), got {tuple(y.shape)}")
    if guidance != 1 and y is None:
        raise ValueError("guidance != 1 needs class labels y (classifier-free guidance of a conditional model)")


def _check_clip(clip_x0: bool | float) -> None:
    if not isinstance(clip_x0, bool) and not clip_x0 > 0:
        raise ValueError(f"clip_x0 must be True, False or a bound > 0, got {clip_x0!r}")


def sample(model: Callable, schedule: NoiseSchedule, x_T: torch.Tensor, *, method: str = "ddim", steps: int = 50,
           eta: float = 0.0, objective: str = "eps", y: torch.Tensor | None = None, guidance: float = 1.0,
           spacing: str = "trailing", variance: str = "beta_tilde", clip_x0: bool | float = False,
           generator: torch.Generator | None = None, null_label: int | None = None,
           classifier: Callable | None = None, classifier_scale: float = 0.0
           ) -> Generator[Step, None, torch.Tensor]:
    """Run a sampler from x_T; a generator yielding one `Step` per model call and returning x_0.

    model(x_t, t, y) predicts `objective`; y is a LongTensor of class labels (B,) or None; guidance is the
    classifier-free scale w >= 0 (needs y and a model with `null_label`, or `null_label` given). `classifier`, a
    noise-aware classifier p_phi(y | x_t, t) on this schedule (explorer.noisy_classifier), with
    `classifier_scale` s >= 0 adds classifier guidance toward y (needs y; with guidance = 0 the model itself is
    run unconditionally, with its null class). `eta` is used by DDIM, `variance` ("beta" or "beta_tilde") by
    DDPM. `clip_x0` clamps x0_hat to [-1, 1] (True) or to [-c, c] for a number c > 0 (see
    `parameterization.predictions`). Options are validated here, before any model call; bad values raise
    ValueError naming the allowed ones.
    """
    _check_options(method, eta, variance)
    _check_labels(y, x_T.shape[0], guidance)
    _check_clip(clip_x0)
    ts = timesteps(schedule.T, steps, spacing)
    if null_label is None:
        null_label = getattr(model, "null_label", None)
    denoise = make_denoiser(model, schedule, objective, y, guidance, null_label, clip_x0, classifier=classifier,
                            classifier_scale=classifier_scale)
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


def ddim_inversion(denoise, schedule: NoiseSchedule, x: torch.Tensor, ts: list[int]
                   ) -> Generator[Step, None, torch.Tensor]:
    """Deterministic DDIM run backwards, x_0 -> x_{ts[0]} (Song et al. 2021, section 5.4: encoding x_0 to x_T by
    the reverse of their eq. 14; the "DDIM inversion" of Mokady et al. 2023, section 3). DDIM's step t -> s,

        x_s = a_s x0_hat(x_t, t) + b_s eps_hat(x_t, t)          (DDIM eq. 12 with sigma = 0)

    is undone by evaluating the model at the same t on the x_s at hand instead of the unknown x_t:

        eps = eps_hat(x_s, t),   x0_hat = (x_s - b_s eps) / a_s,   x_t = a_t x0_hat + b_t eps

    so the model is called at exactly the timesteps `ts` the sampler calls it at, in increasing order, and never
    at t = 0, where it was not trained (Null-text inversion's released code and diffusers' DDIMInverseScheduler
    evaluate it so too). The one approximation, eps_hat(x_t, t) ~ eps_hat(x_s, t), vanishes as steps shrink.
    Step.t is the timestep of Step.x_t (the step's start s, 0 first), Step.t_next the larger t it reaches.
    """
    ab = schedule.alpha_bars.tolist()
    for i, (t, s) in enumerate(reversed(transitions(ts))):  # the sampler's steps backwards: s = 0 first
        eps = denoise(x, t).eps
        x0_hat = x0_from_eps(x, eps, math.sqrt(ab[s]), math.sqrt(1 - ab[s]))  # seed 001, eq. 8, at level s
        x_next = math.sqrt(ab[t]) * x0_hat + math.sqrt(1 - ab[t]) * eps  # DDIM eq. 12, sigma = 0, from s up to t
        yield Step(i, len(ts), s, t, x, x0_hat, eps, 0.0, x_next)
        x = x_next
    return x


def invert(model: Callable, schedule: NoiseSchedule, x_0: torch.Tensor, *, steps: int = 50, objective: str = "eps",
           y: torch.Tensor | None = None, guidance: float = 1.0, spacing: str = "trailing",
           null_label: int | None = None) -> Generator[Step, None, torch.Tensor]:
    """DDIM inversion of x_0 (`ddim_inversion`): a generator yielding one `Step` per model call and returning the
    noise x_T (x at timesteps(T, steps, spacing)[0], which is T for "trailing" and "linspace") from which
    `sample(..., method="ddim", eta=0, steps=steps, spacing=spacing)` with the same model options regenerates
    about x_0. Options as in `sample`, validated before any model call."""
    _check_labels(y, x_0.shape[0], guidance)
    ts = timesteps(schedule.T, steps, spacing)
    if null_label is None:
        null_label = getattr(model, "null_label", None)
    return ddim_inversion(make_denoiser(model, schedule, objective, y, guidance, null_label), schedule, x_0, ts)


def _timed(steps: Generator[Step, None, torch.Tensor]) -> Generator[Step, None, tuple[torch.Tensor, int, float]]:
    """Yield a sampler's Steps; return (its result, the number of Steps = model calls, the seconds spent
    computing them, the consumer's time between Steps excluded)."""
    calls, seconds = 0, 0.0
    while True:
        start = time.perf_counter()
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value, calls, seconds + time.perf_counter() - start
        seconds += time.perf_counter() - start
        calls += 1
        yield step


INVERSION_STEPS = (5, 10, 20, 50, 100)


@dataclass(frozen=True)
class Reconstruction:
    """x_0 inverted to x_T with `steps` DDIM steps and regenerated from it with as many (eta 0)."""

    steps: int
    x_T: torch.Tensor  # the inverted noise
    x0: torch.Tensor  # the regenerated x_0
    rmse: torch.Tensor  # (B,) root-mean-square error of x0 against the input, per sample
    calls: int  # model calls of both runs
    seconds: float  # their compute time


def inversion_errors(model: Callable, schedule: NoiseSchedule, x_0: torch.Tensor,
                     step_counts: Iterable[int] = INVERSION_STEPS, *, objective: str = "eps",
                     y: torch.Tensor | None = None, guidance: float = 1.0, spacing: str = "trailing",
                     null_label: int | None = None, clip_x0: bool | float = False
                     ) -> Generator[Step | Reconstruction, None, list[Reconstruction]]:
    """For each step count N: invert x_0 with N DDIM steps, regenerate with N steps of DDIM eta 0 from the
    result, and measure the error. Yields every Step of the runs (a Stop flag or a progress bar sees each model
    call) and a `Reconstruction` as each N finishes; returns the list of them. `clip_x0` applies to the
    regeneration only (clipping x0_hat at t = T is no inverse of the inversion's last step). All options are
    validated before any model call."""
    options = dict(objective=objective, y=y, guidance=guidance, spacing=spacing, null_label=null_label)
    inversions = [(n, invert(model, schedule, x_0, steps=n, **options)) for n in step_counts]  # validates them
    _check_clip(clip_x0)
    done = []
    for n, inversion in inversions:
        x_T, calls_up, seconds_up = yield from _timed(inversion)
        x0, calls_down, seconds_down = yield from _timed(
            sample(model, schedule, x_T, method="ddim", eta=0.0, steps=n, clip_x0=clip_x0, **options))
        rmse = (x0 - x_0).flatten(1).pow(2).mean(1).sqrt()
        done.append(Reconstruction(n, x_T, x0, rmse, calls_up + calls_down, seconds_up + seconds_down))
        yield done[-1]
    return done


SWEEP_SAMPLERS = {  # the samplers of a steps sweep: label -> the options of `sample` that make it
    "ddpm": dict(method="ddpm"),
    "ddim eta 0": dict(method="ddim", eta=0.0),
    "ddim eta 1": dict(method="ddim", eta=1.0),
    "dpm-solver++": dict(method="dpm-solver++"),
}
SWEEP_STEPS = (5, 10, 20, 50, 1000)


@dataclass(frozen=True)
class SweepCell:
    """One cell of a steps sweep: the x_0 a sampler reached from the sweep's x_T in `steps` steps."""

    sampler: str  # a label of SWEEP_SAMPLERS
    steps: int
    x0: torch.Tensor
    calls: int  # model calls (Steps) it took
    seconds: float  # compute time, the consumer's time between Steps excluded


def sweep(model: Callable, schedule: NoiseSchedule, x_T: torch.Tensor, *,
          samplers: Iterable[str] = tuple(SWEEP_SAMPLERS), step_counts: Iterable[int] = SWEEP_STEPS, seed: int = 0,
          **options) -> Generator[Step | SweepCell, None, list[SweepCell]]:
    """The same x_T through each sampler of `samplers` (labels of SWEEP_SAMPLERS) at each of `step_counts`, the
    cheap columns first (all samplers at the first count, then the next count). Yields every Step (a Stop flag or
    a progress bar sees each model call) and a `SweepCell` as each cell finishes; returns the list of cells.

    `options` are the other keyword options of `sample` (objective, y, guidance, clip_x0, classifier, ...), the
    same for every cell. Each cell draws its noise from its own generator seeded with `seed`, so a cell equals
    `run(sample(model, schedule, x_T, **SWEEP_SAMPLERS[label], steps=n, generator=seeded, **options))` whatever
    ran before it. Everything is validated before the first model call.
    """
    fixed = sorted({"method", "eta", "steps", "generator"} & set(options))
    if fixed:
        raise ValueError(f"the sweep sets {', '.join(fixed)} itself; pass samplers and step_counts instead")
    seed = whole("seed", seed, 0)
    labels = [choice("sampler", label, SWEEP_SAMPLERS) for label in samplers]
    cells = [(label, n, sample(model, schedule, x_T, **SWEEP_SAMPLERS[label], steps=n,
                               generator=torch.Generator(x_T.device).manual_seed(seed), **options))
             for n in step_counts for label in labels]  # built (so validated) before any model call
    done = []
    for label, n, steps in cells:
        x0, calls, seconds = yield from _timed(steps)
        done.append(SweepCell(label, n, x0, calls, seconds))
        yield done[-1]
    return done
