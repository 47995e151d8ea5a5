"""Two-sample distances of explorer.metrics against exact values: shifted Gaussians, same vs different toys."""
import math

import pytest
import torch

from explorer.data import TOY_DATASETS, sample_toy
from explorer.metrics import energy_distance, sliced_wasserstein


def gaussians(n: int, shift, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) + torch.tensor(shift)


def test_energy_distance_of_shifted_gaussians_is_exact():
    """N(0, I) vs N(mu, I) in 2D: D^2 = 2 E|Z_mu| - 2 E|Z_0| with Z_mu ~ N(mu, 2 I), whose norm is Rice
    distributed: E|Z_mu| = sqrt(pi) [(1 + r) I0e(r / 2) + r I1e(r / 2)] with r = |mu|^2 / 4."""
    for shift in ([1.2, -0.9], [0.0, 2.5]):
        r = torch.tensor(sum(v * v for v in shift) / 4, dtype=torch.float64)
        rice = math.sqrt(math.pi) * float((1 + r) * torch.special.i0e(r / 2) + r * torch.special.i1e(r / 2))
        exact = 2 * rice - 2 * math.sqrt(math.pi)
        x, y = gaussians(4000, shift, seed=1)
        assert energy_distance(x, y) == pytest.approx(exact, abs=0.05)  # the estimate's sd is about 0.012


def test_energy_distance_is_unbiased_for_one_distribution():
    """The U-statistic has expectation 0 for two samples of one distribution; its mean over draws is ~0."""
    values = torch.tensor([energy_distance(*gaussians(300, [0.0, 0.0], seed)) for seed in range(40)])
    assert abs(float(values.mean())) < 3 * float(values.std()) / math.sqrt(len(values))
    assert (values < 0).any()  # unbiased, so some draws fall below 0


def test_sliced_wasserstein_of_shifted_gaussians_is_exact():
    """Each projection theta . mu shifts N(0, 1): W_2^2 = (theta . mu)^2, averaging to |mu|^2 / 2 in 2D."""
    mu = [1.2, -0.9]
    exact = math.hypot(*mu) / math.sqrt(2)
    x, _ = gaussians(500, mu, seed=2)
    g = torch.Generator().manual_seed(0)
    shifted = sliced_wasserstein(x, x + torch.tensor(mu), n_projections=4000, generator=g)
    assert shifted == pytest.approx(exact, rel=0.03)  # the same points shifted: only the directions are random
    x, y = gaussians(4000, mu, seed=2)
    value = sliced_wasserstein(x, y, n_projections=500, generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(exact, rel=0.06)  # two samples: about 2% sampling noise


def test_sliced_wasserstein_handles_unequal_sizes_exactly():
    """W_2 between the empirical distributions {0, 1} and {0, 0.5, 1} on a line, by hand: the quantile
    functions differ on (1/3, 1/2) by 0.5 and on (1/2, 2/3) by 0.5, so W_2^2 = 2 (1/6) 0.25 = 1/12."""
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [0.5], [1.0]])
    assert sliced_wasserstein(x, y, n_projections=3) == pytest.approx(math.sqrt(1 / 12))  # theta = +-1 in 1D
    assert sliced_wasserstein(x, x, n_projections=3) == 0


def test_same_toy_is_near_zero_and_different_toys_are_far():
    n = 2000
    samples = {name: (sample_toy(name, n, generator=1)[0], sample_toy(name, n, generator=2)[0])
               for name in TOY_DATASETS}
    g = torch.Generator().manual_seed(0)
    for a, b in zip(TOY_DATASETS, TOY_DATASETS[1:] + TOY_DATASETS[:1]):  # each toy against itself and the next
        assert abs(energy_distance(*samples[a])) < 0.005
        assert sliced_wasserstein(*samples[a], generator=g) < 0.1
        assert energy_distance(samples[a][0], samples[b][1]) > 0.012, (a, b)
        assert sliced_wasserstein(samples[a][0], samples[b][1], generator=g) > 0.13, (a, b)


def test_symmetric_and_shift_invariant():
    x, y = gaussians(500, [0.5, 0.2], seed=3)
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), rel=1e-12)
    shift = torch.tensor([10.0, -4.0])
    assert energy_distance(x + shift, y + shift) == pytest.approx(energy_distance(x, y), rel=1e-6)
    sw = [sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(5)) for a, b in ((x, y), (y, x))]
    assert sw[0] == pytest.approx(sw[1], rel=1e-12)


@pytest.mark.parametrize("x,y", [(torch.zeros(5), torch.zeros(5, 2)), (torch.zeros(5, 2), torch.zeros(5, 3)),
                                 (torch.zeros(1, 2), torch.zeros(5, 2))])
def test_bad_shapes(x, y):
    with pytest.raises(ValueError, match="point sets"):
        energy_distance(x, y)
    if len(x) and x.ndim == 2 and y.shape[1] != x.shape[1]:
        with pytest.raises(ValueError, match="point sets"):
            sliced_wasserstein(x, y)
