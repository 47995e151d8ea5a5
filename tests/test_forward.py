"""Forward process: closed form vs iterated chain, posterior vs completing the square, conversions."""
import math

import pytest
import torch

from explorer.forward import q_chain, q_posterior, q_sample
from explorer.parameterization import OBJECTIVES, predictions, target, v_from_eps_x0
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


def test_bad_objective():
    with pytest.raises(ValueError, match="allowed: eps, x0, v"):
        predictions("score", torch.zeros(1), torch.zeros(1), 1.0, 0.0)


def test_bad_t():
    s = make_schedule("cosine", 100)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 100\]"):
        q_sample(s, torch.zeros(2), 101, torch.zeros(2))
    with pytest.raises(ValueError, match=r"t must lie in \[1, 100\]"):
        q_posterior(s, torch.zeros(2), torch.zeros(2), 0)
