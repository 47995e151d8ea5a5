"""The trainer: real short runs on a 2D toy and on a folder of tiny images, exact resume, clear errors."""
import json
import math

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import train
from explorer.checkpoint import load_model
from explorer.data import sample_toy
from explorer.losses import diffusion_loss
from explorer.samplers import run, sample
from explorer.training import TrainConfig, Trainer, TrainingError, ema_decay_at, lr_at, resolve_precision


def toy_config(tmp_path, **overrides):
    base = dict(dataset="two-moons", model="tiny", steps=6, batch_size=64, warmup=2, T=50, compile="off",
                sample_every=0, ckpt_every=3, out=str(tmp_path / "moons.safetensors"), run_dir=str(tmp_path / "run"))
    return TrainConfig(**{**base, **overrides})


@pytest.fixture
def image_folder(tmp_path):
    """A folder:PATH dataset of 16x16 grey squares and stripes in two class subfolders."""
    root = tmp_path / "pics"
    for label, pattern in (("squares", lambda i, j: 255 * (4 <= i < 12 and 4 <= j < 12)),
                           ("stripes", lambda i, j: 255 * (j % 4 < 2))):
        (root / label).mkdir(parents=True)
        for k in range(6):
            img = Image.new("L", (16, 16))
            img.putdata([min(255, pattern(i, j) + 10 * k) for i in range(16) for j in range(16)])
            img.save(root / label / f"{k}.png")
    return root


def test_toy_training_lowers_loss_and_writes_a_loadable_checkpoint(tmp_path):
    trainer = Trainer(toy_config(tmp_path, model="small", steps=150, batch_size=256, lr=3e-3, warmup=10))
    x0, y = sample_toy("two-moons", 4096, generator=7)

    def held_out_loss():  # the same t and eps draws every time, so only the weights change
        with torch.no_grad():
            return diffusion_loss(trainer._model_fn, trainer.schedule, x0, "v", y, 5.0,
                                  torch.Generator().manual_seed(8)).item()

    before = held_out_loss()
    for _ in range(150):
        trainer.train_step()
    assert held_out_loss() < 0.8 * before
    trainer.save()
    model = load_model(tmp_path / "moons.safetensors")
    assert model.config.step == 150 and model.class_names == ["upper moon", "lower moon"] and model.objective == "v"
    x = run(sample(model, model.schedule, torch.randn(500, 2), method="ddim", steps=20, objective=model.objective,
                   y=torch.zeros(500, dtype=torch.long), guidance=1.0))
    assert x.shape == (500, 2) and torch.isfinite(x).all()


