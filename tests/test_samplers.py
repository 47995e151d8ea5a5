"""Samplers, checked against oracles: the exact denoiser of Gaussian data, DDIM(eta=1) = DDPM(beta_tilde),
timestep sequences, guidance arithmetic and input validation; DDIM inversion (exact for a model whose eps does not
depend on x_t, first-order for Gaussian data, where the probability-flow map is known); the steps sweep."""
import math

import pytest
import torch

from explorer.parameterization import target
from explorer.samplers import (
    METHODS,
    SPACINGS,
    SWEEP_SAMPLERS,
    SWEEP_STEPS,
    VARIANCES,
    Reconstruction,
    Step,
    SweepCell,
    inversion_errors,
    invert,
    plan,
    run,
    sample,
    sweep,
    timesteps,
)
from explorer.schedules import make_schedule

S = 0.5  # data distribution N(0, S^2 I)


def gaussian_oracle(schedule, objective="eps"):
    """The exact predictor for data N(0, S^2 I): eps*(x_t, t) = sqrt(1 - ab) x_t / (ab S^2 + 1 - ab) (DESIGN.md),
    expressed in the requested objective through x0* = sqrt(ab) S^2 x_t / (ab S^2 + 1 - ab)."""
    ab_all = schedule.alpha_bars

    def model(x, t, y=None):
        ab = ab_all[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
        var = ab * S ** 2 + 1 - ab
        eps, x0 = (1 - ab).sqrt() * x / var, ab.sqrt() * S ** 2 * x / var
        return target(objective, x0, eps, ab.sqrt(), (1 - ab).sqrt())

    return model


def exact_final_std(schedule, t_last):
    """Std of the output of an exact probability-flow solver that stops at t_last and returns x0* there:
    x_T ~ N(0, 1) maps linearly onto x_{t_last} with std sqrt(v_last / v_T), then x0* = sqrt(ab) S^2 x / v_last."""
    ab_last, ab_T = schedule.alpha_bars[t_last].item(), schedule.alpha_bars[-1].item()
    v_last, v_T = ab_last * S ** 2 + 1 - ab_last, ab_T * S ** 2 + 1 - ab_T
    return math.sqrt(ab_last) * S ** 2 / math.sqrt(v_last * v_T)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_gaussian_oracle_ddpm_1000(name, objective):
    s = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(0)
    x = run(sample(gaussian_oracle(s, objective), s, torch.randn(20000, 2, generator=g), method="ddpm",
                   steps=1000, objective=objective, generator=g))
    assert x.std().item() == pytest.approx(S, rel=0.02)
    assert abs(x.mean().item()) < 0.02


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_gaussian_oracle_few_step(name, objective):
    s = make_schedule(name, 1000)
    x_T = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    oracle = gaussian_oracle(s, objective)
    ddim = run(sample(oracle, s, x_T, method="ddim", steps=50, objective=objective))
    # DDIM is first order: within 6% of S at 50 steps (its exact-solver value is within 1.5% of S)
    assert exact_final_std(s, 20) == pytest.approx(S, rel=0.015)
    assert ddim.std().item() == pytest.approx(S, rel=0.06)
    # DPM-Solver++(2M) is second order: 10 calls land close to an exact ODE solve to its last timestep
    # (within 1% for cosine, 3% for linear), and far closer than DDIM with the same 10 calls
    exact = exact_final_std(s, 100)
    dpm = run(sample(oracle, s, x_T, method="dpm-solver++", steps=10, objective=objective))
    ddim10 = run(sample(oracle, s, x_T, method="ddim", steps=10, objective=objective))
    assert dpm.std().item() == pytest.approx(exact, rel=0.01 if name == "cosine" else 0.03)
    assert abs(dpm.std().item() - exact) < 0.5 * abs(ddim10.std().item() - exact)
    if name == "cosine":
        assert dpm.std().item() == pytest.approx(S, rel=0.06)


def test_ddim_eta1_equals_ddpm_beta_tilde_draw_for_draw():
    s = make_schedule("cosine", 100)
    oracle = gaussian_oracle(s)
    x_T = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = list(sample(oracle, s, x_T, method="ddim", steps=100, eta=1.0, generator=torch.Generator().manual_seed(3)))
    b = list(sample(oracle, s, x_T, method="ddpm", steps=100, variance="beta_tilde", generator=torch.Generator().manual_seed(3)))
    assert len(a) == len(b) == 100
    for sa, sb in zip(a, b):
        assert sa.t == sb.t and sa.sigma == pytest.approx(sb.sigma, rel=1e-9, abs=1e-12)
        assert torch.allclose(sa.x_next, sb.x_next, atol=1e-10)


def test_ddim_eta0_is_deterministic_and_eta_changes_result():
    s = make_schedule("linear", 1000)
    oracle = gaussian_oracle(s)
    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(4))
    one = run(sample(oracle, s, x_T, method="ddim", steps=20, generator=torch.Generator().manual_seed(5)))
    two = run(sample(oracle, s, x_T, method="ddim", steps=20, generator=torch.Generator().manual_seed(6)))
    assert torch.equal(one, two)
    noisy = run(sample(oracle, s, x_T, method="ddim", steps=20, eta=0.5, generator=torch.Generator().manual_seed(5)))
    assert not torch.allclose(one, noisy)


