"""ELBO: closed-form pieces and a model that knows x_0 (all L_{t-1} vanish, L_0 is a known bin probability); the
streamed form (`elbo_stream`), whose partial results are prefixes of the result `elbo` returns."""
import math

import pytest
import torch

from explorer.likelihood import (
    discretized_gaussian_log_likelihood,
    elbo,
    elbo_stream,
    normal_kl,
    prior_kl,
)
from explorer.schedules import make_schedule


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_normal_kl_values():
    assert normal_kl(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1.0)).item() == 0
    # KL(N(1, 2) || N(0, 1)) = 0.5 (log(1/2) + 2 + 1 - 1)
    assert normal_kl(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.0), torch.tensor(1.0)).item() == \
        pytest.approx(0.5 * (math.log(0.5) + 2.0))


def test_discretized_gaussian_sums_to_one_and_matches_erf():
    levels = torch.arange(256, dtype=torch.float64) / 255 * 2 - 1
    for mean, std in [(0.0, 0.1), (0.93, 0.01), (-1.2, 0.3), (0.5, 1e-3)]:
        logp = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean), std)
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    x = levels[100].item()
    expected = math.log(phi((x + 1 / 255 - 0.1) / 0.2) - phi((x - 1 / 255 - 0.1) / 0.2))
    got = discretized_gaussian_log_likelihood(levels[100:101], torch.tensor([0.1], dtype=torch.float64), 0.2)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_prior_kl_closed_form():
    s = make_schedule("linear", 1000)
    x0 = torch.tensor([[0.5, -1.0, 0.25]], dtype=torch.float64)
    ab = s.alpha_bars[-1].item()
    expected = sum(0.5 * (ab * v ** 2 + (1 - ab) - 1 - math.log(1 - ab)) for v in (0.5, -1.0, 0.25))
    assert prior_kl(s, x0).item() == pytest.approx(expected, rel=1e-9)
    assert prior_kl(make_schedule("cosine", 1000), x0).item() < 1e-7


def test_elbo_of_a_model_that_knows_x0():
    s = make_schedule("cosine", 50)
    x0 = (torch.randint(0, 256, (4, 1, 3, 3)) / 255 * 2 - 1).double()
    knows = lambda x, t, y: x0  # an x0-predictor that is always right  # noqa: E731
    result = elbo(knows, s, x0, objective="x0", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(result.terms_bpd[1:], torch.zeros(49, dtype=torch.float64), atol=1e-12)  # L_{t-1} = 0
    std = math.sqrt(s.betas[1].item())
    nll_interior = -math.log(phi(1 / 255 / std) - phi(-1 / 255 / std))
    nll_edge = -math.log(phi(1 / 255 / std))  # the end bins extend to infinity
    edges = ((x0 == 1) | (x0 == -1)).sum().item()
    l0_nats = (edges * nll_edge + (x0.numel() - edges) * nll_interior) / 4
    assert result.terms_bpd[0].item() == pytest.approx(l0_nats / (9 * math.log(2)), rel=1e-9)
    assert result.total_bpd == pytest.approx(result.prior_bpd + result.terms_bpd[0].item(), rel=1e-12)


def test_elbo_stride_weights_and_bad_input():
    s = make_schedule("linear", 100)
    x0 = (torch.randint(0, 256, (8, 1, 4, 4)) / 255 * 2 - 1)
    zero = lambda x, t, y: torch.zeros_like(x)  # noqa: E731
    full = elbo(zero, s, x0, generator=torch.Generator().manual_seed(0))
    assert full.t.tolist() == list(range(1, 101)) and (full.terms_bpd > 0).all()
    strided = [elbo(zero, s, x0, t_stride=10, generator=torch.Generator().manual_seed(k)) for k in range(8)]
    for result in strided:  # t = 1, then one t drawn in each span 2..11, 12..21, ..., 92..100
        assert len(result.t) == 11 and result.t[0] == 1
        assert all(2 + 10 * i <= t <= min(11 + 10 * i, 100) for i, t in enumerate(result.t[1:].tolist()))
    mean_total = sum(r.total_bpd for r in strided) / len(strided)
    assert mean_total == pytest.approx(full.total_bpd, rel=0.15)  # stratified sampling is unbiased
    with pytest.raises(ValueError, match="allowed: beta, beta_tilde"):
        elbo(zero, s, x0, variance="learned")
    with pytest.raises(ValueError, match=r"t_stride must be a whole number from 1 to 100"):
        elbo(zero, s, x0, t_stride=0)


@pytest.mark.parametrize("t_stride", [1, 7])
def test_elbo_stream_partials_are_prefixes_of_the_result(t_stride):
    s = make_schedule("linear", 100)
    x0 = (torch.randint(0, 256, (4, 1, 3, 3), generator=torch.Generator().manual_seed(0)) / 255 * 2 - 1)
    calls = []

    def half(x, t, y):  # a poor x0-predictor, so that every term is positive
        calls.append(int(t[0]))
        return 0.5 * x

    partials = list(elbo_stream(half, s, x0, "x0", t_stride=t_stride, generator=torch.Generator().manual_seed(1)))
    final = elbo(half, s, x0, "x0", t_stride=t_stride, generator=torch.Generator().manual_seed(1))
    last = partials[-1]
    assert torch.equal(last.t, final.t) and torch.equal(last.terms_bpd, final.terms_bpd)
    assert (last.prior_bpd, last.total_bpd, last.n) == (final.prior_bpd, final.total_bpd, final.n)
    n = len(final.t)
    assert len(partials) == n == final.n == 1 + math.ceil(99 / t_stride) and len(calls) == 2 * n  # streamed, drained
    assert calls[:n] == final.t.tolist()  # one model call per partial, in the order of t
    spans = torch.tensor([1] + [min(t_stride, 101 - start) for start in range(2, 101, t_stride)], dtype=torch.float64)
    for k, part in enumerate(partials, start=1):
        assert len(part.t) == k and part.n == n and part.complete == (k == n)
        assert torch.equal(part.t, final.t[:k]) and torch.equal(part.terms_bpd, final.terms_bpd[:k])
        assert part.prior_bpd == final.prior_bpd
        assert part.total_bpd == pytest.approx(part.prior_bpd + float((spans[:k] * part.terms_bpd).sum()), rel=1e-12)
    totals = [part.total_bpd for part in partials]
    assert all(a < b for a, b in zip(totals, totals[1:]))  # every term is a KL or a negative log-likelihood > 0


def test_elbo_stream_validates_before_any_model_call():
    s = make_schedule("linear", 100)
    calls = []
    model = lambda x, t, y: calls.append(t) or x  # noqa: E731
    for kwargs, match in [(dict(t_stride=101), "t_stride must be a whole number from 1 to 100"),
                          (dict(variance="learned"), "allowed: beta, beta_tilde"),
                          (dict(objective="score"), "allowed: eps, x0, v")]:
        with pytest.raises(ValueError, match=match):
            elbo_stream(model, s, torch.zeros(1, 4), **kwargs)
    assert calls == []
