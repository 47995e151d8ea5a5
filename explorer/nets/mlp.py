"""Residual MLP for 2D toy points (B, 2), with the same contract as the UNet: `net(x_t, s, y=None)`.

`s` = t/T in (0, 1] is embedded as sinusoidal features of 1000*s; `y` holds labels 0..num_classes with
`num_classes` the null class of classifier-free guidance, `y=None` meaning all null (see `explorer.nets.unet`).
Layout: Linear in -> `num_blocks` x [h + W2 SiLU(W1 SiLU(h) + E_i emb)] -> SiLU -> Linear out (zero-initialised).
All blocks' embedding projections E_i are one matmul.

Default (hidden 64, 3 blocks, 46 k parameters): a forward of 2000 points takes about 2 ms on a 2-core AVX2 CPU
with one s shared by the batch (as when sampling; the embedding is then computed once) and about 4.5 ms with one
s per point (as in training). Hidden 128 is about 2.5 times slower (the matmuls dominate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from explorer.checks import Config, whole
from explorer.nets.unet import ConditionalNet


@dataclass
class MLPConfig(Config):
    """MLP hyper-parameters."""

    dim: int = 2  # data dimension
    hidden: int = 64  # width of every layer (even: it is also the time-feature width)
    num_blocks: int = 3  # residual blocks
    num_classes: int = 0  # 0 = unconditional

    def __post_init__(self):
        self.dim = whole("dim", self.dim, 1)
        self.hidden = whole("hidden", self.hidden, 2)
        if self.hidden % 2:
            raise ValueError(f"hidden must be even, got {self.hidden}")
        self.num_blocks = whole("num_blocks", self.num_blocks, 1)
        self.num_classes = whole("num_classes", self.num_classes, 0)


class ResMLPBlock(nn.Module):
    """h + W2 SiLU(W1 SiLU(h) + e): a pre-activation residual block with the embedding added in the middle."""

    def __init__(self, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(F.silu(self.fc1(F.silu(h)) + e))


class MLP(ConditionalNet):
    """Residual MLP denoiser for low-dimensional points."""

    def __init__(self, config: MLPConfig | None = None):
        config = config or MLPConfig()
        super().__init__(config.num_classes, config.hidden, config.hidden)
        self.config = config
        self.inp = nn.Linear(config.dim, config.hidden)
        self.emb_proj = nn.Linear(config.hidden, config.hidden * config.num_blocks)
        self.blocks = nn.ModuleList(ResMLPBlock(config.hidden) for _ in range(config.num_blocks))
        self.out = nn.Linear(config.hidden, config.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def sample_shape(self) -> tuple[int]:
        return (self.config.dim,)

    def forward(self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.emb_proj(F.silu(self.embed(s, y, x.shape[0])))  # (B, hidden * num_blocks)
        h = self.inp(x)
        for blk, e in zip(self.blocks, emb.chunk(len(self.blocks), dim=1)):
            h = blk(h, e)
        return self.out(F.silu(h))