@pytest.mark.parametrize("method", METHODS)
def test_steps_yield_records(method):
    s = make_schedule("cosine", 1000)
    x_T = torch.randn(3, 1, 4, 4)
    steps = list(sample(gaussian_oracle(s), s, x_T, method=method, steps=7, generator=torch.Generator().manual_seed(0)))
    assert [st.i for st in steps] == list(range(7)) and all(st.n == 7 for st in steps)
    assert steps[0].t == 1000 and steps[-1].t_next == 0
    assert torch.equal(steps[0].x_t, x_T)
    for prev, nxt in zip(steps, steps[1:]):
        assert prev.t_next == nxt.t and torch.equal(prev.x_next, nxt.x_t)
    for st in steps:
        assert st.x0_hat.shape == st.eps_hat.shape == st.x_next.shape == x_T.shape
    assert steps[-1].sigma == 0.0  # no noise is added on the step to x_0 (Algorithm 2, line 6)


def test_generator_returns_final_sample():
    s = make_schedule("cosine", 100)
    x_T = torch.randn(2, 2)
    last = list(sample(gaussian_oracle(s), s, x_T, method="ddpm", steps=10, generator=torch.Generator().manual_seed(0)))[-1]
    final = run(sample(gaussian_oracle(s), s, x_T, method="ddpm", steps=10, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(final, last.x_next)


@pytest.mark.parametrize("T", [10, 100, 1000, 4000])
@pytest.mark.parametrize("steps", [1, 2, 3, 7, 10, 50, 999, 1000])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_timestep_sequences(T, steps, spacing):
    if steps > T:
        with pytest.raises(ValueError, match=rf"steps must be a whole number from 1 to {T}"):
            timesteps(T, steps, spacing)
        return
    ts = timesteps(T, steps, spacing)
    assert len(ts) == steps  # one model call per step
    assert all(a > b for a, b in zip(ts, ts[1:]))  # strictly decreasing
    assert 1 <= ts[-1] and ts[0] <= T
    if spacing in ("trailing", "linspace"):
        assert ts[0] == T
    if spacing == "linspace":
        assert ts[-1] == (1 if steps > 1 else T)
    if steps == T:
        assert ts == list(range(T, 0, -1))


def test_spacing_examples():
    assert timesteps(1000, 4, "trailing") == [1000, 750, 500, 250]
    assert timesteps(1000, 4, "linspace") == [1000, 667, 334, 1]
    assert timesteps(1000, 4, "leading") == [751, 501, 251, 1]


def test_guidance_combines_conditional_and_null_outputs():
    s = make_schedule("cosine", 100)
    calls = []

    def model(x, t, y):  # output = label value, so guidance arithmetic is visible
        calls.append(x.shape[0])
        return y.to(x.dtype).view(-1, 1).expand_as(x).clone()

    model.null_label = 10
    y = torch.tensor([2, 4])
    steps = list(sample(model, s, torch.zeros(2, 3), method="ddim", steps=2, objective="eps", y=y, guidance=3.0))
    # eps = null + w (cond - null) = 10 + 3 (y - 10)
    assert torch.allclose(steps[0].eps_hat[:, 0], torch.tensor([-14.0, -8.0]))
    assert calls == [4, 4]  # conditional and null passes batched together
    calls.clear()
    steps = list(sample(model, s, torch.zeros(2, 3), method="ddim", steps=2, y=y, guidance=0.0))
    assert torch.allclose(steps[0].eps_hat[:, 0], torch.tensor([10.0, 10.0])) and calls == [2, 2]


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="euler"), "allowed: ddpm, ddim, dpm-solver"),
    (dict(objective="score"), "allowed: eps, x0, v"),
    (dict(spacing="uniform"), "allowed: trailing, linspace, leading"),
    (dict(steps=0), r"steps must be a whole number from 1 to 100"),
    (dict(steps=101), "from 1 to 100"),
    (dict(eta=1.5), r"eta must be a finite number in \[0, 1\]"),
    (dict(eta=-0.1), r"\[0, 1\]"),
    (dict(variance="learned"), "allowed: beta, beta_tilde"),
    (dict(guidance=-1.0), "guidance must be"),
    (dict(guidance=3.0), "needs class labels"),
    (dict(guidance=3.0, y=torch.tensor([1, 2])), "null class"),
    (dict(y=torch.tensor([1, 2, 3])), "one label per sample"),
    (dict(clip_x0=-1.0), "clip_x0 must be True, False or a bound > 0"),
])
def test_bad_input(kwargs, match):
    s = make_schedule("cosine", 100)
    with pytest.raises(ValueError, match=match):
        sample(gaussian_oracle(s), s, torch.zeros(2, 2), **kwargs)


