"""Networks: shapes, the label/null-class contract, config round trips, memory formats, FLOP counting."""

import dataclasses
import json

import pytest
import torch

from explorer.nets import (
    MLP,
    UNET_PRESETS,
    MLPConfig,
    UNet,
    UNetConfig,
    build_net,
    count_flops,
    count_parameters,
)

TINY = UNET_PRESETS["tiny"]


def perturbed(net):
    """The net with its zero-initialised output layer randomised, so outputs depend on every input."""
    torch.manual_seed(0)
    last = net.out_conv if isinstance(net, UNet) else net.out
    torch.nn.init.normal_(last.weight, std=0.1)
    torch.nn.init.normal_(last.bias, std=0.1)
    return net.eval()


@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32), (1, 32), (3, 28)])
def test_unet_output_shape(in_channels, size):
    net = UNet(dataclasses.replace(TINY, in_channels=in_channels, image_size=size))
    x = torch.randn(2, in_channels, size, size)
    assert net(x, torch.rand(2), torch.tensor([3, net.null_label])).shape == x.shape
    assert net.sample_shape == (in_channels, size, size)


def test_unet_starts_at_zero_and_mlp_too():
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(UNet(TINY)(x, torch.rand(3)), torch.zeros_like(x))
    p = torch.randn(5, 2)
    assert torch.equal(MLP()(p, torch.rand(5)), torch.zeros_like(p))


def test_mlp_output_shape():
    net = MLP(MLPConfig(num_classes=2))
    x = torch.randn(7, 2)
    assert net(x, torch.rand(7), torch.randint(0, 3, (7,))).shape == (7, 2)
    assert net.sample_shape == (2,)
    assert (net.num_classes, net.null_label) == (2, 2)


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_conditional_differs_from_null(kind):
    if kind == "unet":
        net, x = perturbed(UNet(TINY)), torch.randn(4, 1, 28, 28)
    else:
        net, x = perturbed(MLP(MLPConfig(num_classes=3))), torch.randn(4, 2)
    s = torch.rand(4)
    with torch.no_grad():
        null = net(x, s)
        assert torch.equal(null, net(x, s, torch.full((4,), net.null_label)))
        assert not torch.allclose(net(x, s, torch.tensor([0, 1, 2, 0])), null)


def test_shared_time_broadcasts_like_per_item_time():
    net, x = perturbed(UNet(TINY)), torch.randn(3, 1, 28, 28)
    y = torch.tensor([1, 2, net.null_label])
    with torch.no_grad():
        torch.testing.assert_close(net(x, torch.tensor(0.3), y), net(x, torch.full((3,), 0.3), y))
    with pytest.raises(ValueError, match="s must hold 3 values"):
        net(x, torch.rand(2))


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_unconditional_net_rejects_real_labels(kind):
    if kind == "unet":
        net, x = perturbed(UNet(dataclasses.replace(TINY, num_classes=0))), torch.randn(2, 1, 28, 28)
    else:
        net, x = perturbed(MLP(MLPConfig(num_classes=0))), torch.randn(2, 2)
    s = torch.rand(2)
    assert (net.num_classes, net.null_label) == (0, 0)
    with torch.no_grad():
        assert torch.equal(net(x, s, torch.zeros(2, dtype=torch.long)), net(x, s))
    with pytest.raises(ValueError, match="unconditional"):
        net(x, s, torch.tensor([0, 1]))


def test_labels_out_of_range_rejected():
    net, x, s = UNet(TINY), torch.randn(2, 1, 28, 28), torch.rand(2)
    for bad in ([-1, 0], [0, net.null_label + 1]):
        with pytest.raises(ValueError, match="labels must lie in 0..10"):
            net(x, s, torch.tensor(bad))
    with pytest.raises(ValueError, match="y must have shape"):
        net(x, s, torch.tensor([1]))


