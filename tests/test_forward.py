"""Forward process: closed form vs iterated chain, posterior vs completing the square, the marginal of mixture
data, conversions."""
import math

import pytest
import torch

from explorer.data import sample_toy, toy_mixture
from explorer.forward import (mixture_log_prob_grid, q_chain, q_chain_walk, q_marginal_mixture, q_posterior,
                              q_sample)
from explorer.parameterization import OBJECTIVES, predictions, score_from_eps, target, v_from_eps_x0
from explorer.schedules import at, make_schedule


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_closed_form_and_chain_agree_in_distribution(name):
    s = make_schedule(name, 200)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.8, -0.3, 0.0]).repeat(20000, 1)  # 20000 draws of three pixels
    for t in (1, 20, 100, 200):
        closed = q_sample(s, x0, t, torch.randn(x0.shape, generator=g, dtype=x0.dtype))
        chain = q_chain(s, x0, t, generator=g)
        mean = math.sqrt(s.alpha_bars[t]) * x0[0]
        std = math.sqrt(1 - s.alpha_bars[t])
        for x in (closed, chain):  # both match N(sqrt(ab) x0, (1 - ab) I); 4.5 standard errors
            assert torch.allclose(x.mean(0), mean, atol=4.5 * std / math.sqrt(len(x)))
            assert torch.allclose(x.std(0), torch.full((3,), std), rtol=0.03)


def test_q_sample_exact_values_and_t0():
    s = make_schedule("cosine", 1000)
    x0, eps = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 2.0]])
    t = 400
    expected = math.sqrt(s.alpha_bars[t]) * x0 + math.sqrt(1 - s.alpha_bars[t]) * eps
    assert torch.allclose(q_sample(s, x0, t, eps), expected)
    assert torch.equal(q_sample(s, x0, 0, eps), x0)
    batch_t = torch.tensor([0, t])
    both = q_sample(s, x0.repeat(2, 1), batch_t, eps.repeat(2, 1))
    assert torch.equal(both[0], x0[0]) and torch.allclose(both[1], expected[0])


def test_chain_with_given_noises_is_the_recursion():
    s = make_schedule("linear", 50)
    x0 = torch.randn(4, 3, dtype=torch.float64)
    noises = torch.randn(5, 4, 3, dtype=torch.float64)
    x = x0
    for k in range(1, 6):
        x = math.sqrt(1 - s.betas[k]) * x + math.sqrt(s.betas[k]) * noises[k - 1]
    assert torch.allclose(q_chain(s, x0, 5, noises=noises), x)
    with pytest.raises(ValueError, match="noises must have shape"):
        q_chain(s, x0, 4, noises=noises)


def test_the_chain_walk_resumes_where_it_was_left():
    """Walking to s = 7, saving (x_7, the generator's state) and walking on from there gives the draws of one walk
    from x_0, which are those of q_chain with eps_1, eps_2, ... drawn one per step from the same seed."""
    s = make_schedule("cosine", 12)
    x0 = torch.randn(2, 3)
    whole = list(q_chain_walk(s, x0, generator=torch.Generator().manual_seed(4)))
    assert [k for k, _ in whole] == list(range(1, 13))  # stops at T
    g = torch.Generator().manual_seed(4)
    for k, x in q_chain_walk(s, x0, generator=g):
        if k == 7:
            saved = (x, g.get_state())
            break
    resumed = torch.Generator()
    resumed.set_state(saved[1])
    rest = list(q_chain_walk(s, saved[0], start=7, generator=resumed))
    assert [k for k, _ in rest] == list(range(8, 13))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(whole[7:], rest))
    draws = torch.Generator().manual_seed(4)
    noises = torch.stack([torch.randn(x0.shape, generator=draws) for _ in range(12)])
    assert torch.equal(q_chain(s, x0, 12, noises=noises), whole[-1][1])
    assert torch.equal(q_chain(s, x0, 5, generator=torch.Generator().manual_seed(4)), whole[4][1])
    assert torch.equal(q_chain(s, x0, 0), x0)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 12\]"):
        next(q_chain_walk(s, x0, start=13))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_by_completing_the_square(name):
    """seed 002: q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0); precision a = alpha_t / beta_t + 1 / (1 - ab_{t-1}),
    mean = (sqrt(alpha_t) / beta_t x_t + sqrt(ab_{t-1}) / (1 - ab_{t-1}) x_0) / a."""
    s = make_schedule(name, 1000)
    x0, x_t = torch.tensor([[0.3, -0.7]], dtype=torch.float64), torch.tensor([[1.2, 0.1]], dtype=torch.float64)
    for t in (2, 10, 500, 1000):
        al, be, ab_prev = 1 - s.betas[t].item(), s.betas[t].item(), s.alpha_bars[t - 1].item()
        precision = al / be + 1 / (1 - ab_prev)
        mean_ref = (math.sqrt(al) / be * x_t + math.sqrt(ab_prev) / (1 - ab_prev) * x0) / precision
        mean, var = q_posterior(s, x0, x_t, t)
        assert torch.allclose(mean, mean_ref, rtol=1e-9)
        assert var.item() == pytest.approx(1 / precision, rel=1e-9)


