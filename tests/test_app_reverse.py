"""The reverse view with tiny checkpoints trained here: its handlers called directly (frames, the final image
against the sampler's own output, stop, every sampler/sigma/objective combination, the objective toggle,
compare mode, classifier guidance with a tiny noise-aware classifier trained here, the step scrubber, bad input),
then the app launched in-process and driven through its named endpoints."""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import Status
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from explorer.app import catalogue, plots
from explorer.app import reverse as rv
from explorer.app import reverse_logic as rl
from explorer.app.options import MIXED, UserInputError, schedule
from explorer.app.reverse_replay import Replay
from explorer.checkpoint import CheckpointError, fast_precision, read_config
from explorer.forward import q_sample
from explorer.noisy_classifier import (NoisyClassifier, NoisyClassifierConfig, load_noisy_classifier,
                                       save_noisy_classifier)
from explorer.samplers import plan, run, sample
from explorer.training import TrainConfig, Trainer

from conftest import count_model_calls

OUT = {name: i for i, name in enumerate(rl.OUTPUTS)}
CLASSES = ["squares", "stripes"]
SAMPLERS = [("ddpm", "beta", 0.0), ("ddpm", "beta_tilde", 0.0), ("ddim", "beta_tilde", 0.0),
            ("ddim", "beta_tilde", 1.0), ("dpm-solver++", "beta_tilde", 0.0)]


def _train(out, images, run_dir, **overrides) -> None:
    base = dict(dataset=f"folder:{images}", model="tiny", steps=2, batch_size=8, T=50, compile="off", device="cpu",
                warmup=1, sample_every=0, ckpt_every=2, out=str(out), run_dir=str(run_dir))
    Trainer(TrainConfig(**{**base, **overrides})).fit(progress=False)


