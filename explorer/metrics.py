"""Sample-quality metrics.

- Two-sample distances for the 2D toys (energy distance, sliced Wasserstein): generated points against data.
  Both are 0 for identical distributions and grow as the two clouds separate; estimated from finite samples,
  compare a value with the data-vs-data floor (the same distance between two fresh draws of the data):
  `toy_distances` and `toy_floor` give both for a toy of explorer.data.
- Reference-classifier metrics for images (explorer.classifier, trained by scripts/train_classifier.py): cFID,
  the Frechet distance between the classifier's penultimate features of two image sets, and class accuracy,
  the share of class-conditional samples the classifier labels as the class asked for; plus
  `generate_samples`, which draws class-balanced samples from a checkpoint in batches (explorer.samplers).
"""
from __future__ import annotations

import torch
from torch import nn

from explorer.data import sample_toy_class
from explorer.samplers import run, sample

TOY_DATA_SEED = 10_000  # fresh toy data for the distances; the floor's pairs use TOY_DATA_SEED + 1, + 2, ...
TOY_FLOOR_PAIRS = 3  # pairs of fresh draws the data-vs-data floor averages over


# --------------------------------------------------------------------------- two-sample distances (2D toys)


def _check_pair(x: torch.Tensor, y: torch.Tensor, least: int) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < least:
        raise ValueError(f"need two point sets [N, D] and [M, D] of one D with N, M >= {least}, "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")


def _sum_of_distances(a: torch.Tensor, b: torch.Tensor, rows: int = 1024) -> float:
    """sum_{i, j} |a_i - b_j| over all pairs, float64, `rows` rows of a at a time (memory rows x len(b))."""
    return sum(float(torch.cdist(part, b).sum()) for part in a.split(rows))


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance between the distributions of point sets x [N, D] and y [M, D] (Szekely & Rizzo 2013):

        D^2(P, Q) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|

    estimated without bias (a U-statistic: the within-set means skip the i = j pairs), so its expectation is the
    population value: 0 when x and y come from one distribution (estimates then scatter around 0 and can be
    slightly negative), > 0 otherwise. Computed in float64 in slices; O((N + M)^2) distances.
    """
    _check_pair(x, y, 2)
    x, y = x.detach().to(torch.float64), y.detach().to(torch.float64)
    n, m = len(x), len(y)
    between = _sum_of_distances(x, y) / (n * m)
    within_x = _sum_of_distances(x, x) / (n * (n - 1))  # the diagonal |x_i - x_i| = 0 adds nothing
    within_y = _sum_of_distances(y, y) / (m * (m - 1))
    return 2 * between - within_x - within_y


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    """Sliced 2-Wasserstein distance between the empirical distributions of x [N, D] and y [M, D]:

        SW_2(P, Q) = ( E_theta W_2^2(theta . X, theta . Y) )^(1/2),  theta uniform on the unit sphere

    averaged over `n_projections` random directions (from `generator`). Each 1D W_2^2 is exact for the two
    empirical distributions, int_0^1 |F^-1(u) - G^-1(u)|^2 du over the merged quantile levels, so N and M may
    differ. For N(0, I) against N(mu, I) the population value is |mu| / sqrt(D). float64.
    """
    _check_pair(x, y, 1)
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive int, got {n_projections!r}")
    x, y = x.detach().to(torch.float64), y.detach().to(torch.float64)
    theta = torch.randn(n_projections, x.shape[1], generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=1, keepdim=True)
    xs, ys = (x @ theta.T).sort(0).values, (y @ theta.T).sort(0).values  # (N, P), (M, P) sorted projections
    n, m = len(x), len(y)
    levels = torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                        torch.arange(1, m + 1, dtype=torch.float64) / m]).sort().values
    lower = torch.cat([levels.new_zeros(1), levels[:-1]])
    middle = (lower + levels) / 2  # inside each interval both quantile functions are constant
    ix = (middle * n).floor().long().clamp(max=n - 1)
    iy = (middle * m).floor().long().clamp(max=m - 1)
    w2 = ((levels - lower)[:, None] * (xs[ix] - ys[iy]).square()).sum(0)  # (P,): W_2^2 per direction
    return float(w2.mean().sqrt())


def toy_distances(name: str, x: torch.Tensor, label: int | None = None, seed: int = TOY_DATA_SEED,
                  n_projections: int = 256) -> tuple[float, float]:
    """(energy distance, sliced W2) of points x [N, 2] to N fresh points of the toy `name` (of class `label`, or
    all classes for None; explorer.data.sample_toy_class) drawn from `seed`; the sliced distance's directions
    come from seed 0, so the same x always gives the same numbers."""
    x = x.detach().float().cpu()
    ref = sample_toy_class(name, len(x), label, seed)
    return energy_distance(x, ref), sliced_wasserstein(x, ref, n_projections, torch.Generator().manual_seed(0))


def toy_floor(name: str, n: int, label: int | None = None, pairs: int = TOY_FLOOR_PAIRS, seed: int = TOY_DATA_SEED,
              n_projections: int = 256) -> tuple[float, float]:
    """The data-vs-data floor of `toy_distances` for n points: the mean |energy distance| and the mean sliced W2
    between the two draws of n fresh points in each of `pairs` pairs (seeds seed + 1 and + 2, + 3 and + 4, ...),
    what sampling noise alone gives two samples of that size. The energy distance is unbiased, so between two
    draws of the data it scatters around 0 and the floor is its mean absolute value."""
    energy = sliced = 0.0
    for i in range(pairs):
        a, b = (sample_toy_class(name, n, label, seed + 2 * i + k) for k in (1, 2))
        energy += abs(energy_distance(a, b))
        sliced += sliced_wasserstein(a, b, n_projections, torch.Generator().manual_seed(0))
    return energy / pairs, sliced / pairs


# --------------------------------------------------------------------- reference-classifier metrics (images)
# cFID is FID (Heusel et al. 2017) with the Inception network replaced by explorer.classifier's small CNN:
# the Frechet distance between Gaussians fitted to its penultimate features of two image sets. Its scale is
# the classifier's, so a cFID means little alone: compare it with the real-vs-real floor, the cFID between two
# disjoint real sets of the same size (it is > 0: the estimate is biased upward by about tr(C) / N terms).


@torch.no_grad()
def classifier_features(classifier: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The classifier's penultimate features of `images` ([N, C, H, W] in [-1, 1]): float64 [N, D] on the CPU,
    computed in batches on the classifier's device."""
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(xb.to(device, torch.float32)).double().cpu()
                      for xb in images.split(batch_size)])


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and unbiased covariance [D, D] (divided by N - 1) of features [N, D], in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must have shape [N, D] with N >= 2, got {tuple(features.shape)}")
    f = features.to(torch.float64)
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below 0 are rounding)."""
    evals, evecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (evecs * evals.clamp(min=0).sqrt()) @ evecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2), in float64:

        |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2)      (Dowson & Landau 1982)

    The trace term uses the symmetric PSD matrix C1^1/2 C2 C1^1/2 (same eigenvalues as C1 C2), so both square
    roots come from `eigh`, with no complex eigenvalues and no scipy; the result is clamped at 0.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(a, dtype=torch.float64) for a in (mu1, mu2, cov1, cov2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"need means [D] and covariances [D, D] of one D; got {tuple(mu1.shape)}, "
                         f"{tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return max(float(diff @ diff + cov1.trace() + cov2.trace() - 2 * trace_sqrt), 0.0)


def cfid(classifier: nn.Module, images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 500) -> float:
    """Classifier FID between two image sets: the Frechet distance of their penultimate-feature Gaussians."""
    stats_a = feature_stats(classifier_features(classifier, images_a, batch_size))
    stats_b = feature_stats(classifier_features(classifier, images_b, batch_size))
    return frechet_distance(*stats_a, *stats_b)


@torch.no_grad()
def class_accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Share of `images` that the classifier labels as `labels` (for samples: the class they were asked for)."""
    if labels.shape != (images.shape[0],):
        raise ValueError(f"need one label per image, got {tuple(labels.shape)} for {images.shape[0]} images")
    device = next(classifier.parameters()).device
    predicted = torch.cat([classifier(xb.to(device, torch.float32)).argmax(1).cpu() for xb in images.split(batch_size)])
    return float((predicted == labels.cpu()).double().mean())