def test_posterior_matches_bayes_numerically():
    """A brute-force check in one dimension: the density q(x_{t-1} | x_t, x_0) on a grid, from Bayes' rule."""
    s = make_schedule("linear", 100)
    t, x0, x_t = 30, 0.4, -0.2
    grid = torch.linspace(-4, 4, 200001, dtype=torch.float64)
    ab_prev, al = s.alpha_bars[t - 1], s.alphas[t]
    log_w = -(x_t - al.sqrt() * grid) ** 2 / (2 * (1 - al)) - (grid - ab_prev.sqrt() * x0) ** 2 / (2 * (1 - ab_prev))
    w = torch.exp(log_w - log_w.max())
    w = w / w.sum()
    mean_bayes = (w * grid).sum()
    var_bayes = (w * (grid - mean_bayes) ** 2).sum()
    mean, var = q_posterior(s, torch.tensor([x0], dtype=torch.float64), torch.tensor([x_t], dtype=torch.float64), t)
    assert mean.item() == pytest.approx(mean_bayes.item(), abs=1e-7)
    assert var.item() == pytest.approx(var_bayes.item(), rel=1e-5)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_conversions_round_trip(objective):
    s = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(8, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 100, 500, 900, 999, 1000])
    x_t = q_sample(s, x0, t, eps)
    a, b = at(s.sqrt_alpha_bars, t, x0), at(s.sqrt_one_minus_alpha_bars, t, x0)
    pred = predictions(objective, target(objective, x0, eps, a, b), x_t, a, b)
    assert torch.allclose(pred.x0, x0, atol=1e-5)  # x0 from eps at t = T divides by a_T ~ 5e-5
    assert torch.allclose(pred.eps, eps, atol=1e-9)
    assert torch.allclose(pred.v, v_from_eps_x0(eps, x0, a, b), atol=1e-9)
    assert torch.allclose(a * pred.x0 + b * pred.eps, x_t, atol=1e-12)  # eq. 8 holds


def test_clipped_prediction_stays_consistent():
    s = make_schedule("cosine", 1000)
    x_t = torch.full((1, 4), 3.0, dtype=torch.float64)
    a, b = at(s.sqrt_alpha_bars, 500, x_t), at(s.sqrt_one_minus_alpha_bars, 500, x_t)
    pred = predictions("eps", torch.zeros_like(x_t), x_t, a, b, clip_x0=True)
    assert pred.x0.max() == 1.0
    assert torch.allclose(a * pred.x0 + b * pred.eps, x_t)
    wide = predictions("eps", torch.zeros_like(x_t), x_t, a, b, clip_x0=2.5)  # a toy's range [-2.5, 2.5]
    assert wide.x0.max() == 2.5 and torch.allclose(a * wide.x0 + b * wide.eps, x_t)
    with pytest.raises(ValueError, match="bound > 0"):
        predictions("eps", torch.zeros_like(x_t), x_t, a, b, clip_x0=-1.0)


def test_bad_objective():
    with pytest.raises(ValueError, match="allowed: eps, x0, v"):
        predictions("score", torch.zeros(1), torch.zeros(1), 1.0, 0.0)


def test_bad_t():
    s = make_schedule("cosine", 100)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 100\]"):
        q_sample(s, torch.zeros(2), 101, torch.zeros(2))
    with pytest.raises(ValueError, match=r"t must lie in \[1, 100\]"):
        q_posterior(s, torch.zeros(2), torch.zeros(2), 0)