def _train_guide(path, images, like) -> None:
    """A tiny noise-aware classifier p_phi(y | x_t, t) of the image folder, on the schedule, T, shape and classes
    of the checkpoint `like`, trained for a few steps on x_t at uniform t (as scripts/train_noisy_classifier.py)."""
    config = read_config(like)
    c, size, _ = config.sample_shape
    x0 = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB" if c == 3 else "L"), np.float32))
                      for name in config.class_names for f in sorted((images / name).iterdir())]) / 127.5 - 1
    x0 = x0.permute(0, 3, 1, 2) if c == 3 else x0[:, None]
    y = torch.arange(len(config.class_names)).repeat_interleave(len(x0) // len(config.class_names))
    torch.manual_seed(0)
    guide = NoisyClassifier(NoisyClassifierConfig(in_channels=c, image_size=size, channels=[4, 8], norm_groups=2,
                                                  schedule=config.schedule, T=config.T, dataset=config.dataset,
                                                  class_names=list(config.class_names)))
    opt, g = torch.optim.Adam(guide.parameters(), 3e-3), torch.Generator().manual_seed(0)
    for _ in range(30):
        i, t = torch.randint(0, len(x0), (16,), generator=g), torch.randint(0, config.T + 1, (16,), generator=g)
        x_t = q_sample(guide.schedule, x0[i], t, torch.randn((16, *x0.shape[1:]), generator=g))
        loss = torch.nn.functional.cross_entropy(guide(x_t, t), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_noisy_classifier(path, guide)


def _rewrite_config(src, dst, change) -> None:
    """Copy a checkpoint with its config changed by change(config_dict)."""
    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    config = json.loads(metadata["config"])
    change(config)
    save_file(load_file(str(src)), str(dst), metadata={**metadata, "config": json.dumps(config)})


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """pretrained/: tiny conditional checkpoints of one image folder (eps, x0, v; cosine, T = 50), an
    unconditional one (eps, linear), a 2D toy and the noise-aware classifier of classifier guidance for the
    conditional ones; beside it a slow one (T = 1000) and bad uploads."""
    root = tmp_path_factory.mktemp("reverse")
    images = root / "pics"
    square, stripes = (lambda i, j: 255 * (8 <= i < 24 and 8 <= j < 24)), (lambda i, j: 255 * (j % 8 < 4))
    for label, pattern in zip(CLASSES, (square, stripes)):
        (images / label).mkdir(parents=True)
        for k in range(4):
            img = Image.new("L", (32, 32))
            img.putdata([min(255, pattern(i, j) + 20 * k) for i in range(32) for j in range(32)])
            img.save(images / label / f"{k}.png")
    pre = root / "pretrained"
    for objective in ("eps", "x0", "v"):
        _train(pre / f"tiny_{objective}.safetensors", images, root / "runs" / objective, objective=objective)
    _train(pre / "plain_eps_linear.safetensors", images, root / "runs" / "plain", objective="eps", schedule="linear",
           conditional=False)
    _train(pre / "moons.safetensors", images, root / "runs" / "moons", dataset="two-moons", batch_size=16)
    _train_guide(pre / rl.GUIDE, images, pre / "tiny_eps.safetensors")
    up = root / "uploads"
    _train(up / "slow_eps.safetensors", images, root / "runs" / "slow", objective="eps", T=1000)
    (up / "notes.txt").write_text("not a checkpoint\n")
    (up / "pickle.safetensors").write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.")  # a pickle, renamed
    save_file({"weight": torch.zeros(3)}, str(up / "foreign.safetensors"))
    _rewrite_config(pre / "tiny_eps.safetensors", up / "mismatch.safetensors",
                    lambda c: c["net_config"].update(channels=[8, 16, 16]))
    _rewrite_config(pre / "tiny_eps.safetensors", up / "huge.safetensors",
                    lambda c: c["net_config"].update(channels=[512, 1024, 2048], norm_groups=8))
    with open(up / "big.safetensors", "wb") as f:
        f.truncate(catalogue.MAX_UPLOAD_BYTES + 1)
    return SimpleNamespace(pre=pre, up=up)


@pytest.fixture(autouse=True)
def bundled_dir(ckpts, monkeypatch):
    monkeypatch.setattr(catalogue, "PRETRAINED", ckpts.pre)


def controls(**kw) -> dict:
    """Generate's controls by name (CONTROLS), tiny defaults changed by kw."""
    values = {"checkpoint": "tiny_eps.safetensors", "upload": None, "objective": "eps", "method": "ddim",
              "variance": "beta_tilde", "eta": 0.0, "spacing": "trailing", "steps": 6, "label": MIXED,
              "guidance": 1.0, "classifier_scale": 0.0, "seed": 0, "n": 3, "clip": False, **kw}
    return {name: values[name] for name in rl.CONTROLS}


def api(**kw) -> list:
    """The same controls as the API's positional parameters."""
    return list(controls(**kw).values())


def final_grid(path, checkpoint=None, upload=None, objective=None, method="ddim", variance="beta_tilde", eta=0.0,
               spacing="trailing", steps=6, label=MIXED, guidance=1.0, classifier_scale=0.0, seed=0, n=3,
               clip=False) -> torch.Tensor:
    """The sampler's own output for these controls, as the view documents its draws: x_T from a
    generator seeded with the seed, the same generator for the sampler's noise, labels 0, 1, 0, ... (mixed) or
    the class; classifier guidance (s != 0) by the bundled noise-aware classifier."""
    model = catalogue.sampling_model(path)
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((n, *model.sample_shape), generator=g)
    y = None
    if model.class_names:
        y = torch.arange(n) % len(CLASSES) if label == MIXED else torch.full((n,), CLASSES.index(label))
    return run(sample(model, model.schedule, x_T, method=method, steps=steps, eta=eta, objective=model.objective,
                      y=y, guidance=guidance, spacing=spacing, variance=variance, clip_x0=clip, generator=g,
                      classifier=load_noisy_classifier(catalogue.PRETRAINED / rl.GUIDE) if classifier_scale else None,
                      classifier_scale=classifier_scale))


def streamed(x: torch.Tensor, label=MIXED, pixels=rl.STREAM_PX) -> np.ndarray:
    """What the view shows of a batch of a tiny (two-class, 32 x 32) model: the grid enlarged to about `pixels`
    but at least CAPTION_CELL_PX per image, each image captioned with its class (mixed: 0, 1, 0, ...)."""
    names = [CLASSES[k % len(CLASSES)] if label == MIXED else label for k in range(len(x))]
    scale = max(rl.scale_to(rl.grid(x), pixels), math.ceil(rl.CAPTION_CELL_PX / 32))
    return rl.Drawing(scale, names)(x)


def downloaded(x: torch.Tensor) -> np.ndarray:
    return streamed(x, pixels=rl.DOWNLOAD_PX)


SKIP = {"__type__": "update"}  # gr.skip()


def is_skip(value) -> bool:
    return value == SKIP


@pytest.fixture
def calls(monkeypatch):
    """Counts every network call (of every model) and can run a hook on the k-th. The bundled models are
    loaded first, so their load-time trial call (`_trial`) is not counted whichever test runs first."""
    for _, name in catalogue.checkpoint_choices()[:-1]:  # the last choice is "upload"
        catalogue.model_at(catalogue.PRETRAINED / name)
    return count_model_calls(monkeypatch)


# --- handlers, called directly -------------------------------------------------------------------------------

def test_only_image_checkpoints_are_listed_with_their_metadata():
    choices = catalogue.checkpoint_choices()
    assert [value for _, value in choices] == ["plain_eps_linear.safetensors", "tiny_eps.safetensors",
                                               "tiny_v.safetensors", "tiny_x0.safetensors", rv.UPLOAD]
    label = dict((v, k) for k, v in choices)["tiny_v.safetensors"]
    assert "predicts v" in label and "cosine" in label and "T=50" in label and "pics" in label


def test_the_view_samples_in_the_fast_precision_with_the_float32_models_weights(bundled_dir):
    path = catalogue.PRETRAINED / "tiny_eps.safetensors"
    exact, fast = catalogue.model_at(path), catalogue.sampling_model(path)
    assert exact.precision == "fp32" and fast.precision == fast_precision(exact.config, catalogue.DEVICE)
    assert fast.net is exact.net and catalogue.sampling_model(path) is fast  # loaded once, not copied
    toy = catalogue.PRETRAINED / "moons.safetensors"
    assert catalogue.sampling_model(toy) is catalogue.model_at(toy)  # an MLP stays in float32
    said = "Sampled here in bfloat16 autocast" in rl.model_info(path, exact.config)
    assert said == (fast.precision == "bf16")  # the view says so


def test_grid_layout():
    x = torch.rand(5, 1, 4, 4) * 2 - 1
    x[0, 0, 0, 0] = 3.0  # shown clipped
    g = rl.grid(x)
    assert g.shape == (1, 2 * (4 + rl.PAD) + rl.PAD, 3 * (4 + rl.PAD) + rl.PAD)  # ceil(sqrt(5)) = 3 per row
    p = rl.PAD
    assert np.array_equal(g[0, p:p + 4, p:p + 4], x[0, 0].clamp(-1, 1).numpy())
    assert np.array_equal(g[0, p:p + 4, 2 * p + 4:2 * p + 8], x[1, 0].numpy())
    assert np.array_equal(g[0, 2 * p + 4:2 * p + 8, p:p + 4], x[3, 0].numpy())
    assert (g[0, :p] == 1).all() and rl.grid(torch.zeros(2, 3, 4, 4)).shape[0] == 3


def test_grids_of_a_class_conditional_model_carry_each_images_class():
    """Each image of a conditional model's grid has its class name in a white strip under it (mixed: classes in
    turn); the images themselves are the plain grid's, and an unconditional model's grid has no captions."""
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    draw = rl.Drawing.of(rl.RunSettings.parse(controls(n=3)))
    assert draw.names == ["squares", "stripes", "squares"] and draw.scale * 32 >= rl.CAPTION_CELL_PX
    shown_, plain = draw(x), plots.picture(rl.grid(x), draw.scale)
    cell, pad = 32 * draw.scale, rl.PAD * draw.scale
    strip = shown_.shape[0] - plain.shape[0]
    assert shown_.shape[1] == plain.shape[1] and strip > 0 and strip % 2 == 0  # two rows of images, one strip each
    strip //= 2
    assert np.array_equal(shown_[:pad + cell], plain[:pad + cell])  # the first row of images as it was
    under = shown_[pad + cell:pad + cell + strip]  # the strip under the first row
    columns = [under[:, pad + j * (cell + pad):pad + j * (cell + pad) + cell] for j in range(2)]
    for column in columns:  # dark text on white, inside its image's column
        assert (column < 128).mean() > 0.03 and (column == 255).mean() > 0.5
    assert not np.array_equal(columns[0], columns[1])  # "squares" and "stripes" read differently
    assert (under[:, :pad] == 255).all()
    one = rl.Drawing.of(rl.RunSettings.parse(controls(n=3, label="stripes")))
    assert one.names == ["stripes"] * 3
    unconditional = rl.Drawing.of(rl.RunSettings.parse(controls(checkpoint="plain_eps_linear.safetensors")))
    assert unconditional.names is None and np.array_equal(unconditional(x), plots.picture(rl.grid(x),
                                                                                          unconditional.scale))


@pytest.mark.parametrize("method,steps,max_frames", [("ddim", 6, 50), ("ddpm", 10, 4), ("dpm-solver++", 1, 50)])
def test_frames_and_the_final_image_equal_the_sampler(monkeypatch, method, steps, max_frames):
    monkeypatch.setattr(rl, "MAX_FRAMES", max_frames)
    args = dict(objective="eps", method=method, steps=steps, eta=0.0, seed=7, n=5)
    outs = list(rv.generate(**controls(**args)))
    k = math.ceil(steps / max_frames)
    shown = [j for j in range(1, steps + 1) if j % k == 0 or j == steps]
    assert rl.shown(steps) == shown and len(outs) == 1 + len(shown)
    x_T = torch.randn((5, 3, 32, 32), generator=torch.Generator().manual_seed(7))
    first = outs[0]
    assert np.array_equal(first[OUT["x_t"]], streamed(x_T))
    assert first[OUT["x0_hat"]] is None and isinstance(first[OUT["sigmas"]], go.Figure)
    assert first[OUT["trajectory"]] is None and first[OUT["downloads"]] is None  # last run's files are cleared
    for out, j in zip(outs[1:], shown):
        assert f"Step {j} of {steps}" in out[OUT["status"]] and out[OUT["x0_hat"]].shape == first[OUT["x_t"]].shape
    assert all(is_skip(out[OUT["sigmas"]]) for out in outs[1:])
    final = outs[-1]
    want = final_grid(catalogue.PRETRAINED / "tiny_eps.safetensors", **args)
    assert np.array_equal(final[OUT["x_t"]], streamed(want))
    assert "**Done**" in final[OUT["status"]] and "now at t = 0" in final[OUT["status"]]
    png, gif = final[OUT["downloads"]]
    assert gif == final[OUT["trajectory"]]
    assert np.array_equal(np.asarray(Image.open(png)), downloaded(want)) and max(downloaded(want).shape[:2]) > 400
    with Image.open(gif) as anim:
        assert anim.n_frames == len(outs)


def test_steps_follow_the_sampler_and_sigma_plot(calls):
    outs = list(rv.generate(**controls(method="ddpm", variance="beta", steps=5, seed=1)))
    planned = plan(catalogue.model_at(catalogue.PRETRAINED / "tiny_eps.safetensors").schedule, "ddpm", 5, variance="beta")
    for out, (t, t_next, sigma) in zip(outs[1:], planned):
        assert f"the model saw t = {t} and guessed x̂₀; σ = {sigma:.4f} of fresh noise, now at t = {t_next}" \
            in out[OUT["status"]]
    figure = outs[0][OUT["sigmas"]]
    go.Figure(figure.to_dict())  # every property name valid
    used = figure.data[-1]
    assert list(used.x) == [t for t, _, _ in planned] and np.allclose(used.y, [s for _, _, s in planned])
    assert calls.n == 5 and calls.batch == [3] * 5
    redrawn = rv.sigma_plot(checkpoint="tiny_eps.safetensors", upload=None, objective="eps", method="ddpm",
                            variance="beta", eta=0.0, spacing="trailing", steps=5)
    assert np.allclose(redrawn.data[-1].y, used.y)


@pytest.mark.parametrize("method,eta,zero", [("ddim", 0.0, True), ("dpm-solver++", 0.0, True),
                                             ("ddim", 0.5, False), ("ddpm", 0.0, False)])
def test_a_sigma_of_zero_is_explained_on_the_plot(method, eta, zero):
    """A sampler that adds no fresh noise draws its sigma on 0, above the axis line, with an arrow in its colour
    saying so; one that adds noise gets no such note."""
    figure = rv.sigma_plot(checkpoint="tiny_eps.safetensors", upload=None, objective="eps", method=method,
                           variance="beta_tilde", eta=eta, spacing="trailing", steps=5)
    go.Figure(figure.to_dict())  # every property name valid
    notes = [a for a in figure.layout.annotations if "σ = 0" in a.text]
    assert len(notes) == zero and figure.layout.yaxis.range[0] < 0
    if zero:
        assert "deterministic, no fresh noise" in notes[0].text and notes[0].y == 0
        assert notes[0].arrowcolor == figure.data[-1].line.color


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
@pytest.mark.parametrize("method,variance,eta", SAMPLERS)
def test_every_sampler_sigma_and_objective_runs(objective, method, variance, eta):
    s = rl.RunSettings.parse(controls(objective=objective, method=method, variance=variance, eta=eta, steps=3, n=2,
                              clip=objective == "x0"))
    assert s.path.name == f"tiny_{objective}.safetensors"  # the toggle picks the checkpoint
    frames = list(rl.trajectory(s))
    assert [f.step for f in frames] == [0, 1, 2, 3] and frames[-1].t == 0
    assert [f.sigma for f in frames[1:]] == [sg for _, _, sg in plan(schedule("cosine", 50), method, 3, eta,
                                                                         "trailing", variance)]
    assert torch.isfinite(frames[-1].x).all()


@pytest.mark.parametrize("guidance,label", [(0.0, MIXED), (1.0, "stripes"), (3.5, "squares")])
def test_guidance_and_classes(calls, guidance, label):
    args = dict(method="ddim", steps=2, n=3, guidance=guidance, label=label)
    outs = list(rv.generate(**controls(**args)))
    want = final_grid(catalogue.PRETRAINED / "tiny_eps.safetensors", **args)
    assert np.array_equal(outs[-1][OUT["x_t"]], streamed(want, label))
    calls.batch.clear()
    list(rv.generate(**controls(**args)))
    assert calls.batch == [6 if guidance not in (0.0, 1.0) else 3] * 2  # conditional and null halves in one call


def test_stop_before_a_model_call_makes_none(calls):
    stop = threading.Event()
    frames = rl.trajectory(rl.RunSettings.parse(controls(steps=6)), stop)
    assert next(frames).step == 0
    stop.set()
    assert list(frames) == [] and calls.n == 0


def test_stop_during_a_call_ends_the_run_after_it(calls):
    stop = threading.Event()
    calls.hooks[3] = stop.set  # Stop pressed while the third model call runs
    frames = list(rl.trajectory(rl.RunSettings.parse(controls(steps=30)), stop))
    assert calls.n == 3 and frames[-1].step == 3  # the call in progress finishes; no further call is made


def test_the_stop_button_stops_its_own_session_only(calls, monkeypatch):
    monkeypatch.setattr(rl, "MAX_FRAMES", 5)
    mine, other = SimpleNamespace(session_hash="mine"), SimpleNamespace(session_hash="other")
    run_ = rv.generate(**controls(steps=30), request=mine)
    next(run_)
    assert rv.STOPS.stop(other) == {} and rv.stop_run(other) == (SKIP, SKIP)
    pressed = []
    calls.hooks[8] = lambda: pressed.append(rv.stop_run(mine))  # the Stop button, during the eighth call
    outs = list(run_)
    assert calls.n == 8
    stopped = "**Stopped** after step 6 of 30."  # the last frame shown (k = 6); Stop and the run say the same
    assert pressed == [(stopped, SKIP)] and outs[-1][OUT["status"]] == stopped
    assert all(is_skip(v) for i, v in enumerate(outs[-1][:-1]) if i not in (OUT["status"], OUT["replay"]))
    assert outs[-1][OUT["replay"]].last == 6 and outs[-1][-1].maximum == 6  # the step slider: x_T up to step 6
    assert "Step 6 of 30" in outs[-2][OUT["status"]]
    assert rv.STOPS.stop(mine) == {}  # the flag is gone with the run


def test_a_stop_while_the_run_waits_its_turn_ends_it_before_it_starts(calls):
    """The Generate click registers the run at once (STOPS.expecting); a Stop while it waits in the queue halts it,
    and when its turn comes it ends without a model call, saying so; the Compare status is left alone."""
    mine = SimpleNamespace(session_hash="waiting")
    rv.STOPS.expect(mine, "generate")
    before = "**Stopped** before it started."
    assert rv.stop_run(mine) == (before, SKIP)
    outs = list(rv.generate(**controls(steps=5), request=mine))
    assert calls.n == 0 and len(outs) == 1 and outs[0][OUT["status"]] == before
    assert rv.STOPS.stop(mine) == {}
    rv.STOPS.expect(mine, "generate")  # a fresh click after it: runs to the end
    assert "**Done**" in list(rv.generate(**controls(steps=5), request=mine))[-1][OUT["status"]]
    assert calls.n == 5


def test_a_run_with_bad_input_takes_its_click_with_it(calls):
    """A click whose run fails on its input leaves no stale entry that a later Stop could halt and the next
    run then take for its own."""
    mine = SimpleNamespace(session_hash="bad input")
    rv.STOPS.expect(mine, "compare")
    with pytest.raises(UserInputError):
        next(rv.compare(request=mine, **controls(checkpoint=rv.UPLOAD, upload=None), **dict.fromkeys(rl.CONTROLS_B)))
    assert rv.STOPS.stop(mine) == {}


def test_compare_runs_both_settings_from_the_same_noise(monkeypatch):
    monkeypatch.setattr(rl, "MAX_FRAMES", 4)
    c = {name: i for i, name in enumerate(rl.COMPARE_OUTPUTS)}
    a = dict(objective="eps", method="ddim", steps=3, seed=2, n=4)
    b = dict(objective="v", method="ddpm", variance="beta", steps=10, clip=True, classifier_scale=4.0)
    b_controls = {name: b.get(name[:-2], rl.DEFAULTS_B[name]) for name in rl.CONTROLS_B}  # "steps" -> "steps_b"
    outs = list(rv.compare(**controls(**a), **b_controls))
    assert len(outs) == 1 + 4  # x_T, then min(MAX_FRAMES, 10) ticks
    first, last = outs[0], outs[-1]
    assert np.array_equal(first[c["x_t_a"]], first[c["x_t_b"]])  # the same x_T
    assert first[c["x0_hat_a"]] is None and len(first[c["sigmas"]].data) == 4  # two references, A and B
    assert np.array_equal(last[c["x_t_a"]], streamed(final_grid(catalogue.PRETRAINED / "tiny_eps.safetensors", **a)))
    want_b = final_grid(catalogue.PRETRAINED / "tiny_v.safetensors", **{**a, **b})
    assert np.array_equal(last[c["x_t_b"]], streamed(want_b))
    done = last[c["status"]]
    assert "**Done**" in done and "step 3 of 3" in done and "step 10 of 10" in done
    assert done.count("classifier-free w = 1") == 2 and done.count("classifier s = 4") == 1  # B's only
    tick2 = outs[2][c["status"]]  # tick 2 of 4: A after ceil(2 * 3 / 4) = 2 steps, B after 2 * 10 / 4 = 5
    assert "step 2 of 3" in tick2 and "step 5 of 10" in tick2


# --- classifier guidance ---------------------------------------------------------------------------------------

def final_x(**kw) -> torch.Tensor:
    """The run's last frame, x_0, as the sampler left it (floats, not pictures)."""
    return list(rl.trajectory(rl.RunSettings.parse(controls(**kw))))[-1].x


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_classifier_guidance_is_the_samplers_draw_for_draw(method):
    """s = 0 with the classifier at hand is the unguided sampler, noise draw for noise draw; s > 0 is the
    library's classifier-guided sampler with the bundled noise-aware classifier, from the same draws."""
    args = dict(method=method, eta=1.0, steps=4, n=3, seed=5, label="stripes")
    path = catalogue.PRETRAINED / "tiny_eps.safetensors"
    plain = final_grid(path, **args)
    assert torch.equal(final_x(**args, classifier_scale=0.0), plain)
    guided = final_x(**args, classifier_scale=4.0)
    assert torch.equal(guided, final_grid(path, **args, classifier_scale=4.0)) and not torch.equal(guided, plain)


def test_a_large_classifier_scale_raises_the_classifiers_own_p_of_the_class():
    """Classifier guidance climbs log p_phi(y | x_t, t): the classifier's own p(y | x_0) of the class asked for
    grows with s, for each class, on the unconditional (w = 0) and the conditional model (x0_hat clipped, the
    view's default)."""
    guide = load_noisy_classifier(catalogue.PRETRAINED / rl.GUIDE)
    for w in (0.0, 1.0):
        for k, label in enumerate(CLASSES):
            p = [float(torch.softmax(guide(final_x(label=label, guidance=w, classifier_scale=s, n=4, steps=5, seed=1,
                                                   clip=True), torch.tensor(0)), -1)[:, k].mean()) for s in (0, 5, 20)]
            assert p[0] < p[1] < p[2] and p[2] > p[0] + 0.15, (w, label, p)


def test_the_status_names_both_kinds_of_guidance():
    last = list(rv.generate(**controls(steps=2, guidance=2.0, classifier_scale=3.5)))[-1][OUT["status"]]
    assert "classifier-free w = 2, classifier s = 3.5" in last and "**Done**" in last
    assert "classifier s" not in list(rv.generate(**controls(steps=2)))[-1][OUT["status"]]  # s = 0: not mentioned


def test_classifier_guidance_is_offered_where_the_classifier_fits_and_says_why_not_elsewhere(ckpts, monkeypatch):
    """The s sliders (A and B) show for checkpoints of the classifier's dataset, shape, classes, schedule and T;
    elsewhere they are hidden at 0, the model info says why, and s != 0 through the API is refused saying why."""
    fits = rv.choose_checkpoint("tiny_v.safetensors", None, 10, 10, MIXED)
    assert fits[8].visible and fits[9].visible and "Here $p_\\phi$ is fashion_noisy_classifier.safetensors" in fits[2]
    slow = str(ckpts.up / "slow_eps.safetensors")
    _, *other = rv.use_upload(slow, 10, 10, MIXED)
    assert other[8].visible is False and other[8].value == 0 and other[9].visible is False
    assert "**Classifier s is unavailable here**: fashion_noisy_classifier.safetensors does not fit slow_eps." \
        in other[2] and "schedule with T = 50; the model samples" in other[2]
    with pytest.raises(UserInputError, match="classifier guidance is not available for slow_eps.safetensors: .*"
                       "T = 1000. Leave classifier s at 0."):
        rl.RunSettings.parse(controls(checkpoint=rv.UPLOAD, upload=slow, classifier_scale=2.0))
    assert not rv.choose_checkpoint("plain_eps_linear.safetensors", None, 10, 10, MIXED)[8].visible
    tiny = catalogue.bundled_images()["tiny_v.safetensors"]
    guide = load_noisy_classifier(catalogue.PRETRAINED / rl.GUIDE).config
    assert guide.misfit(tiny) == "" and guide.misfit(replace(tiny, class_names=["a", "b"])).endswith(
        "under the cosine schedule with T = 50 with other class names")
    monkeypatch.setattr(rl, "GUIDE", "missing.safetensors")
    with pytest.raises(UserInputError, match="there is no noise-aware classifier missing.safetensors in pretrained/"):
        rl.RunSettings.parse(controls(classifier_scale=1.0))
    assert not rv.choose_checkpoint("tiny_v.safetensors", None, 10, 10, MIXED)[8].visible


# --- the step scrubber ---------------------------------------------------------------------------------------

def test_the_step_slider_replays_each_shown_step_without_a_model_call(calls, monkeypatch):
    """After a run the slider spans its shown steps; at each it shows the streamed x_t and x0_hat pixel for pixel,
    the step's update x_t - x_{t_model} (the sampler's Step.x_next - Step.x_t, scaled to fill the grey range) and
    its numbers (t, t_next, sigma as planned; RMS of the update); between shown steps, the one before; no model
    call. Before any run it says to press Generate."""
    monkeypatch.setattr(rl, "MAX_FRAMES", 3)
    args = dict(method="ddpm", steps=7, n=3, seed=2)
    outs = list(rv.generate(**controls(**args)))
    replay, slider = outs[-1][OUT["replay"]], outs[-1][-1]
    assert isinstance(replay, Replay) and (slider.maximum, slider.value, slider.interactive) == (7, 7, True)
    assert outs[0][OUT["replay"]] is None and outs[0][-1].interactive is False  # off while the run streams
    assert all(is_skip(out[-1]) for out in outs[1:-1])
    model = catalogue.sampling_model(catalogue.PRETRAINED / "tiny_eps.safetensors")
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn((3, *model.sample_shape), generator=g)
    steps = list(sample(model, model.schedule, x_T, method="ddpm", steps=7, objective="eps",
                        y=torch.tensor([0, 1, 0]), generator=g))
    before = calls.n
    for out, j in zip(outs, [0, 3, 6, 7]):  # k = ceil(7 / 3) = 3
        x_t, x0_hat, update, text = rv.scrub_step(replay, j)
        assert np.array_equal(x_t, out[OUT["x_t"]])
        if j == 0:
            assert x0_hat is None and update is None and "**x_T** at t = 50" in text
            continue
        st = steps[j - 1]
        delta = st.x_next - st.x_t
        assert np.array_equal(x0_hat, out[OUT["x0_hat"]])
        assert np.array_equal(update, streamed(delta / delta.abs().max()))
        assert (f"**Step {j} of 7**: the model saw x at t = {st.t} and guessed x̂₀ and ε̂; the step moved x to "
                f"t = {st.t_next} with σ = {st.sigma:.4f}") in text
        assert f"update {delta.double().pow(2).mean().sqrt():.4f}" in text  # in float64, as shown
    assert rv.scrub_step(replay, 5)[3] == rv.scrub_step(replay, 3)[3]
    assert calls.n == before
    with pytest.raises(gr.Error, match=r"step must be a whole number from 0 to 7 \(the last step the run showed\)"):
        rv.scrub_step(replay, 8)
    with pytest.raises(gr.Error, match="press Generate"):
        rv.scrub_step(None, 0)


def test_the_objective_toggle_switches_checkpoints_or_says_why_not():
    path, config = catalogue.resolve("tiny_v.safetensors", None, "x0")
    assert path.name == "tiny_x0.safetensors" and config.objective == "x0"
    update, *controls_ = rv.choose_objective("tiny_v.safetensors", None, "eps", 50, 50, "stripes")
    assert update.value == "tiny_eps.safetensors" and controls_[0].value == "eps"
    info = controls_[2]
    assert "predicts **ε (the noise)**" in info and r"\hat x_0 = (x_t - b_t\hat\varepsilon)/a_t" in info
    with pytest.raises(UserInputError, match="no bundled checkpoint of .* predicts v; the bundled ones predict eps"):
        catalogue.resolve("plain_eps_linear.safetensors", None, "v")
    with pytest.warns(UserWarning, match="predicts v"):
        out = rv.choose_objective("plain_eps_linear.safetensors", None, "v", 50, 50, MIXED)
    assert out[1] == "eps" and is_skip(out[0])  # the toggle goes back; the checkpoint stays


def test_the_objective_toggle_keeps_the_network_when_two_files_qualify(monkeypatch):
    """Two bundled files of one family predict v (say a small and a lean network): the toggle takes the one with
    the network of the checkpoint it leaves, whatever their order."""
    found = catalogue.bundled_images()
    eps, v = found["tiny_eps.safetensors"], found["tiny_v.safetensors"]
    wide = {**v.net_config, "channels": [16, 32, 32]}
    files = {"a_wide_v.safetensors": replace(v, net_config=wide), **found,
             "z_wide_eps.safetensors": replace(eps, net_config=wide)}
    monkeypatch.setattr(catalogue, "bundled_images", lambda: files)
    assert catalogue.resolve("tiny_eps.safetensors", None, "v")[0].name == "tiny_v.safetensors"
    assert catalogue.resolve("z_wide_eps.safetensors", None, "v")[0].name == "a_wide_v.safetensors"
    assert catalogue.resolve("z_wide_eps.safetensors", None, "x0")[0].name == "tiny_x0.safetensors"  # the only x0 one


def test_unconditional_checkpoints_hide_class_and_guidance():
    objective, _, info, steps, _, label, guidance, _, steered, _ = rv.choose_checkpoint(
        "plain_eps_linear.safetensors", None, 60, 20, "stripes")
    assert objective.value == "eps" and "unconditional" in info and "linear schedule" in info
    assert steps.maximum == 50 and steps.value == 50
    assert label.visible is False and label.value == MIXED and guidance.visible is False and guidance.value == 1
    assert steered.visible is False and steered.value == 0
    conditional = rv.choose_checkpoint("tiny_x0.safetensors", None, 10, 20, "stripes")
    assert conditional[5].visible and conditional[5].value == "stripes" and conditional[6].visible


def test_uploading_selects_the_upload_and_removing_it_goes_back(ckpts):
    dropdown, objective, *_ = rv.use_upload(str(ckpts.pre / "tiny_x0.safetensors"), 50, 50, MIXED)
    assert dropdown.value == rv.UPLOAD and objective.value == "x0"
    assert [value for _, value in dropdown.choices][-1] == rv.UPLOAD
    dropdown, objective, *_ = rv.drop_upload(50, 50, MIXED)
    assert dropdown.value == "plain_eps_linear.safetensors" and objective.value == "eps"
    with pytest.raises(gr.Error, match="upload a checkpoint"):
        rv.choose_checkpoint(rv.UPLOAD, None, 50, 50, MIXED)
    with pytest.raises(gr.Error, match="toy lab"):
        rv.use_upload(str(ckpts.pre / "moons.safetensors"), 50, 50, MIXED)


@pytest.mark.parametrize("change,message", [
    (dict(steps=51), r"steps must be a whole number from 1 to 50 \(T = 50 for tiny_eps.safetensors\)"),
    (dict(steps=0), "steps must be a whole number"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(n=17), "number of images must be a whole number from 1 to 16"),
    (dict(eta=1.5), r"eta must be a .*number in \[0, 1\]"),
    (dict(guidance=-1.0), r"guidance must be a .*number in \[0, 10\]"),
    (dict(classifier_scale=-1.0), r"classifier guidance s must be a .*number in \[0, 30\]"),
    (dict(classifier_scale=True), r"classifier guidance s must be a .*number"),
    (dict(checkpoint="plain_eps_linear.safetensors", classifier_scale=2.0),
     "classifier guidance is not available for plain_eps_linear.safetensors: .* is unconditional"),
    (dict(seed=-1), "seed must be a whole number"),
    (dict(method="euler"), "unknown sampler 'euler'; allowed: ddpm, ddim, dpm-solver"),
    (dict(label="circles"), "unknown class 'circles'; allowed: .*squares, stripes"),
    (dict(checkpoint="moons.safetensors"), "unknown checkpoint 'moons.safetensors'"),
    (dict(checkpoint="plain_eps_linear.safetensors", guidance=3.0), "is unconditional .* no classifier-free guidance"),
    (dict(checkpoint="plain_eps_linear.safetensors", label="stripes"), "is unconditional"),
    (dict(checkpoint=rv.UPLOAD), "upload a checkpoint"),
])
def test_bad_settings_say_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        next(rv.generate(**controls(**change)))


@pytest.mark.parametrize("name,error,message", [
    ("notes.txt", UserInputError, "not a .safetensors file"),
    ("pickle.safetensors", CheckpointError, "not a safetensors file"),
    ("foreign.safetensors", CheckpointError, "not a diffusion-explorer checkpoint"),
    ("mismatch.safetensors", CheckpointError, "weights do not match the network in its config"),
    ("huge.safetensors", CheckpointError, "more than the whole file holds"),
    ("big.safetensors", UserInputError, "checkpoints may be at most 20 MB"),
])
def test_bad_uploads_say_why(ckpts, name, error, message):
    with pytest.raises(error, match=message):
        catalogue.check_upload(str(ckpts.up / name))


def test_a_toy_checkpoint_is_refused_and_an_upload_must_keep_its_objective(ckpts):
    with pytest.raises(UserInputError, match="samples of shape \\[2\\]; this view samples images .* toy lab"):
        catalogue.check_upload(str(ckpts.pre / "moons.safetensors"))
    slow = str(ckpts.up / "slow_eps.safetensors")
    assert rl.RunSettings.parse(controls(checkpoint=rv.UPLOAD, upload=slow, steps=1000)).config.T == 1000
    with pytest.raises(UserInputError, match="the uploaded checkpoint predicts eps"):
        rl.RunSettings.parse(controls(checkpoint=rv.UPLOAD, upload=slow, objective="v"))


# --- the app, through gradio_client --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    return Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_named_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/generate", "/compare", "/stop", "/sigma_plot", "/choose_checkpoint", "/choose_objective",
            "/upload_checkpoint", "/drop_checkpoint", "/scrub"} <= set(api)
    assert [p["parameter_name"] for p in api["/generate"]["parameters"]] == list(rl.CONTROLS)
    assert [p["parameter_name"] for p in api["/compare"]["parameters"]] == [*rl.CONTROLS, *rl.CONTROLS_B]


def test_generate_streams_its_frames_to_a_client(client, ckpts):
    args = dict(checkpoint=rv.UPLOAD, upload=handle_file(str(ckpts.pre / "tiny_eps.safetensors")), steps=5, n=4,
                seed=3, method="ddpm")
    job = client.submit(*api(**args), api_name="/generate")
    final = job.result(timeout=120)
    outs = job.outputs()
    assert len(outs) == 1 + 5
    want = final_grid(ckpts.pre / "tiny_eps.safetensors", **{**args, "upload": None})
    assert np.array_equal(pixels(final[OUT["x_t"]]), streamed(want))  # PNG: lossless
    assert not np.array_equal(pixels(outs[0][OUT["x_t"]]), streamed(want))  # x_T came first
    assert [p.endswith(".png") or p.endswith(".gif") for p in final[OUT["downloads"]]] == [True, True]
    assert np.array_equal(pixels(final[OUT["downloads"]][0]), downloaded(want))
    with Image.open(final[OUT["trajectory"]]) as gif:
        assert gif.n_frames == 6
    x_t, x0_hat, update, text = client.predict(3, api_name="/scrub")  # this client's session's run, step 3
    assert np.array_equal(pixels(x_t), pixels(outs[3][OUT["x_t"]])) and "**Step 3 of 5**" in text


def test_bad_input_through_the_app_gives_a_message_and_it_keeps_serving(client, ckpts):
    with pytest.raises(AppError, match="not a diffusion-explorer checkpoint"):
        client.predict(handle_file(str(ckpts.up / "foreign.safetensors")), 50, 50, MIXED,
                       api_name="/upload_checkpoint")
    with pytest.raises(AppError, match="Invalid file type"):
        client.predict(handle_file(str(ckpts.up / "notes.txt")), 50, 50, MIXED, api_name="/upload_checkpoint")
    with pytest.raises(AppError, match="weights do not match"):
        client.predict(*api(checkpoint=rv.UPLOAD, upload=handle_file(str(ckpts.up / "mismatch.safetensors"))),
                       api_name="/generate")
    upload = handle_file(str(ckpts.pre / "plain_eps_linear.safetensors"))
    with pytest.raises(AppError, match="is unconditional"):
        client.predict(*api(checkpoint=rv.UPLOAD, upload=upload, guidance=2.0), api_name="/generate")
    with pytest.raises(AppError, match="steps must be a whole number from 1 to 50"):
        client.predict(*api(checkpoint=rv.UPLOAD, upload=upload, steps=80), api_name="/generate")
    final = client.predict(*api(checkpoint=rv.UPLOAD, upload=upload, steps=2), api_name="/generate")
    assert "**Done**" in final[OUT["status"]]


def test_stop_and_the_queue(client, app_url, ckpts, calls, monkeypatch):
    """A long run holds the one slot: a second user's run waits in the queue (no frame, no model call of
    its own) until the first is stopped by its own Stop, which ends it within a step; a cancelled job makes
    no further model call once its step in progress is done."""
    monkeypatch.setattr(rl, "MAX_FRAMES", 1000)  # a frame per step: frames come quickly, cancel acts at once
    slow = dict(checkpoint=rv.UPLOAD, upload=handle_file(str(ckpts.up / "slow_eps.safetensors")), method="ddpm",
                steps=1000, n=8)
    first = client.submit(*api(**slow), api_name="/generate")
    wait_for(lambda: len(first.outputs()) >= 2, 120, "the long run's frames")
    other = Client(app_url, verbose=False, analytics_enabled=False, download_files=False)
    second = other.submit(*api(checkpoint=rv.UPLOAD, upload=handle_file(str(ckpts.pre / "tiny_eps.safetensors")),
                                    steps=2, n=2), api_name="/generate")
    time.sleep(1.0)
    assert second.status().code in (Status.IN_QUEUE, Status.JOINING_QUEUE, Status.STARTING) and not second.outputs()
    assert 2 not in calls.batch  # no model call of the second run yet
    client.predict(api_name="/stop")
    stopped = first.result(timeout=60)[OUT["status"]]
    assert stopped.startswith("**Stopped** after step ")
    shown = int(stopped.split("step ")[1].split(" ")[0])
    assert calls.batch.count(8) - shown in (0, 1) and shown < 1000  # at most the call in progress ran on
    assert "**Done**" in second.result(timeout=60)[OUT["status"]]

    third = client.submit(*api(**slow), api_name="/generate")
    wait_for(lambda: len(third.outputs()) >= 2, 120, "the third run's frames")
    third.cancel()
    time.sleep(0.5)  # the step in progress
    after_cancel = calls.n
    time.sleep(0.5)
    assert calls.n == after_cancel  # the cancelled run makes no more calls


def test_the_view_opens_on_the_v_model_when_bundled():
    found = {"a_eps.safetensors": None, rl.DEFAULT_CHECKPOINT: None, "z_x0.safetensors": None}
    assert rl.default_name(found) == rl.DEFAULT_CHECKPOINT
    assert rl.default_name({"a_eps.safetensors": None, "z_x0.safetensors": None}) == "a_eps.safetensors"
    assert rl.default_name({}) is None


def test_an_exploding_eps_model_is_explained_and_clipping_tames_it(ckpts):
    """Cosine T = 1000: sqrt(alpha_bar_T) = 4.9e-5, so an eps model's x0_hat at t = T carries its error times
    ~2e4 and the unclipped run leaves the image range; the status says why and what to do."""
    slow = str(ckpts.up / "slow_eps.safetensors")
    *_, last = rv.generate(**controls(checkpoint=rv.UPLOAD, upload=slow, steps=5, clip=False))
    assert "far outside the image range" in last[2] and "2.03e+04 at t = 1000" in last[2]
    *_, last = rv.generate(**controls(checkpoint=rv.UPLOAD, upload=slow, steps=5, clip=True))
    assert "far outside" not in last[2] and "x̂₀ clipped" in last[2]


def test_the_view_clips_x0_hat_by_default():
    assert rl.DEFAULTS["clip"] is True and rl.DEFAULTS_B["clip_b"] is True
