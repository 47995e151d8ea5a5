"""The frequency view of the forward process (seed 002, "Connection with frequency and destruction").

The noise eps ~ N(0, I) is white: its power is the same at every spatial frequency. Natural images put most
of their power at low frequencies (roughly P(f) ~ 1 / f^2). Since x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
the expected power spectrum of x_t is

    E P_{x_t}(f) = alpha_bar_t P_0(f) + (1 - alpha_bar_t)      (white-noise floor of height 1 - alpha_bar_t)

so high frequencies, where alpha_bar_t P_0(f) is small, are drowned first and the crossover frequency, where the
scaled signal meets the floor, moves down as t grows.

The power at each frequency is |FFT|^2 / (H W), normalised so that N(0, 1) white noise has power 1.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from explorer.schedules import NoiseSchedule


@lru_cache(maxsize=16)
def _radial_bins(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Integer radial bin k = round(|f| * n) per FFT coefficient (n = max(h, w)), for k = 1..n // 2."""
    n = max(h, w)
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).view(1, -1)
    k = torch.round(torch.sqrt(fx ** 2 + fy ** 2) * n).long().flatten()
    kmax = min(h, w) // 2
    keep = (k >= 1) & (k <= kmax)  # drop the mean (k = 0) and the corners beyond the Nyquist circle
    return k[keep], keep, kmax


def radial_power_spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum of an image or a batch (..., H, W), averaged over the leading dims.

    Returns (freqs, power): frequencies k / max(H, W) in cycles per pixel for k = 1..min(H, W) // 2, and the
    mean power in each ring (float64).
    """
    if x.ndim < 2 or min(x.shape[-2:]) < 4:
        raise ValueError(f"need images of at least 4x4 pixels, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    power = torch.fft.fft2(x.double()).abs().pow(2).reshape(-1, h * w).mean(0) / (h * w)
    k, keep, kmax = _radial_bins(h, w)
    sums = torch.bincount(k - 1, weights=power[keep.to(power.device)].cpu(), minlength=kmax)
    counts = torch.bincount(k - 1, minlength=kmax)
    freqs = torch.arange(1, kmax + 1, dtype=torch.float64) / max(h, w)
    return freqs, sums / counts


def noise_floor(schedule: NoiseSchedule, t: int) -> float:
    """Power of the noise part of x_t at every frequency: 1 - alpha_bar_t."""
    return float(1 - schedule.alpha_bars[t])


def signal_power(schedule: NoiseSchedule, t: int, power0: torch.Tensor) -> torch.Tensor:
    """Power of the signal part of x_t: alpha_bar_t P_0(f)."""
    return schedule.alpha_bars[t] * power0


def crossover_frequency(schedule: NoiseSchedule, t: int, freqs: torch.Tensor, power0: torch.Tensor) -> float | None:
    """The lowest frequency at which the scaled signal alpha_bar_t P_0(f) falls to the noise floor, interpolated
    log-linearly between rings; every frequency above it is (at least partly) drowned in noise.

    Returns None when the signal stays above the floor at all frequencies (t = 0, or very small t), and the
    lowest frequency when even that is already below the floor.
    """
    floor = noise_floor(schedule, t)
    if floor <= 0:
        return None
    signal = signal_power(schedule, t, power0)
    below = (signal <= floor).nonzero()
    if len(below) == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(freqs[0])
    s0, s1 = math.log(signal[i - 1]), math.log(max(float(signal[i]), 1e-300))
    f0, f1 = math.log(freqs[i - 1]), math.log(freqs[i])
    frac = (s0 - math.log(floor)) / (s0 - s1) if s0 != s1 else 1.0
    return math.exp(f0 + frac * (f1 - f0))
