"""UNet for small images (28x28 grey, 32x32 colour), plus the conventions every net here shares.

Net contract (all nets in `explorer.nets`): `net(x_t, s, y=None) -> tensor shaped like x_t`, where
- `s` is a float tensor (B,) holding the continuous time t/T in (0, 1] (the caller divides the integer timestep by
  T, so nets are T-agnostic); it is embedded as sinusoidal features of 1000*s (Transformer positional encoding,
  Vaswani et al. 2017 section 3.5, as used by DDPM); a single value (shape () or (1,)) shared by the batch is
  accepted too and is cheaper, the embedding being computed once (as when sampling);
- `y` is a LongTensor (B,) of class labels in 0..num_classes, where the value `num_classes` (`net.null_label`) is
  the learned null class of classifier-free guidance (Ho & Salimans 2022); `y=None` means "all null". An
  unconditional net (num_classes=0) accepts only y=None or all zeros (= its null label).
Nets know nothing of schedules or objectives: the output is whatever the trainer taught them (eps, x0 or v).

Architecture (DDPM, Ho et al. 2020, appendix B, trimmed for a 2-core CPU):
- time: sinusoidal features -> Linear -> SiLU -> Linear; a class embedding (index num_classes = null) is added;
  SiLU is applied once and each residual block projects the result;
- residual blocks: GroupNorm -> SiLU -> conv3x3 -> (+ embedding, or scale/shift of the next norm as in improved
  DDPM, Nichol & Dhariwal 2021) -> GroupNorm -> SiLU -> dropout -> conv3x3, plus a 1x1 skip when channels change:
  one GroupNorm per conv;
- encoder: `num_res_blocks` blocks per level; a strided 3x3 conv downsamples and changes the width;
- bottom: multi-head self-attention (F.scaled_dot_product_attention) only at the lowest resolution;
- decoder: nearest-neighbour upsampling concatenated with the encoder output of that level; the first block of
  the level fuses both (no separate upsampling conv: fewer, wider convs);
- output: GroupNorm -> SiLU -> conv3x3, zero-initialised so the untrained net predicts 0.
Sizes: H and W must divide by 2**(levels - 1) (28 -> 14 -> 7 with 3 levels); there is no padding.

Presets (`UNET_PRESETS`; the `UNetConfig()` default is "small", for class-conditional Fashion-MNIST), measured
with `explorer.nets.count_parameters` / `count_flops` (2 FLOPs per multiply-add of convs, matmuls, attention)
for one image, 10 classes:

| preset          | channels       | blocks/level | params    | FLOPs 1x28x28 | FLOPs 3x32x32 |
|-----------------|----------------|--------------|-----------|---------------|---------------|
| tiny (tests)    | (8, 16, 32)    | 1            | 75,249    | 16.6 M        | 22.3 M        |
| lean            | (32, 64, 128)  | 1            | 1,181,889 | 0.263 G       | 0.346 G       |
| small (default) | (32, 64, 128)  | 2            | 2,074,305 | 0.437 G       | 0.572 G       |
| base            | (64, 128, 256) | 2            | 8,275,329 | 1.74 G        | 2.28 G        |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from explorer.checks import Config, flag, number, whole


class SinusoidalEmbedding(nn.Module):
    """Features sin/cos(1000 s * 10000^(-i/half)) of the continuous time s = t/T (Vaswani et al. 2017, 3.5)."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        angles = 1000.0 * s.float()[:, None] * self.freqs[None, :]  # (B, half)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


