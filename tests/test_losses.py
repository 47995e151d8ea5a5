"""Losses: min-SNR weights from their definition, equivalence across objectives, Algorithm 1's draws."""
import pytest
import torch

from explorer.forward import q_sample
from explorer.losses import diffusion_loss, min_snr_weight, t_probabilities
from explorer.parameterization import OBJECTIVES, predictions, target
from explorer.schedules import at, make_schedule


def test_min_snr_weights_exact_values():
    snr = torch.tensor([0.0, 0.5, 5.0, 100.0], dtype=torch.float64)
    g = 5.0
    assert torch.allclose(min_snr_weight(snr, "eps", g), torch.tensor([1.0, 1.0, 1.0, 0.05], dtype=torch.float64))
    assert torch.allclose(min_snr_weight(snr, "x0", g), torch.tensor([0.0, 0.5, 5.0, 5.0], dtype=torch.float64))
    assert torch.allclose(min_snr_weight(snr, "v", g), torch.tensor([0.0, 0.5 / 1.5, 5 / 6, 5 / 101], dtype=torch.float64))


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_min_snr_weights_finite_at_both_ends(name, objective):
    s = make_schedule(name, 1000)
    w = min_snr_weight(s.snr[1:], objective, 5.0)
    assert torch.isfinite(w).all() and (w >= 0).all()
    assert torch.isfinite(w[[0, -1]]).all()  # t = 1 and t = T


def test_min_snr_weighting_is_the_same_loss_in_every_objective():
    """weight_obj * ||target_obj - pred_obj||^2 = min(SNR, gamma) * ||x0 - x0_hat||^2 for one consistent prediction."""
    s = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 3, 50, 400, 800, 1000])
    x0 = torch.rand(6, 5, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(6, 5, generator=g, dtype=torch.float64)
    x0_hat = x0 + 0.1 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    x_t = q_sample(s, x0, t, eps)
    a, b = at(s.sqrt_alpha_bars, t, x0), at(s.sqrt_one_minus_alpha_bars, t, x0)
    pred = predictions("x0", x0_hat, x_t, a, b)
    snr = s.snr[t]
    reference = snr.clamp(max=5.0) * (x0 - x0_hat).pow(2).sum(1)
    for objective, out in zip(OBJECTIVES, (pred.eps, pred.x0, pred.v)):
        mse = (target(objective, x0, eps, a, b) - out).pow(2).sum(1)
        assert torch.allclose(min_snr_weight(snr, objective, 5.0) * mse, reference, rtol=1e-6)


def test_loss_draws_follow_algorithm_1():
    s = make_schedule("linear", 100)
    seen = []

    def model(x, t, y):
        seen.append(t)
        return torch.zeros_like(x)

    x0 = torch.zeros(50000, 1)
    loss = diffusion_loss(model, s, x0, "eps", generator=torch.Generator().manual_seed(0))
    t = seen[0]
    assert t.min() == 1 and t.max() == 100  # Uniform{1..T}
    assert t.float().mean().item() == pytest.approx(50.5, abs=0.5)
    assert loss.item() == pytest.approx(1.0, abs=0.02)  # E||eps - 0||^2 per dim = 1

    # the same generator state gives the same draws: recompute by hand
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(8, 3)
    t = torch.randint(1, 101, (8,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    x_t = q_sample(s, x0, t, eps)
    v = at(s.sqrt_alpha_bars, t, x0) * eps - at(s.sqrt_one_minus_alpha_bars, t, x0) * x0
    expected = (v - x_t).pow(2).mean()
    got = diffusion_loss(lambda x, tt, y: x, s, x0, "v", generator=torch.Generator().manual_seed(1))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_bad_input():
    s = make_schedule("cosine", 100)
    with pytest.raises(ValueError, match="allowed: eps, x0, v"):
        diffusion_loss(lambda x, t, y: x, s, torch.zeros(2, 2), "score")
    with pytest.raises(ValueError, match="gamma must be > 0"):
        min_snr_weight(s.snr, "eps", 0.0)


def test_log_normal_t_follows_edm_noise_levels():
    """Under t_probabilities("log-normal"), ln sigma_t (sigma_t = SNR_t^-1/2) is N(-1.2, 1.2^2) up to binning."""
    for name in ("cosine", "linear"):
        s = make_schedule(name, 1000)
        p = t_probabilities(s, "log-normal")
        assert p.shape == (1000,) and (p >= 0).all() and p.sum().item() == pytest.approx(1.0, abs=1e-12)
        log_sigma = -0.5 * s.log_snr[1:]
        inside = (log_sigma > -1.2 - 3 * 1.2) & (log_sigma < -1.2 + 3 * 1.2)  # away from the lumped tails
        mean = (p * log_sigma)[inside].sum() / p[inside].sum()
        assert mean.item() == pytest.approx(-1.2, abs=0.03)
        median_t = int(torch.searchsorted(p.cumsum(0), torch.tensor(0.5, dtype=torch.float64)))
        assert log_sigma[median_t].item() == pytest.approx(-1.2, abs=0.05)
    uniform = t_probabilities(make_schedule("cosine", 50))
    assert torch.equal(uniform, torch.full((50,), 1 / 50, dtype=torch.float64))
    with pytest.raises(ValueError, match="allowed: uniform, log-normal"):
        t_probabilities(make_schedule("cosine", 50), "beta")


def test_loss_draws_t_from_t_probs():
    s = make_schedule("cosine", 20)
    p = torch.zeros(20, dtype=torch.float64)
    p[[2, 9]] = torch.tensor([0.25, 0.75], dtype=torch.float64)  # t = 3 and t = 10 only
    seen = []

    def model(x, t, y):
        seen.append(t)
        return torch.zeros_like(x)

    diffusion_loss(model, s, torch.zeros(40000, 1), "eps", generator=torch.Generator().manual_seed(0), t_probs=p)
    t = seen[0]
    assert set(t.tolist()) == {3, 10} and (t == 10).float().mean().item() == pytest.approx(0.75, abs=0.01)