def balanced_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n indices into `labels`, drawn without replacement, n // K of each of the K classes (the first n % K
    classes get one more), sorted; deterministic for a seed."""
    classes = labels.unique().tolist()
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for i, c in enumerate(classes):
        pool = (labels == c).nonzero().flatten()
        want = n // len(classes) + (i < n % len(classes))
        if want > len(pool):
            raise ValueError(f"class {c} has {len(pool)} examples, fewer than the {want} asked for")
        chosen.append(pool[torch.randperm(len(pool), generator=g)[:want]])
    return torch.cat(chosen).sort().values


def to_8bit_grid(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [-1, 1] and round to the 256 levels of an 8-bit image (as saving a sample as PNG would)."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


_SET_BY_GENERATE = ("model", "schedule", "x_T", "y", "objective", "generator")


@torch.no_grad()
def generate_samples(model, n: int, sampler: dict | None = None, batch_size: int = 250,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples of a diffusion model (as from explorer.checkpoint.load_model), in batches.

    `sampler` holds keyword arguments of explorer.samplers.sample (method, steps, eta, variance, guidance, ...),
    validated there. A conditional model gets the class-balanced labels i % num_classes; an unconditional one
    none. x_T and the sampler's noise come from one generator seeded with `seed`, so two sampler configs see
    the same starting noise. Returns (images float32 [n, *sample_shape] on the CPU, on the 8-bit grid of
    `to_8bit_grid`; labels int64 [n] or None).
    """
    options = dict(sampler or {})
    clash = [k for k in _SET_BY_GENERATE if k in options]
    if clash:
        raise ValueError(f"sampler options may not set {', '.join(clash)}; generate_samples sets them")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    device = next(model.parameters()).device
    g = torch.Generator(device).manual_seed(seed)
    labels = torch.arange(n) % model.num_classes if model.num_classes else None
    images = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        x_T = torch.randn((size, *model.sample_shape), generator=g, device=device)
        y = None if labels is None else labels[start:start + size].to(device)
        x0 = run(sample(model, model.schedule, x_T, objective=model.objective, y=y, generator=g, **options))
        images.append(to_8bit_grid(x0.float()).cpu())
    return torch.cat(images), labels