class ConditionalNet(nn.Module):
    """Base of the nets: time embedding of s plus the class embedding with its null class (index num_classes)."""

    def __init__(self, num_classes: int, time_features: int, emb_dim: int):
        super().__init__()
        self._num_classes = num_classes
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(time_features),
            nn.Linear(time_features, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        # Classifier-free guidance (Ho & Salimans 2022): row num_classes is the learned null class.
        self.class_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def null_label(self) -> int:
        return self._num_classes

    def embed(self, s: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Time embedding of s plus class embedding of y: shape (B, D), or (1, D) when one s is shared and y=None.

        `s` holds B values, or one value shared by the batch (shape () or (1,)), which is cheaper: the embedding is
        then computed once and broadcast, as when sampling.
        """
        s = s.reshape(-1)
        if s.shape[0] not in (1, batch):
            raise ValueError(f"s must hold {batch} values (or one shared value), got shape {tuple(s.shape)}")
        if y is not None and tuple(y.shape) != (batch,):
            raise ValueError(f"y must have shape ({batch},), got {tuple(y.shape)}")
        emb = self.time_embed(s)
        checking = not torch.compiler.is_compiling()  # value checks need a host sync: skipped in compiled graphs
        if self.class_embed is None:
            if y is not None and checking and bool((y != 0).any()):
                raise ValueError(
                    "this net is unconditional (num_classes=0): pass y=None or the null label 0, "
                    f"got labels {sorted(set(y.tolist()))[:10]}"
                )
            return emb
        if y is None:
            y = torch.full((1,), self.null_label, dtype=torch.long, device=emb.device)
        elif checking and bool(((y < 0) | (y > self.null_label)).any()):
            raise ValueError(
                f"labels must lie in 0..{self.null_label} (0..{self.null_label - 1} are classes, "
                f"{self.null_label} is the null class), got {sorted(set(y.tolist()))[:10]}"
            )
        return emb + self.class_embed(y)


@dataclass
class UNetConfig(Config):
    """UNet hyper-parameters; the defaults are the "small" preset for class-conditional Fashion-MNIST."""

    in_channels: int = 1
    image_size: int = 28
    channels: tuple[int, ...] = (32, 64, 128)  # width per resolution level
    num_res_blocks: int = 2  # residual blocks per level, in the encoder and again in the decoder
    attention: bool = True  # self-attention at the lowest resolution
    attention_heads: int = 4
    dropout: float = 0.0
    num_classes: int = 10  # 0 = unconditional
    norm_groups: int = 8  # GroupNorm groups; every width must divide by it
    scale_shift: bool = True  # embedding as scale/shift of the second norm (else added after the first conv)

    def __post_init__(self):
        if not isinstance(self.channels, (list, tuple)):
            raise ValueError(f"channels must be a list or tuple of widths, e.g. (32, 64, 128), got {self.channels!r}")
        self.channels = tuple(whole("each of channels", c, 1) for c in self.channels)
        self.in_channels = whole("in_channels", self.in_channels, 1)
        whole("number of levels len(channels)", len(self.channels), 1, 6)
        self.norm_groups = whole("norm_groups", self.norm_groups, 1)
        for c in self.channels:
            if c % self.norm_groups:
                raise ValueError(f"channels {self.channels} must all divide by norm_groups={self.norm_groups}")
        if self.channels[0] % 2:
            raise ValueError(f"channels[0] (the time-feature width) must be even, got {self.channels[0]}")
        factor = 2 ** (len(self.channels) - 1)
        self.image_size = whole("image_size", self.image_size, 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} must divide by 2**(levels-1) = {factor} for {len(self.channels)} levels"
            )
        self.num_res_blocks = whole("num_res_blocks", self.num_res_blocks, 1)
        flag("attention", self.attention)
        self.attention_heads = whole("attention_heads", self.attention_heads, 1)
        if self.channels[-1] % self.attention_heads:
            raise ValueError(
                f"channels[-1]={self.channels[-1]} must divide by attention_heads={self.attention_heads}"
            )
        self.dropout = number("dropout", self.dropout, 0.0, 1.0, open_high=True)
        self.num_classes = whole("num_classes", self.num_classes, 0)
        flag("scale_shift", self.scale_shift)


UNET_PRESETS = {
    "tiny": UNetConfig(channels=(8, 16, 32), num_res_blocks=1, attention_heads=2, norm_groups=4),
    "lean": UNetConfig(num_res_blocks=1),  # 0.6x the arithmetic of "small" (speeds: bench/results/speed.md)
    "small": UNetConfig(),
    "base": UNetConfig(channels=(64, 128, 256), num_res_blocks=2, dropout=0.1),
}


class ResBlock(nn.Module):
    """DDPM residual block (Ho et al. 2020, appendix B); optional scale/shift norm (Nichol & Dhariwal 2021)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float, scale_shift: bool):
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out if scale_shift else c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(emb)[:, :, None, None]  # (B, C or 2C, 1, 1)
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Pre-norm multi-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C); a view in channels_last
        qkv = self.qkv(tokens).view(B, H * W, 3, self.heads, C // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, HW, C/heads)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, H * W, C)
        return x + self.proj(out).transpose(1, 2).reshape(B, C, H, W)  # channels_last-strided view


class UNet(ConditionalNet):
    """Lean DDPM-style UNet; see the module docstring for the layout and the presets' sizes."""

    def __init__(self, config: UNetConfig | None = None):
        config = config or UNetConfig()
        c = config.channels
        emb_dim = 4 * c[0]
        super().__init__(config.num_classes, c[0], emb_dim)
        self.config = config

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, config.norm_groups, config.dropout, config.scale_shift)

        n = config.num_res_blocks
        self.stem = nn.Conv2d(config.in_channels, c[0], 3, padding=1)
        self.encoder = nn.ModuleList(nn.ModuleList(block(ci, ci) for _ in range(n)) for ci in c)
        self.downsample = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1) for c_in, c_out in zip(c, c[1:])
        )
        self.attention = Attention(c[-1], config.attention_heads, config.norm_groups) if config.attention else None
        # Decoder, lowest level first; level i starts from the upsampled level i+1 concatenated with its skip.
        self.decoder = nn.ModuleList([nn.ModuleList(block(c[-1], c[-1]) for _ in range(n))])
        for i in reversed(range(len(c) - 1)):
            fuse = block(c[i + 1] + c[i], c[i])
            self.decoder.append(nn.ModuleList([fuse] + [block(c[i], c[i]) for _ in range(n - 1)]))
        self.out_norm = nn.GroupNorm(config.norm_groups, c[0])
        self.out_conv = nn.Conv2d(c[0], config.in_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.config.in_channels, self.config.image_size, self.config.image_size)

    def forward(self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        factor = 2 ** (len(self.config.channels) - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must divide by {factor} for this UNet")
        emb = F.silu(self.embed(s, y, x.shape[0]))
        h = self.stem(x)
        skips = []
        for i, blocks in enumerate(self.encoder):
            if i:
                h = self.downsample[i - 1](h)
            for blk in blocks:
                h = blk(h, emb)
            skips.append(h)
        skips.pop()  # the lowest level feeds the bottom directly
        if self.attention is not None:
            h = self.attention(h)
        for i, blocks in enumerate(self.decoder):
            if i:
                h = torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, emb)
        return self.out_conv(F.silu(self.out_norm(h)))