@pytest.mark.parametrize("method,kwargs", [("ddpm", dict(variance=v)) for v in VARIANCES]
                         + [("ddim", dict(eta=e)) for e in (0.0, 0.3, 1.0)] + [("dpm-solver++", {})])
@pytest.mark.parametrize("steps,spacing", [(100, "trailing"), (7, "trailing"), (7, "leading"), (3, "linspace")])
def test_sigmas_are_the_samplers_sigmas(method, kwargs, steps, spacing):
    """plan() lists, without a model, exactly the (t, t_next, sigma) the sampler then yields."""
    s = make_schedule("linear", 100)
    run_steps = list(sample(gaussian_oracle(s), s, torch.randn(4, 2), method=method, steps=steps, spacing=spacing,
                            generator=torch.Generator().manual_seed(0), **kwargs))
    assert plan(s, method, steps, spacing=spacing, **kwargs) == [(st.t, st.t_next, st.sigma) for st in run_steps]


def test_sigmas_closed_forms():
    s = make_schedule("cosine", 50)
    ab, betas, beta_tildes = s.alpha_bars.tolist(), s.betas.tolist(), s.beta_tildes.tolist()
    # all T steps: sigma^2 is beta_t or beta_tilde_t (seed 001, eq. 5), DDIM eta = 1 equals beta_tilde_t
    full_beta = plan(s, "ddpm", 50, variance="beta")
    full_tilde = plan(s, "ddpm", 50, variance="beta_tilde")
    full_ddim = plan(s, "ddim", 50, eta=1.0)
    assert [(t, n) for t, n, _ in full_beta] == [(t, t - 1) for t in range(50, 0, -1)]
    for (t, _, sb), (_, _, st), (_, _, sd) in zip(full_beta[:-1], full_tilde[:-1], full_ddim[:-1]):
        assert sb ** 2 == pytest.approx(betas[t], rel=1e-12)
        assert st ** 2 == pytest.approx(beta_tildes[t], rel=1e-12) and sd == pytest.approx(st, rel=1e-12)
    assert full_beta[-1][2] == full_tilde[-1][2] == full_ddim[-1][2] == 0.0  # no noise on the step to x_0
    # respaced: the step t -> t_next uses beta_{t, t_next} = 1 - ab_t / ab_t_next; eta scales DDIM's sigma
    t, n, sigma = plan(s, "ddpm", 5, variance="beta")[1]
    assert (t, n) == (40, 30) and sigma ** 2 == pytest.approx(1 - ab[40] / ab[30], rel=1e-12)
    half = plan(s, "ddim", 5, eta=0.5)
    assert [x[2] for x in half] == pytest.approx([0.5 * x[2] for x in plan(s, "ddim", 5, eta=1.0)], rel=1e-12)
    assert all(x[2] == 0.0 for x in plan(s, "ddim", 5, eta=0.0) + plan(s, "dpm-solver++", 5))


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="euler"), "allowed: ddpm, ddim, dpm-solver"),
    (dict(variance="learned"), "allowed: beta, beta_tilde"),
    (dict(eta=2.0), r"eta must be a finite number in \[0, 1\]"),
    (dict(steps=51), r"steps must be a whole number from 1 to 50"),
    (dict(spacing="uniform"), "allowed: trailing, linspace, leading"),
])
def test_sigmas_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan(make_schedule("cosine", 50), **kwargs)


