"""Schedules: exact values from the formulas, computed independently here with plain Python floats."""
import math

import pytest
import torch

from explorer.schedules import SCHEDULES, make_schedule


def linear_reference(T):
    scale = 1000 / T
    lo, hi = 1e-4 * scale, 0.02 * scale
    return [0.0] + [min(lo + (hi - lo) * i / (T - 1), 0.999) for i in range(T)]


def cosine_reference(T, s=0.008):
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    return [0.0] + [min(max(1 - (f[t] / f[0]) / (f[t - 1] / f[0]), 0.0), 0.999) for t in range(1, T + 1)]


@pytest.mark.parametrize("name,reference", [("linear", linear_reference), ("cosine", cosine_reference)])
@pytest.mark.parametrize("T", [10, 50, 1000, 4000])
def test_values_match_formulas(name, reference, T):
    s = make_schedule(name, T)
    betas = reference(T)
    ab = [1.0]
    for beta in betas[1:]:
        ab.append(ab[-1] * (1 - beta))
    for t in sorted({1, 2, T // 3, T // 2, T - 1, T}):
        assert s.betas[t].item() == pytest.approx(betas[t], rel=1e-9)
        assert s.alphas[t].item() == pytest.approx(1 - betas[t], rel=1e-12)
        assert s.alpha_bars[t].item() == pytest.approx(ab[t], rel=1e-9)
        assert s.sqrt_alpha_bars[t].item() == pytest.approx(math.sqrt(ab[t]), rel=1e-9)
        assert s.sqrt_one_minus_alpha_bars[t].item() == pytest.approx(math.sqrt(1 - ab[t]), rel=1e-9)
        assert s.snr[t].item() == pytest.approx(ab[t] / (1 - ab[t]), rel=1e-9)
        assert s.log_snr[t].item() == pytest.approx(math.log(ab[t] / (1 - ab[t])), rel=1e-9, abs=1e-9)
        # seed 001, eq. 4-5
        assert s.beta_tildes[t].item() == pytest.approx((1 - ab[t - 1]) / (1 - ab[t]) * betas[t], rel=1e-9, abs=1e-15)
        assert s.posterior_mean_coef_x0[t].item() == pytest.approx(math.sqrt(ab[t - 1]) * betas[t] / (1 - ab[t]), rel=1e-9)
        assert s.posterior_mean_coef_xt[t].item() == pytest.approx(
            math.sqrt(1 - betas[t]) * (1 - ab[t - 1]) / (1 - ab[t]), rel=1e-9, abs=1e-15)


def test_index_zero_is_clean_data():
    for name in SCHEDULES:
        s = make_schedule(name, 1000)
        assert s.betas.shape == (1001,) and s.betas.dtype == torch.float64
        assert s.betas[0] == 0 and s.alpha_bars[0] == 1 and s.beta_tildes[1] == 0
        assert torch.all(s.alpha_bars[1:] < s.alpha_bars[:-1])  # strictly more noise every step


def test_linear_endpoints_and_scaling():
    s = make_schedule("linear", 1000)
    assert s.betas[1].item() == pytest.approx(1e-4) and s.betas[1000].item() == pytest.approx(0.02)
    s200 = make_schedule("linear", 200)  # ends scaled by 1000 / T = 5
    assert s200.betas[1].item() == pytest.approx(5e-4) and s200.betas[200].item() == pytest.approx(0.1)
    # same total noise, so alpha_bar at the same fraction of the process is close
    assert s200.alpha_bars[100].item() == pytest.approx(s.alpha_bars[500].item(), rel=0.05)


def test_cosine_end_is_finite_and_clipped():
    for T in (10, 1000, 4000):
        s = make_schedule("cosine", T)
        assert s.betas.max().item() <= 0.999
        assert 0 < s.alpha_bars[T].item() < 1e-4
        assert torch.isfinite(s.snr[1:]).all() and torch.isfinite(s.log_snr[1:]).all()
        assert torch.isfinite(s.beta_tildes).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="quadratic"), "allowed: linear, cosine"),
    (dict(T=1), r"T must be a whole number from 10 to 4000"),
    (dict(T=5000), "from 10 to 4000"),
    (dict(T=100.5), "from 10 to 4000"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(**{"name": "cosine", "T": 1000, **kwargs})