def test_unet_rejects_sizes_that_do_not_halve():
    net = UNet(TINY)
    with pytest.raises(ValueError, match="divide by 4"):
        net(torch.randn(1, 1, 30, 30), torch.rand(1))
    with pytest.raises(ValueError, match="image_size 30 must divide by"):
        UNetConfig(image_size=30)


@pytest.mark.parametrize("config", [UNetConfig(), TINY, MLPConfig(hidden=64, num_classes=5)], ids=str)
def test_config_round_trip(config):
    d = config.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert type(config).from_dict(d) == config


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown UNetConfig keys \\['colour'\\]"):
        UNetConfig.from_dict({**UNetConfig().to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="unknown MLPConfig keys"):
        MLPConfig.from_dict({"width": 3})
    bad = [
        dict(channels=(30, 64)),  # not divisible by norm_groups=8
        dict(num_res_blocks=0),
        dict(dropout=1.0),
        dict(attention="yes"),
        dict(attention_heads=3),
        dict(num_classes=-1),
        dict(in_channels=True),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            UNetConfig(**kwargs)
    with pytest.raises(ValueError, match="hidden must be even"):
        MLPConfig(hidden=65)


def test_channels_last_equals_contiguous():
    net = perturbed(UNet(dataclasses.replace(TINY, in_channels=3, image_size=32)))
    x, s, y = torch.randn(4, 3, 32, 32), torch.rand(4), torch.tensor([0, 5, 9, 10])
    with torch.no_grad():
        ref = net(x, s, y)
        out = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), s, y)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_count_flops_scales_with_batch():
    net = UNet(TINY)
    f1 = count_flops(net, torch.randn(2, 1, 28, 28), torch.rand(2))
    f2 = count_flops(net, torch.randn(4, 1, 28, 28), torch.rand(4))
    assert isinstance(f1, int) and f1 > 0
    assert 1.9 < f2 / f1 < 2.1
    assert count_flops(MLP(), torch.randn(10, 2), torch.rand(10)) > 0


def test_count_flops_exact_for_a_conv_and_a_linear():
    """2 FLOPs per multiply-add: a 3x3 conv C_in -> C_out on H x W costs 2 * B * H * W * C_out * C_in * 9."""

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 5, 3, padding=1)
            self.fc = torch.nn.Linear(7, 11)

        def forward(self, x, s, y=None):
            return self.conv(x), self.fc(s)

    B, H, W = 2, 6, 4
    flops = count_flops(Two(), torch.randn(B, 3, H, W), torch.randn(B, 7))
    assert flops == 2 * B * H * W * 5 * 3 * 9 + 2 * B * 7 * 11


def test_build_net():
    net = build_net("unet", TINY.to_dict())
    assert isinstance(net, UNet) and net.config == TINY
    assert count_parameters(net) == sum(p.numel() for p in net.parameters()) > 0
    assert isinstance(build_net("mlp", {}), MLP)
    with pytest.raises(ValueError, match="allowed: \\['mlp', 'unet'\\]"):
        build_net("resnet", {})


def test_presets_build_as_documented():
    """Every preset builds, with the parameter count and FLOPs of the table in explorer/nets/unet.py."""
    import explorer.nets.unet as unet_module
    table = {row[0].split()[0]: row for row in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in unet_module.__doc__.splitlines()
        if line.startswith("| ") and "preset" not in line)}
    assert set(table) == set(UNET_PRESETS)
    for name, config in UNET_PRESETS.items():
        net = UNet(config)
        assert net.config == config, name
        params, gflops = int(table[name][3].replace(",", "")), float(table[name][4].rstrip(" MG"))
        scale = 1e6 if table[name][4].endswith("M") else 1e9
        flops = count_flops(net, torch.randn(1, 1, 28, 28), torch.full((1,), 0.5), torch.zeros(1, dtype=torch.long))
        assert count_parameters(net) == params, name
        assert flops / scale == pytest.approx(gflops, abs=0.0051 if scale == 1e9 else 0.051), name
