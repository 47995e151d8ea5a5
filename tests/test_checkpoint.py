"""Checkpoints: round trip from the file alone, clear errors for foreign, corrupted or mismatched files, and the
bf16 precision the sampling views run a UNet in."""
import json

import pytest
import torch
from safetensors.torch import save_file

from explorer.checkpoint import (DEFAULT_CHECKPOINT, CheckpointError, ModelConfig, fast_precision, list_checkpoints,
                                 load_model, native_bf16, save_model)
from explorer.nets import build_net
from explorer.samplers import run, sample


def tiny_config(**overrides):
    net_config = {"hidden": 16, "num_blocks": 1, "num_classes": 2}
    base = dict(net="mlp", net_config=net_config, schedule="cosine", T=50, objective="v", dataset="two-moons",
                sample_shape=[2], class_names=["upper", "lower"], step=7)
    return ModelConfig(**{**base, **overrides})


def saved_model(tmp_path, **overrides):
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    net = build_net(config.net, config.net_config)
    path = tmp_path / "m.safetensors"
    save_model(path, net, config)
    return path, net, config


def test_round_trip_from_file_alone(tmp_path):
    path, net, config = saved_model(tmp_path)
    model = load_model(path)
    assert model.config == config and model.objective == "v" and model.schedule.T == 50
    assert model.sample_shape == (2,) and model.class_names == ["upper", "lower"] and model.null_label == 2
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x, t = torch.randn(5, 2), torch.tensor([1, 10, 20, 30, 50])
    assert torch.equal(model(x, t), net(x, t / 50))  # the network sees s = t / T
    out = run(sample(model, model.schedule, torch.randn(4, *model.sample_shape), method="ddim", steps=5,
                     objective=model.objective, y=torch.tensor([0, 1, 0, 1]), guidance=2.0))
    assert out.shape == (4, 2) and torch.isfinite(out).all()
    assert [p.name for p, _ in list_checkpoints(tmp_path)] == ["m.safetensors"]


def test_no_temporary_files_left(tmp_path):
    saved_model(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x80\x04\x95pickle-ish bytes" * 10])
def test_not_safetensors(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"framework": "someone else"})
    with pytest.raises(CheckpointError, match="not a diffusion-explorer checkpoint"):
        load_model(path)
    assert list_checkpoints(tmp_path) == []


def test_truncated_file(tmp_path):
    path, _, _ = saved_model(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_model(path)


def test_weights_of_the_wrong_shape(tmp_path):
    path, net, config = saved_model(tmp_path)
    other = build_net("mlp", {"hidden": 32, "num_blocks": 1, "num_classes": 2})
    save_model(path, other, config)  # config says hidden=16
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_model(path)


def test_invalid_config(tmp_path):
    path, net, config = saved_model(tmp_path)
    meta = json.loads(config.to_json())
    meta["objective"] = "score"
    save_file(net.state_dict(), str(path), metadata={"format": "diffusion-explorer", "config": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="allowed: eps, x0, v"):
        load_model(path)


def test_bf16_shares_the_weights_and_moves_outputs_by_rounding_only():
    model = load_model(DEFAULT_CHECKPOINT)  # the app's default UNet
    fast = model.at_precision("bf16")
    assert model.at_precision("fp32") is model and fast.at_precision("bf16") is fast
    assert fast.net is model.net and fast.precision == "bf16" and model.precision == "fp32"
    assert not fast.training and fast.config == model.config and fast.schedule.T == model.schedule.T
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(4, 1, 28, 28, generator=g), torch.tensor([1, 100, 500, 1000]), torch.tensor([0, 3, 5, 9])
    exact, rounded = model(x, t, y), fast(x, t, y)
    assert rounded.dtype == torch.float32 and rounded.shape == exact.shape
    err = (rounded - exact).abs().max() / exact.abs().max()
    assert 0 < err < 0.05  # bf16 keeps 8 bits of mantissa: a few parts in a thousand per layer
    x_T = torch.randn(4, 1, 28, 28, generator=g)
    x0, x0_fast = (run(sample(m, m.schedule, x_T, method="dpm-solver++", steps=10, objective=m.objective, y=y,
                              clip_x0=True)) for m in (model, fast))
    assert (x0_fast - x0).abs().mean() < 0.02  # the same images, in [-1, 1]
    assert load_model(DEFAULT_CHECKPOINT, precision="bf16").precision == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'; allowed: fp32, bf16"):
        model.at_precision("fp16")

@pytest.mark.parametrize("avx512_bf16, amx, want", [(True, False, "bf16"), (False, True, "bf16"),
                                                      (False, False, "fp32")])
def test_fast_precision_is_bf16_only_for_a_unet_on_a_cpu_with_native_bf16(monkeypatch, avx512_bf16, amx, want):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    unet, mlp = tiny_config(net="unet"), tiny_config()
    assert native_bf16(torch.device("cpu")) == (want == "bf16")
    assert fast_precision(unet, torch.device("cpu")) == want
    assert fast_precision(mlp, torch.device("cpu")) == "fp32"  # too small to gain
    assert fast_precision(unet, torch.device("cuda")) == fast_precision(unet, torch.device("mps")) == "fp32"
