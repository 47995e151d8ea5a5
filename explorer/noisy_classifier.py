"""A noise-aware classifier p_phi(y | x_t, t) for classifier guidance (seed 001, section 2.5; Dhariwal & Nichol 2021,
section 4), trained on noisy images x_t ~ q(x_t | x_0) by scripts/train_noisy_classifier.py.

    >>> clf = load_noisy_classifier()                    # pretrained/fashion_noisy_classifier.safetensors
    >>> logits = clf(x_t, t)                             # x_t [N, 1, 28, 28], t integer (N,) or () in 0..T

Contract (what `explorer.samplers.sample(..., classifier=...)` accepts): a callable `classifier(x_t, t) -> logits
(N, num_classes)` with the integer timestep t of the schedule it was trained on, carrying `noise_aware = True`,
`schedule` (that NoiseSchedule: p_phi(y | x_t, t) only means something for the x_t of that schedule) and
`num_classes`. t = 0 is the clean image. The net sees s = t / T, as the diffusion nets do.

Architecture: the downsampling half of the diffusion UNet, as Dhariwal & Nichol's classifier is (their section 4:
"the downsampling trunk of the UNet model"), reusing explorer.nets.unet's pieces: the sinusoidal time embedding
-> Linear -> SiLU -> Linear, a 3x3 stem, per level `num_res_blocks` residual blocks (GroupNorm, scale/shift by the
time embedding) with a strided 3x3 conv between levels; then GroupNorm -> SiLU -> global average pooling (instead
of their attention pooling) -> Linear to the logits. GroupNorm, not BatchNorm: the batch mixes all noise levels,
whose statistics differ.

It lives here, beside explorer/classifier.py, rather than in explorer/nets/: like the reference classifier it is a
network with its own file format (safetensors, JSON config in the metadata, "format":
"diffusion-explorer-noisy-classifier", so neither explorer.checkpoint nor load_classifier takes it for theirs),
and it knows its schedule, which the nets deliberately do not. No pickle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from explorer.checkpoint import PRETRAINED_DIR, FileFormat
from explorer.checks import whole
from explorer.classifier import ImageClassifierConfig
from explorer.forward import q_sample
from explorer.nets.unet import ResBlock, SinusoidalEmbedding
from explorer.schedules import NoiseSchedule, make_schedule

FORMAT = "diffusion-explorer-noisy-classifier"
FORMAT_VERSION = "1"
DEFAULT_PATH = PRETRAINED_DIR / "fashion_noisy_classifier.safetensors"


class NoisyClassifierError(ValueError):
    """A file that is not a readable noise-aware classifier file (the message says why)."""


@dataclass
class NoisyClassifierConfig(ImageClassifierConfig):
    """Everything needed to rebuild the noise-aware classifier from its weights, its schedule included
    (`training`: command, epochs, wall time, accuracy per t, ...)."""

    channels: list[int] = field(default_factory=lambda: [16, 32, 64])  # width per resolution level
    num_res_blocks: int = 1
    norm_groups: int = 8
    schedule: str = "cosine"  # the schedule (and T) of the x_t it was trained on
    T: int = 1000

    def __post_init__(self):
        super().__post_init__()
        self.channels = [whole("each of channels", c, 1) for c in self.channels]
        whole("number of levels len(channels)", len(self.channels), 1, 6)
        self.norm_groups = whole("norm_groups", self.norm_groups, 1)
        if any(c % self.norm_groups for c in self.channels) or self.channels[0] % 2:
            raise ValueError(f"channels {self.channels} must all divide by norm_groups={self.norm_groups} "
                             "and channels[0] (the time-feature width) must be even")
        self.image_size = whole("image_size", self.image_size, 2 ** (len(self.channels) - 1))
        self.num_res_blocks = whole("num_res_blocks", self.num_res_blocks, 1)
        make_schedule(self.schedule, self.T)  # validates the name and T

    def misfit(self, model_config) -> str:
        """Why this classifier cannot guide a diffusion model with `model_config` (explorer.checkpoint.ModelConfig),
        or "" when it can: p_phi(y | x_t, t) knows only the x_t of its dataset and image shape under its schedule
        (name and T), and y indexes its classes."""
        c = model_config
        mine = (self.dataset, [self.in_channels, self.image_size, self.image_size], list(self.class_names),
                self.schedule, self.T)
        theirs = (c.dataset, list(c.sample_shape), list(c.class_names), c.schedule, c.T)
        if mine == theirs:
            return ""

        def described(dataset, shape, names, schedule, T) -> str:
            return (f"{dataset} ({'×'.join(map(str, shape))}, {len(names)} classes) under the {schedule} schedule "
                    f"with T = {T}")
        renamed = " with other class names" if mine[:2] + mine[3:] == theirs[:2] + theirs[3:] else ""
        return f"it knows the x_t of {described(*mine)}; the model samples {described(*theirs)}{renamed}"


class NoisyClassifier(nn.Module):
    """p_phi(y | x_t, t): `forward(x_t, t)` -> logits (N, num_classes); see the module docstring."""

    noise_aware = True  # what explorer.samplers checks before taking a callable as p_phi(y | x_t, t)

    def __init__(self, config: NoisyClassifierConfig):
        super().__init__()
        self.config = config
        self.schedule: NoiseSchedule = make_schedule(config.schedule, config.T)
        self.class_names = list(config.class_names)
        self.num_classes = config.num_classes
        c = config.channels
        emb_dim = 4 * c[0]
        self.time_embed = nn.Sequential(SinusoidalEmbedding(c[0]), nn.Linear(c[0], emb_dim), nn.SiLU(),
                                        nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(config.in_channels, c[0], 3, padding=1)
        n = config.num_res_blocks
        self.levels = nn.ModuleList(
            nn.ModuleList(ResBlock(ci, ci, emb_dim, config.norm_groups, 0.0, True) for _ in range(n)) for ci in c)
        self.downsample = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(c, c[1:]))
        self.out_norm = nn.GroupNorm(config.norm_groups, c[-1])
        self.head = nn.Linear(c[-1], config.num_classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = torch.as_tensor(t, device=x_t.device).reshape(-1).to(x_t.dtype) / self.config.T  # nets see s = t / T
        emb = F.silu(self.time_embed(s))  # (N or 1, emb_dim)
        h = self.stem(x_t)
        for i, blocks in enumerate(self.levels):
            if i:
                h = self.downsample[i - 1](h)
            for block in blocks:
                h = block(h, emb)
        h = F.silu(self.out_norm(h)).mean(dim=(2, 3))  # global average pooling: (N, C, H, W) -> (N, C)
        return self.head(h)


@torch.no_grad()
def noisy_accuracy(classifier: NoisyClassifier, x0: torch.Tensor, y: torch.Tensor, t: int,
                   generator: torch.Generator | None = None, batch_size: int = 500) -> float:
    """The fraction of images x0 whose noised version x_t = q_sample(x0, t, eps) (seed 001, eq. 1) the classifier
    labels y, one fresh eps per image from `generator`."""
    t = whole("t", t, 0, classifier.config.T)
    correct = 0
    for xb, yb in zip(x0.split(batch_size), y.split(batch_size)):
        eps = torch.randn(xb.shape, generator=generator, dtype=xb.dtype,
                          device=generator.device if generator is not None else xb.device).to(xb.device)
        x_t = q_sample(classifier.schedule, xb, t, eps)
        correct += int((classifier(x_t, torch.tensor(t, device=xb.device)).argmax(1) == yb).sum())
    return correct / len(y)


FILE = FileFormat(FORMAT, FORMAT_VERSION, NoisyClassifierError,
                  "no such noise-aware classifier file; train one with scripts/train_noisy_classifier.py",
                  "not a noise-aware classifier (metadata format {found!r}, expected {expected!r})")


def save_noisy_classifier(path: str | os.PathLike, classifier: NoisyClassifier) -> None:
    """Write the weights with the config in the metadata, atomically."""
    FILE.save(path, classifier, classifier.config)


def load_noisy_classifier(path: str | os.PathLike = DEFAULT_PATH, device: str | torch.device = "cpu"
                          ) -> NoisyClassifier:
    """Rebuild the classifier from its file alone; eval mode, parameters frozen (guidance differentiates with
    respect to x_t only). NoisyClassifierError for a missing, foreign or mismatched file."""
    return FILE.load(path, lambda text: NoisyClassifier(NoisyClassifierConfig.from_json(text)), device)
