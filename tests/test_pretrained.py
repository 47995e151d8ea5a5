"""The files shipped in pretrained/: each loads from the file alone, reports its config, samples on the CPU, is
described in the model card; the Fashion-MNIST models behind the eps / x0 / v toggle compare like with like."""
import math

import pytest
import torch

from explorer.checkpoint import PRETRAINED_DIR, CheckpointError, load_model, read_config
from explorer.classifier import DEFAULT_PATH, load_classifier
from explorer.noisy_classifier import DEFAULT_PATH as NOISY_PATH
from explorer.noisy_classifier import load_noisy_classifier
from explorer.samplers import run, sample
from explorer.training import ADDED_LATER

FILES = sorted(PRETRAINED_DIR.glob("*.safetensors"))
CARD = (PRETRAINED_DIR / "README.md").read_text()
FASHION_COSINE = [PRETRAINED_DIR / f"fashion_{objective}_cosine.safetensors" for objective in ("eps", "x0", "v")]
FASHION_LINEAR = PRETRAINED_DIR / "fashion_eps_linear.safetensors"  # the original DDPM setting
FASHION_LEAN = PRETRAINED_DIR / "fashion_v_cosine_lean.safetensors"  # a leaner network, trained longer
WHERE_AND_WHEN = {"out", "run_dir", "sample_every", "ckpt_every"}  # where and how often a run writes, not how it trains


def test_the_bundle_is_complete_and_small():
    names = {path.name for path in FILES}
    assert {p.name for p in [*FASHION_COSINE, FASHION_LINEAR, FASHION_LEAN, DEFAULT_PATH, NOISY_PATH]} <= names
    assert sum(name.startswith("toy_") for name in names) == 15
    assert all(path.stat().st_size < 10 * 1024 ** 2 for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_each_file_loads_reports_its_config_and_samples_on_the_cpu(path):
    assert f"`{path.name}`" in CARD or ("toy_" in path.name and "toy_<dataset>_<objective>.safetensors" in CARD)
    if path == DEFAULT_PATH:  # the reference classifier: not a diffusion model, refused as one
        with pytest.raises(CheckpointError, match="not a diffusion-explorer checkpoint"):
            read_config(path)
        assert load_classifier(path).config.training["test_accuracy"] >= 0.91
        return
    if path == NOISY_PATH:  # the noise-aware classifier of classifier guidance: not a diffusion model either
        with pytest.raises(CheckpointError, match="not a diffusion-explorer checkpoint"):
            read_config(path)
        assert load_noisy_classifier(path).config.training["test_accuracy_by_t"]["250"] >= 0.75
        return
    config = read_config(path)
    assert config.objective in path.stem and config.schedule in ("cosine", "linear") and config.T == 1000
    assert config.step > 0 and config.training["command"].startswith("train.py ")
    assert f"--objective {config.objective}" in config.training["command"]
    model = load_model(path, "cpu")
    assert model.config == config and not model.training
    n = 2
    y = torch.arange(n) % len(config.class_names) if config.class_names else None
    x_T = torch.randn(n, *config.sample_shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        x0 = run(sample(model, model.schedule, x_T, method="dpm-solver++", steps=5, objective=config.objective, y=y,
                        clip_x0=True))
    assert x0.shape == (n, *config.sample_shape) and torch.isfinite(x0).all()


def test_the_fashion_models_behind_the_toggle_share_network_schedule_and_budget():
    configs = [read_config(path) for path in FASHION_COSINE]
    assert [c.objective for c in configs] == ["eps", "x0", "v"]
    for c in configs:
        assert (c.net, c.net_config, c.schedule, c.T, c.dataset) == (configs[0].net, configs[0].net_config,
                                                                        "cosine", 1000, "fashion-mnist")
        assert c.step == configs[0].step and c.training["images_seen"] == configs[0].training["images_seen"]
        assert len(c.class_names) == 10 and c.training["train_config"]["p_uncond"] > 0  # guidance works
        assert math.isclose(c.training["train_config"]["lr"], configs[0].training["train_config"]["lr"])


def test_the_linear_eps_model_differs_from_the_cosine_one_only_in_its_schedule():
    linear, cosine = read_config(FASHION_LINEAR), read_config(FASHION_COSINE[0])
    assert (linear.schedule, cosine.schedule) == ("linear", "cosine")
    for field in ("net", "net_config", "objective", "T", "dataset", "class_names", "step"):
        assert getattr(linear, field) == getattr(cosine, field), field
    assert linear.training["images_seen"] == cosine.training["images_seen"]
    differ = {key for key, value in linear.training["train_config"].items()
              if cosine.training["train_config"][key] != value}
    assert differ == {"schedule", "out"}  # the same recipe: lr, batch, EMA, min-SNR, label dropout, seed


def test_the_lean_v_model_differs_from_the_small_one_only_in_network_and_steps():
    lean, small = read_config(FASHION_LEAN), read_config(FASHION_COSINE[2])
    assert lean.net_config == {**small.net_config, "num_res_blocks": 1}  # the "lean" preset
    for field in ("net", "objective", "schedule", "T", "dataset", "class_names"):
        assert getattr(lean, field) == getattr(small, field), field
    lean_run, small_run = lean.training["train_config"], {**ADDED_LATER, **small.training["train_config"]}
    differ = {key for key, value in lean_run.items() if small_run.get(key, value) != value}
    assert differ - WHERE_AND_WHEN == {"model", "steps"}
    assert lean_run["precision"] == "auto" and lean.training["device"] == "cpu"  # fp32 on its AMD CPU (no AMX), as small
    assert (lean.step, small.step) == (20000, 2000)