def test_score_from_eps_is_the_exact_score_for_gaussian_data():
    """Data N(0, s^2): q(x_t) = N(0, ab s^2 + 1 - ab), score -x_t / (ab s^2 + 1 - ab); the exact eps-predictor
    is eps*(x_t, t) = sqrt(1 - ab) x_t / (ab s^2 + 1 - ab) (DESIGN, testing conventions)."""
    sched, s2 = make_schedule("linear", 1000), 0.3 ** 2
    x_t = torch.linspace(-3, 3, 13, dtype=torch.float64)
    for t in (1, 250, 1000):
        ab = float(sched.alpha_bars[t])
        var = ab * s2 + 1 - ab
        eps = math.sqrt(1 - ab) * x_t / var
        assert torch.allclose(score_from_eps(eps, math.sqrt(1 - ab)), -x_t / var)


def _grid_log_prob_brute_force(xs, ys, means, stds, weights):
    """log sum_j w_j N(x; m_j, diag(s_j^2)) point by point with torch.distributions, (len(ys), len(xs))."""
    xy = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2).double()
    comp = torch.distributions.Independent(torch.distributions.Normal(means, stds), 1)
    return torch.logsumexp(comp.log_prob(xy[:, None, :]) + weights.log(), dim=1).reshape(len(ys), len(xs))


@pytest.mark.parametrize("name", ["two-moons", "checkerboard", "blobs"])
def test_mixture_marginal_on_a_grid(name):
    """The grid log-density equals the point-by-point mixture, integrates to 1 and ends at N(0, I) for t = T."""
    s = make_schedule("cosine", 1000)
    means, stds, weights = toy_mixture(name)
    xs, ys = torch.linspace(-4, 4, 81), torch.linspace(-3.5, 3.5, 71)
    cell = (8 / 80) * (7 / 70)
    for t in (0, 30, 300):
        m_t, s_t, w_t = q_marginal_mixture(s, t, means, stds, weights)
        assert torch.allclose(m_t, means * math.sqrt(s.alpha_bars[t])) and torch.equal(w_t, weights)
        assert torch.allclose(s_t ** 2, s.alpha_bars[t] * stds ** 2 + 1 - s.alpha_bars[t])
        log_p = mixture_log_prob_grid(xs, ys, m_t, s_t, w_t)
        assert log_p.shape == (71, 81) and log_p.dtype == torch.float64
        expected = _grid_log_prob_brute_force(xs[::4], ys[::5], m_t, s_t, w_t)  # a sub-grid: fast enough
        visible = expected > expected.max() - 600  # where float64 keeps the density (see the docstring)
        assert torch.allclose(log_p[::5, ::4][visible], expected[visible], atol=1e-9, rtol=1e-9)
        assert float(log_p.exp().sum()) * cell == pytest.approx(1, abs=1e-2)  # Riemann sum of sharp edges at t = 0
    log_p = mixture_log_prob_grid(xs, ys, *q_marginal_mixture(s, 1000, means, stds, weights))
    normal = -0.5 * (xs[None, :] ** 2 + ys[:, None] ** 2) - math.log(2 * math.pi)
    assert torch.allclose(log_p, normal.double(), atol=1e-6)  # alpha_bar_T = 2.4e-9: q(x_T) is N(0, I)


def test_mixture_marginal_matches_a_histogram_of_q_sample():
    """q(x_t) of the mixture against a 2D histogram of x_t = q_sample(x_0 ~ the blobs toy, exact mixture)."""
    s = make_schedule("linear", 200)
    t, n = 20, 400_000
    x0, _ = sample_toy("blobs", n, generator=0)
    eps = torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_t = q_sample(s, x0.double(), t, eps)
    edges = torch.linspace(-3, 3, 25, dtype=torch.float64)
    counts = torch.histogramdd(x_t, bins=[edges, edges]).hist  # counts[i, j]: x in bin i, y in bin j
    fine = torch.linspace(-3, 3, 241, dtype=torch.float64)  # 10 x 10 points per bin, midpoints of sub-cells
    fine = (fine[:-1] + fine[1:]) / 2
    density = mixture_log_prob_grid(fine, fine, *q_marginal_mixture(s, t, *toy_mixture("blobs"))).exp()
    expected = n * density.reshape(24, 10, 24, 10).mean((1, 3)).T * 0.25 ** 2  # bin averages, [x bin, y bin]
    busy = expected > 200
    assert busy.sum() > 150
    z = (counts[busy] - expected[busy]) / expected[busy].sqrt()
    assert z.abs().max() < 5 and z.square().mean() < 1.5  # Poisson noise only


def test_mixture_bad_shapes():
    with pytest.raises(ValueError, match=r"means must be \(K, 2\)"):
        mixture_log_prob_grid(torch.zeros(3), torch.zeros(3), torch.zeros(4, 3), torch.ones(4), torch.ones(4) / 4)
