"""The reference classifier behind the quality metrics (cFID, class accuracy): a small CNN for 28x28 images.

    >>> clf = load_classifier()                     # pretrained/fashion_classifier.safetensors
    >>> logits, feats = clf(x), clf.features(x)     # x float [N, 1, 28, 28] in [-1, 1]; feats [N, 128]

Architecture: per entry c of `channels`, conv3x3 (no bias) -> BatchNorm -> ReLU, `convs_per_stage` times, then
2x2 max-pooling (28 -> 14 -> 7 -> 3); flatten -> Linear -> ReLU gives the penultimate features (`feature_dim`,
the space cFID is measured in); dropout -> Linear gives the logits. Trained by scripts/train_classifier.py.

The file is safetensors with a JSON config in the metadata, like a diffusion checkpoint, but its "format" is
"diffusion-explorer-classifier", so explorer.checkpoint never takes it for a diffusion model (list_checkpoints
skips it). No pickle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from explorer.checkpoint import PRETRAINED_DIR, FileFormat
from explorer.checks import Config, choice, number, whole

FORMAT = "diffusion-explorer-classifier"
FORMAT_VERSION = "1"
DEFAULT_PATH = PRETRAINED_DIR / "fashion_classifier.safetensors"


class ClassifierError(ValueError):
    """A file that is not a readable reference-classifier file (the message says why)."""


@dataclass
class ImageClassifierConfig(Config):
    """What the config of any of our classifiers holds (this module's and explorer.noisy_classifier's): the images
    it reads (in_channels x image_size x image_size, from `dataset`), the names of its classes (at least 2) and the
    provenance of its training (command, wall time, accuracy, ...); a subclass adds its network's own fields and
    calls this __post_init__ first."""

    in_channels: int = 1
    image_size: int = 28
    dataset: str = "fashion-mnist"
    class_names: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)

    def __post_init__(self):
        self.in_channels = choice("in_channels", self.in_channels, (1, 3))
        if len(self.class_names) < 2:
            raise ValueError(f"a classifier needs at least 2 class names, got {self.class_names!r}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class ClassifierConfig(ImageClassifierConfig):
    """Everything needed to rebuild the classifier from its weights (`training`: command, epochs, wall time, test
    accuracy, ...)."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    convs_per_stage: int = 1
    feature_dim: int = 128
    dropout: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        self.channels = [whole("each of channels", c, 1) for c in self.channels]
        whole("number of stages len(channels)", len(self.channels), 1)
        if self.image_size >> len(self.channels) < 1:
            raise ValueError(f"image_size {self.image_size} is too small for {len(self.channels)} poolings")
        self.convs_per_stage = whole("convs_per_stage", self.convs_per_stage, 1)
        self.feature_dim = whole("feature_dim", self.feature_dim, 1)
        self.dropout = number("dropout", self.dropout, 0.0, 1.0, open_high=True)


class Classifier(nn.Module):
    """Small CNN: `features(x)` -> [N, feature_dim] penultimate activations, `forward(x)` -> [N, classes] logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers, width, size = [], config.in_channels, config.image_size
        for c in config.channels:
            for _ in range(config.convs_per_stage):
                layers += [nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                width = c
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(width * size * size, config.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # (N, C, H, W) -> (N, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


FILE = FileFormat(FORMAT, FORMAT_VERSION, ClassifierError,
                  "no such classifier file; train one with scripts/train_classifier.py",
                  "not a reference classifier (metadata format {found!r}, expected {expected!r})")


def save_classifier(path: str | os.PathLike, classifier: Classifier) -> None:
    """Write the weights (BatchNorm statistics included) with the config in the metadata, atomically."""
    FILE.save(path, classifier, classifier.config)


def load_classifier(path: str | os.PathLike = DEFAULT_PATH, device: str | torch.device = "cpu") -> Classifier:
    """Rebuild the classifier from its file alone; eval mode, no gradients. ClassifierError for a missing,
    foreign or mismatched file."""
    return FILE.load(path, lambda text: Classifier(ClassifierConfig.from_json(text)), device)
