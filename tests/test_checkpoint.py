"""Checkpoints: round trip from the file alone, and clear errors for foreign, corrupted or mismatched files."""
import json

import pytest
import torch
from safetensors.torch import save_file

from explorer.checkpoint import CheckpointError, ModelConfig, list_checkpoints, load_model, save_model
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