# ------------------------------------------------------------------------------------------------ DDIM inversion


def counting(model):
    """`model` that also records the timestep of each call."""
    def wrapped(x, t, y=None):
        wrapped.ts.append(int(t[0]))
        return model(x, t, y)

    wrapped.ts = []
    return wrapped


@pytest.mark.parametrize("steps,spacing", [(1, "trailing"), (3, "trailing"), (7, "leading"), (50, "linspace")])
def test_inversion_is_exact_when_eps_does_not_depend_on_x(steps, spacing):
    """If eps_hat(x, t) = f(t), the inversion's one approximation eps_hat(x_t, t) ~ eps_hat(x_s, t) is exact, so
    DDIM regenerates x_0 to rounding from the inverted x_T, with any steps and spacing, and the model is called
    at the sampler's own timesteps in increasing order (never at t = 0)."""
    s = make_schedule("cosine", 1000)
    f = torch.randn(1001, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = counting(lambda x, t, y: f[t])
    x_0 = torch.rand(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x_T = run(invert(model, s, x_0, steps=steps, spacing=spacing))
    assert model.ts == timesteps(1000, steps, spacing)[::-1]
    x0 = run(sample(model, s, x_T, method="ddim", steps=steps, spacing=spacing))
    assert torch.allclose(x0, x_0, rtol=0, atol=1e-10)


def test_inversion_steps_walk_up_from_x0():
    s = make_schedule("linear", 100)
    x_0 = torch.randn(4, 2, dtype=torch.float64)
    steps = list(invert(gaussian_oracle(s), s, x_0, steps=4))
    assert [(st.i, st.n, st.t, st.t_next, st.sigma) for st in steps] == [
        (0, 4, 0, 25, 0.0), (1, 4, 25, 50, 0.0), (2, 4, 50, 75, 0.0), (3, 4, 75, 100, 0.0)]
    assert torch.equal(steps[0].x_t, x_0) and torch.equal(steps[0].x0_hat, x_0)  # at t = 0, x0_hat is x_0
    for prev, nxt in zip(steps, steps[1:]):
        assert torch.equal(prev.x_next, nxt.x_t)
    assert torch.equal(run(invert(gaussian_oracle(s), s, x_0, steps=4)), steps[-1].x_next)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_inversion_of_gaussian_data_reconstructs_with_first_order_error(name, objective):
    """Data N(0, S^2): the probability-flow ODE maps x_0 to x_T = x_0 sqrt(v_T) / S, v_T = ab_T S^2 + 1 - ab_T,
    so inverting true samples gives noise of std sqrt(v_T) ~ 1; DDIM inversion then regeneration is a first-order
    method: the reconstruction error falls as 1 / steps."""
    s = make_schedule(name, 1000)
    x_0 = S * torch.randn(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    counts = (5, 10, 20, 50, 200)
    items = list(inversion_errors(gaussian_oracle(s, objective), s, x_0, counts, objective=objective))
    records = [item for item in items if isinstance(item, Reconstruction)]
    assert len(items) - len(records) == 2 * sum(counts) and [r.steps for r in records] == list(counts)
    assert all(r.calls == 2 * r.steps for r in records)
    errors = [r.rmse.pow(2).mean().sqrt().item() for r in records]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert max(n * e for n, e in zip(counts, errors)) < 1.3 * min(n * e for n, e in zip(counts, errors))
    assert errors[-1] < 0.02 * S
    ab_T = s.alpha_bars[-1].item()
    v_T = ab_T * S ** 2 + 1 - ab_T
    x_T = records[-1].x_T
    assert x_T.std().item() == pytest.approx(math.sqrt(v_T), rel=0.01) and abs(x_T.mean().item()) < 0.03
    assert (x_T - x_0 * math.sqrt(v_T) / S).pow(2).mean().sqrt().item() < 0.005


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps=0), r"steps must be a whole number from 1 to 100"),
    (dict(spacing="uniform"), "allowed: trailing, linspace, leading"),
    (dict(objective="score"), "allowed: eps, x0, v"),
    (dict(guidance=3.0), "needs class labels"),
    (dict(y=torch.tensor([1, 2, 3])), "one label per sample"),
])
def test_inversion_bad_input(kwargs, match):
    s = make_schedule("cosine", 100)
    model = counting(gaussian_oracle(s))
    with pytest.raises(ValueError, match=match):
        invert(model, s, torch.zeros(2, 2), **kwargs)
    with pytest.raises(ValueError, match=match):
        next(inversion_errors(model, s, torch.zeros(2, 2), (5, kwargs.pop("steps", 5)), **kwargs))
    with pytest.raises(ValueError, match="clip_x0 must be True, False or a bound > 0"):
        next(inversion_errors(model, s, torch.zeros(2, 2), clip_x0=0))
    assert model.ts == []  # refused before any model call


