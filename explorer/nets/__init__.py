"""Networks: a UNet for images and a residual MLP for 2D toys, built from a kind name and a config dict.

Every net follows one contract, `net(x_t, s, y=None) -> tensor shaped like x_t`, with `s` = t/T in (0, 1] and `y`
labels whose value `num_classes` (`net.null_label`) is the classifier-free-guidance null class; see
`explorer.nets.unet` for the details. Nets know nothing of schedules or objectives.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.nets.mlp import MLP, MLPConfig
from explorer.nets.unet import UNET_PRESETS, UNet, UNetConfig

NETS = {"unet": (UNet, UNetConfig), "mlp": (MLP, MLPConfig)}

__all__ = [
    "MLP",
    "NETS",
    "UNET_PRESETS",
    "MLPConfig",
    "UNet",
    "UNetConfig",
    "build_net",
    "count_flops",
    "count_parameters",
]


def build_net(kind: str, config_dict: dict) -> nn.Module:
    """Build the net of `kind` ("unet" or "mlp") from a config dict as written by `Config.to_dict()`."""
    if kind not in NETS:
        raise ValueError(f"unknown net kind {kind!r}; allowed: {sorted(NETS)}")
    net_cls, config_cls = NETS[kind]
    return net_cls(config_cls.from_dict(config_dict))


def count_parameters(net: nn.Module) -> int:
    """Number of parameters (weights and biases) of `net`."""
    return sum(p.numel() for p in net.parameters())


def count_flops(net: nn.Module, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor | None = None) -> int:
    """Forward FLOPs of one call net(x, s, y), counted by torch.utils.flop_counter (2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x, s, y)
    return counter.get_total_flops()
