"""Spectrum: white noise is flat at 1, a sinusoid lands in its ring, power-law crossovers are exact."""
import math

import pytest
import torch

from explorer.forward import q_sample
from explorer.schedules import make_schedule
from explorer.spectrum import crossover_frequency, noise_floor, radial_power_spectrum


def test_white_noise_is_flat_at_one():
    freqs, power = radial_power_spectrum(torch.randn(400, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert freqs.tolist() == pytest.approx([k / 32 for k in range(1, 17)])
    assert torch.allclose(power, torch.ones_like(power), rtol=0.05)


def test_sinusoid_lands_in_its_ring():
    x = torch.arange(32, dtype=torch.float64)
    img = torch.cos(2 * math.pi * 5 * x / 32).expand(32, 32)
    freqs, power = radial_power_spectrum(img)
    assert freqs[power.argmax()].item() == pytest.approx(5 / 32)


def test_expected_spectrum_of_x_t():
    s = make_schedule("cosine", 1000)
    x = torch.arange(32, dtype=torch.float64)
    x0 = torch.cos(2 * math.pi * 3 * x / 32).expand(32, 32) * torch.cos(2 * math.pi * 2 * x / 32).view(-1, 1)
    t = 300
    _, p0 = radial_power_spectrum(x0)
    g = torch.Generator().manual_seed(1)
    x_t = q_sample(s, x0.expand(400, 32, 32), t, torch.randn(400, 32, 32, generator=g, dtype=torch.float64))
    _, pt = radial_power_spectrum(x_t)
    ab = s.alpha_bars[t].item()
    assert torch.allclose(pt, ab * p0 + (1 - ab), rtol=0.06)  # E P_xt = ab P0 + (1 - ab)


def test_crossover_of_a_power_law_is_exact():
    s = make_schedule("cosine", 1000)
    freqs = torch.arange(1, 17, dtype=torch.float64) / 32
    power0 = 1e-2 / freqs ** 2
    previous = math.inf
    for t in (200, 400, 600, 700):
        ab = s.alpha_bars[t].item()
        f = crossover_frequency(s, t, freqs, power0)
        assert f == pytest.approx(math.sqrt(1e-2 * ab / (1 - ab)), rel=1e-9)  # 1e-2 ab / f^2 = 1 - ab
        assert f < previous  # the drowned band grows as t grows
        previous = f
    assert crossover_frequency(s, 0, freqs, power0) is None
    assert crossover_frequency(s, 1000, freqs, power0) == freqs[0].item()
    assert noise_floor(s, 0) == 0.0 and noise_floor(s, 1000) == pytest.approx(1.0)


def test_too_small_image():
    with pytest.raises(ValueError, match="at least 4x4"):
        radial_power_spectrum(torch.zeros(2, 2))