# --------------------------------------------------------------------------------------------------- steps sweep


def test_sweep_cells_are_the_samplers_runs_from_one_x_T():
    s = make_schedule("cosine", 1000)
    model = counting(gaussian_oracle(s))
    x_T = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    items = list(sweep(model, s, x_T, seed=7))
    cells = [item for item in items if isinstance(item, SweepCell)]
    assert [(c.sampler, c.steps) for c in cells] == [(label, n) for n in SWEEP_STEPS for label in SWEEP_SAMPLERS]
    assert len(model.ts) == len(items) - len(cells) == len(SWEEP_SAMPLERS) * sum(SWEEP_STEPS)
    start = 0
    for cell in cells:  # each cell's Steps come just before it: as many as its model calls, from the same x_T
        end = items.index(cell)
        steps = items[start:end]
        assert all(isinstance(st, Step) for st in steps) and cell.calls == len(steps) == cell.steps
        assert torch.equal(steps[0].x_t, x_T) and torch.equal(steps[-1].x_next, cell.x0) and cell.seconds > 0
        direct = run(sample(gaussian_oracle(s), s, x_T, **SWEEP_SAMPLERS[cell.sampler], steps=cell.steps,
                            generator=torch.Generator().manual_seed(7)))
        assert torch.equal(cell.x0, direct)
        start = end + 1
    by_key = {(c.sampler, c.steps): c.x0 for c in cells}
    # with as many steps as T and the same seed, DDIM eta 1 is DDPM with sigma^2 = beta_tilde, draw for draw
    assert torch.allclose(by_key["ddim eta 1", 1000], by_key["ddpm", 1000], atol=1e-10)
    assert torch.equal(by_key["ddim eta 0", 50], run(sample(model, s, x_T, method="ddim", steps=50)))


def test_sweep_passes_options_and_returns_its_cells():
    s = make_schedule("cosine", 100)
    calls = []

    def model(x, t, y):
        calls.append(x.shape[0])
        return torch.zeros_like(x)

    model.null_label = 3
    gen = sweep(model, s, torch.randn(2, 2), samplers=["dpm-solver++"], step_counts=[2, 4], y=torch.tensor([0, 1]),
                guidance=2.0)
    cells = run(gen)
    assert [(c.sampler, c.steps, c.calls) for c in cells] == [("dpm-solver++", 2, 2), ("dpm-solver++", 4, 4)]
    assert calls == [4] * 6  # guidance batches the conditional and null halves in every call


@pytest.mark.parametrize("kwargs,match", [
    (dict(samplers=["euler"]), "unknown sampler 'euler'; allowed: ddpm, ddim eta 0, ddim eta 1, dpm-solver"),
    (dict(step_counts=[5, 101]), r"steps must be a whole number from 1 to 100"),
    (dict(method="ddim"), "the sweep sets method itself"),
    (dict(seed=-1), "seed must be a whole number"),
    (dict(guidance=2.0), "needs class labels"),
])
def test_sweep_bad_input(kwargs, match):
    s = make_schedule("cosine", 100)
    model = counting(gaussian_oracle(s))
    with pytest.raises(ValueError, match=match):
        next(sweep(model, s, torch.zeros(2, 2), **{"step_counts": [5, 10], **kwargs}))
    assert model.ts == []