def test_image_training_from_a_folder(tmp_path, image_folder):
    config = TrainConfig(dataset=f"folder:{image_folder}", model="tiny", steps=4, batch_size=8, T=50, compile="off",
                         sample_every=4, ckpt_every=2, out=str(tmp_path / "img.safetensors"))
    config.run_dir = str(tmp_path / "img_run")
    trainer = Trainer(config)
    assert trainer.fit(progress=False) == "done"
    model = load_model(tmp_path / "img.safetensors")
    assert model.sample_shape == (3, 32, 32) and model.class_names == ["squares", "stripes"]
    assert (tmp_path / "img_run" / "samples" / "step_0000004.png").is_file()
    log = (tmp_path / "img_run" / "log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,images_per_s,elapsed_s" and len(log) == 5


def test_resume_is_exact(tmp_path):
    straight = Trainer(toy_config(tmp_path / "a"))
    assert straight.fit(progress=False) == "done"

    half = Trainer(toy_config(tmp_path / "b"))
    step = half.train_step

    def interrupted_at_3():  # what Ctrl-C (or SIGTERM) does after step 3
        if half.step == 3:
            raise KeyboardInterrupt
        return step()

    half.train_step = interrupted_at_3
    assert half.fit(progress=False) == "interrupted"
    resumed = Trainer(toy_config(tmp_path / "b"), resume=True)
    assert resumed.step == 3
    resumed.fit(progress=False)

    a, b = load_file(tmp_path / "a" / "run" / "state.safetensors"), load_file(tmp_path / "b" / "run" / "state.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # weights, EMA, optimizer moments and RNG states
    assert torch.equal(load_file(tmp_path / "a" / "moons.safetensors")["out.weight"],
                       load_file(tmp_path / "b" / "moons.safetensors")["out.weight"])


def test_steps_is_the_loop_fit_drains(tmp_path):
    fitted = Trainer(toy_config(tmp_path / "a"))
    fitted.fit(progress=False)
    streamed = Trainer(toy_config(tmp_path / "b"))
    seen = []
    for step, loss in streamed.steps():
        seen.append(step)
        assert math.isfinite(loss)
        if step == 4:
            break  # a consumer may stop at any step: nothing more is trained
    assert seen == [1, 2, 3, 4] and streamed.step == 4
    assert [step for step, _ in streamed.steps()] == [5, 6]  # and carry on later
    for mine, theirs in zip(fitted.net.parameters(), streamed.net.parameters()):
        assert torch.equal(mine, theirs)


def test_refuses_to_overwrite_and_resume_guards(tmp_path):
    Trainer(toy_config(tmp_path)).fit(progress=False)
    before = (tmp_path / "moons.safetensors").read_bytes()
    with pytest.raises(TrainingError, match="--resume .* or --force"):
        Trainer(toy_config(tmp_path))
    with pytest.raises(TrainingError, match="cannot change objective"):
        Trainer(toy_config(tmp_path, objective="eps"), resume=True)
    with pytest.raises(TrainingError, match="nothing to resume"):
        Trainer(toy_config(tmp_path, run_dir=str(tmp_path / "other")), resume=True)
    assert (tmp_path / "moons.safetensors").read_bytes() == before
    Trainer(toy_config(tmp_path, steps=3), force=True).fit(progress=False)
    assert load_model(tmp_path / "moons.safetensors").config.step == 3


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = Trainer(toy_config(tmp_path, steps=10))
    trainer.fit(progress=False)
    good = (tmp_path / "moons.safetensors").read_bytes()
    trainer.config.steps = 20
    with torch.no_grad():
        next(trainer.net.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError, match="loss became nan at step 11"):
        trainer.fit(progress=False)
    assert (tmp_path / "moons.safetensors").read_bytes() == good


def test_lr_schedule():
    c = TrainConfig(lr=1e-3, warmup=10, steps=100)
    assert lr_at(c, 0) == pytest.approx(1e-4) and lr_at(c, 9) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.09)))
    assert lr_at(c, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(TrainConfig(lr=1e-3, warmup=0, lr_decay="none"), 50) == 1e-3


def ema_of(config, values):
    """The trainer's EMA recursion (lerp by 1 - decay after each step) over a sequence of scalar 'weights'."""
    ema = values[0]
    for step, value in enumerate(values, start=1):
        ema += (1 - ema_decay_at(config, step)) * (value - ema)
    return ema


def test_ema_decays():
    fixed = TrainConfig(ema_decay=0.999)
    assert ema_decay_at(fixed, 1) == pytest.approx(0.1) and ema_decay_at(fixed, 91) == pytest.approx(0.91)
    assert ema_decay_at(fixed, 100_000) == 0.999  # warm-up (1 + n) / (10 + n), n = step - 1, capped
    # power-function EMA (EDM2): gamma = 0 is exactly the mean of every step's weights ...
    n = 1000
    values = [float(k) for k in range(1, n + 1)]
    assert ema_of(TrainConfig(ema_gamma=0.0), values) == pytest.approx((n + 1) / 2, rel=1e-9)
    # ... and gamma > 0 weights step k by ~k^gamma: the mean of k under that profile is n (gamma + 1) / (gamma + 2)
    for gamma in (1.0, 6.94):
        assert ema_of(TrainConfig(ema_gamma=gamma), values) == pytest.approx(n * (gamma + 1) / (gamma + 2), rel=0.01)
    assert ema_decay_at(TrainConfig(ema_gamma=6.94), 1) == 0.0  # the first step's weights are the EMA


def test_precision(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"  # bf16 without AMX is slower than fp32
    with pytest.raises(ValueError, match="not available on mps"):
        resolve_precision("bf16", torch.device("mps"))


def test_bf16_training_keeps_float32_weights(tmp_path, image_folder):
    config = TrainConfig(dataset=f"folder:{image_folder}", model="tiny", steps=3, batch_size=8, T=50, compile="off",
                         precision="bf16", t_sampling="log-normal", ema_gamma=6.94, sample_every=0,
                         out=str(tmp_path / "bf16.safetensors"), run_dir=str(tmp_path / "run"))
    trainer = Trainer(config)
    assert trainer.fit(progress=False) == "done"
    weights = load_file(tmp_path / "bf16.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    assert all(s["exp_avg"].dtype == torch.float32 for s in trainer.optimizer.state.values())


def test_resume_of_a_run_saved_before_newer_options(tmp_path):
    """A state file whose train_config lacks the options added since (ema_gamma, t_sampling) resumes with the
    values those runs trained with."""
    Trainer(toy_config(tmp_path, steps=3)).fit(progress=False)
    path = tmp_path / "run" / "state.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old = json.loads(meta["train_config"])
    del old["ema_gamma"], old["t_sampling"]
    save_file(tensors, str(path), metadata={**meta, "train_config": json.dumps(old)})
    resumed = Trainer(toy_config(tmp_path, steps=6), resume=True)
    assert resumed.config.ema_gamma is None and resumed.config.t_sampling == "uniform" and resumed.step == 3
    assert resumed.fit(progress=False) == "done"


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'; allowed: fashion-mnist"),
    (dict(objective="score"), "allowed: eps, x0, v"),
    (dict(schedule="sqrt"), "allowed: linear, cosine"),
    (dict(T=1), r"T must be a whole number from 10 to 4000"),
    (dict(steps=0), "steps must be"),
    (dict(lr=0.0), r"lr must be a finite number in \(0, 1\]"),
    (dict(ema_decay=1.0), "ema_decay"),
    (dict(p_uncond=1.0), "p_uncond"),
    (dict(min_snr_gamma=-1.0), "min_snr_gamma"),
    (dict(ema_gamma=-0.5), r"ema_gamma \(None: the fixed ema_decay\) must be a finite number >= 0"),
    (dict(t_sampling="beta"), "allowed: uniform, log-normal"),
    (dict(precision="fp16"), "allowed: auto, fp32, bf16"),
    (dict(model="huge"), "allowed: tiny, lean, small, base"),
    (dict(out="model.pt"), ".safetensors"),
    (dict(device="tpu"), "allowed: auto, cpu, cuda, mps"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_cli_errors_are_messages_with_nonzero_exit(tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    assert train.main(["--dataset", "imagenet", "--out", str(out)]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    assert train.main(["--dataset", f"folder:{tmp_path / 'missing'}", "--out", str(out)]) == 2
    assert "folder" in capsys.readouterr().err
    assert train.main(["--steps", "-5", "--out", str(out)]) == 2
    assert "steps must be a whole number" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--objective", "score"])
    assert exit_info.value.code == 2  # argparse rejects choices itself


def test_cli_trains_a_toy(tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    code = train.main(["--dataset", "8-gaussians", "--model", "tiny", "--steps", "5", "--T", "50", "--compile", "off",
                       "--sample-every", "5", "--out", str(out), "--run-dir", str(tmp_path / "run")])
    assert code == 0 and load_model(out).config.dataset == "8-gaussians"
    assert "done at step 5" in capsys.readouterr().err
    assert (tmp_path / "run" / "samples" / "step_0000005.png").is_file()
