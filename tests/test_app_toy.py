"""The 2D toy lab: its handlers called directly (the forward picture against explorer's functions, streamed
reverse runs against the sampler's own output, the learned field, live training and its checkpoint, bad input),
then the app launched in-process and driven through the lab's named endpoints with gradio_client."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from explorer.app import catalogue, toy
from explorer.app import toy_logic as tl
from explorer.app.options import UserInputError
from explorer.checkpoint import load_model
from explorer.data import sample_toy, toy_mixture
from explorer.forward import mixture_log_prob_grid, q_marginal_mixture, q_sample
from explorer.parameterization import score_from_eps
from explorer.samplers import run, sample
from explorer.schedules import make_schedule

D = tl.DEFAULTS


SKIP = {"__type__": "update"}  # gr.skip()


def view(**kw) -> dict:
    """The forward view's controls (SETUP, t, SAMPLER) by name, the defaults changed by kw."""
    c = {**D, **kw}
    return {k: c[k] for k in (*tl.SETUP, "t", *tl.SAMPLER)}


def run_args(**kw) -> dict:
    """generate's controls (SETUP, SAMPLER) by name."""
    c = {**D, **kw}
    return {k: c[k] for k in (*tl.SETUP, *tl.SAMPLER)}


def api_args(controls: dict) -> list:
    """The same controls as the API's positional parameters (the session's State is not one)."""
    return [v for k, v in controls.items() if k != "trained"]


def trace(fig: go.Figure, kind: str, mode: str | None = None):
    return next(tr for tr in fig.data if tr.type == kind and (mode is None or tr.mode == mode))


def test_forward_view_is_the_cloud_at_t_over_the_exact_marginal():
    fig, text, info = toy.redraw(**view(dataset="swiss-roll", t=250, n=700, seed=3, field_kind="none"))
    go.Figure(fig.to_dict())  # every property valid
    s = make_schedule("cosine", 1000)
    x0, _ = sample_toy("swiss-roll", 700, generator=3)
    eps = torch.randn(700, 2, generator=torch.Generator().manual_seed(3))
    points = trace(fig, "scatter", "markers")
    assert np.array_equal(np.stack([points.x, points.y], 1), q_sample(s, x0, 250, eps).numpy())
    axis = torch.from_numpy(tl.AXIS).double()
    log_q = mixture_log_prob_grid(axis, axis, *q_marginal_mixture(s, 250, *toy_mixture("swiss-roll")))
    z = trace(fig, "contour").z
    top = float(log_q.max())
    assert np.allclose(z, log_q.clamp(min=top - tl.DENSITY_RANGE).numpy(), atol=1e-4)
    assert list(fig.layout.xaxis.range) == list(fig.layout.yaxis.range) == [-3, 3]  # fixed: the cloud never jumps
    assert f"= {float(s.alpha_bars[250]):.4f}$" in text
    assert "toy_swiss-roll_v.safetensors" in info
    assert not any(tr.type == "scatter" and tr.mode == "lines" for tr in fig.data)  # field "none": no arrows


def test_forward_view_at_T_is_standard_normal():
    fig, text, _ = toy.redraw(**view(dataset="checkerboard", t=1000, field_kind="none"))
    g = tl.AXIS.astype(np.float64)
    normal = -0.5 * (g[None, :] ** 2 + g[:, None] ** 2) - math.log(2 * math.pi)
    assert np.allclose(trace(fig, "contour").z, normal, atol=1e-4)
    distance = float(text.split("N(0, I) draws: ")[1].split(" ")[0])
    assert abs(distance) < 0.01


def test_labelled_toys_colour_points_by_class():
    fig, *_ = toy.redraw(**view(dataset="two-moons", n=200, field_kind="none"))
    _, y = sample_toy("two-moons", 200, generator=D["seed"])
    colours = list(trace(fig, "scatter", "markers").marker.color)
    assert {colours[i] for i in range(200) if y[i] == 0} == {tl.plots.CLASS_COLOURS[0]}
    assert {colours[i] for i in range(200) if y[i] == 1} == {tl.plots.CLASS_COLOURS[1]}


@pytest.mark.parametrize("kind", ["score", "eps"])
def test_the_field_is_the_models_eps_or_score(kind):
    s = tl.ToySettings.parse(run_args(objective="eps", n=500, field_kind=kind, clip=False))
    model = load_model(catalogue.PRETRAINED / "toy_two-moons_eps.safetensors")
    origins, vectors, t = tl.field(model, s, 400)
    with torch.inference_mode():
        eps = model(torch.from_numpy(origins), torch.full((len(origins),), 400))
    b = float(model.schedule.sqrt_one_minus_alpha_bars[400])
    expected = eps if kind == "eps" else score_from_eps(eps, b)
    assert t == 400 and np.allclose(vectors, expected.numpy(), atol=1e-5)
    fig, text, _ = toy.redraw(**view(objective="eps", field_kind=kind, t=400))
    arrows = trace(fig, "scatter", "lines")
    assert len(arrows.x) == 6 * tl.FIELD_GRID ** 2 and "learned" in text
    assert tl.field(model, s, 0)[2] == 1  # the model is asked at t >= 1


def test_a_reverse_run_streams_frames_and_ends_at_the_samplers_output():
    args = run_args(dataset="two-moons", objective="v", n=600, seed=5, steps=50, method="ddim")
    frames = list(toy.generate(**args))
    assert len(frames) == 1 + len(tl.shown(50)) == 26
    model = load_model(catalogue.PRETRAINED / "toy_two-moons_v.safetensors")
    gen = torch.Generator().manual_seed(5)
    x_T = torch.randn(600, 2, generator=gen)
    with torch.inference_mode():
        x0 = run(sample(model, model.schedule, x_T, method="ddim", steps=50, objective="v", clip_x0=tl.CLIP, generator=gen))
    first, last = frames[0][0], frames[-1][0]
    start = trace(first, "scatter", "markers")
    assert np.array_equal(np.stack([start.x, start.y], 1), x_T.numpy())
    end = trace(last, "scatter", "markers")
    assert np.allclose(np.stack([end.x, end.y], 1), x0.numpy(), atol=1e-5)
    paths = next(tr for tr in last.data if tr.name == "highlighted paths")
    assert len(paths.x) == tl.HIGHLIGHT * 52  # 51 positions and a gap each
    assert paths.x[0] == x_T[0, 0] and math.isclose(paths.x[50], x0[0, 0], abs_tol=1e-5) and np.isnan(paths.x[51])
    assert "t = 0 of 1000" in last.layout.title.text
    text = frames[-1][1]
    assert "**Done**" in text and "Distance to the data" in text
    energy = float(text.split("energy distance **")[1].split("**")[0])
    floor = float(text.split("two fresh data draws: ")[1].split(")")[0])
    assert energy < 0.01 and 0 < floor < 0.01  # a well-trained bundled model: near the data-vs-data floor
    q = tl.quality("two-moons", None, x0)
    assert f"{q.energy:.4f}" in text and f"{q.sliced:.3f}" in text


def test_class_and_guidance_sample_that_class():
    centres = toy_mixture("blobs")[0].numpy()  # blob k is component k, in sample_toy's coordinates
    for guidance in (1.0, 3.0):
        frames = list(toy.generate(**run_args(dataset="blobs", objective="x0", n=300, label="blob 4",
                                             guidance=guidance, steps=20)))
        end = trace(frames[-1][0], "scatter", "markers")
        x = np.stack([end.x, end.y], 1)
        nearest = np.linalg.norm(x[:, None, :] - centres[None], axis=2).argmin(1)
        assert (nearest == 4).mean() > (0.9 if guidance == 1 else 0.98)
        assert f"class blob 4, guidance {guidance:g}" in frames[-1][1] and "blobs, class blob 4)" in frames[-1][1]
    assert np.linalg.norm(x.mean(0) - centres[4]) > 0.05  # guidance 3 pushes beyond the class's own centre
    mixed = list(toy.generate(**run_args(dataset="blobs", objective="x0", n=300, label=tl.MIXED, steps=20)))
    colours = trace(mixed[-1][0], "scatter", "markers").marker.color
    assert colours[:6] == tl.plots.CLASS_COLOURS  # particle i asks for class i % 6


@pytest.mark.parametrize("change,message", [
    ({"schedule": "linear"}, "no pretrained model .* press Train"),
    ({"source": "trained here"}, "no model trained in this session"),
    ({"dataset": "swiss-roll", "label": "upper moon"}, "has no classes"),
    ({"guidance": 3.0}, "guidance needs a class"),
    ({"n": 99}, "number of particles"),
    ({"method": "euler"}, "unknown sampler"),
    ({"steps": 1001}, "steps must be"),
])
def test_bad_input_gives_a_message(change, message):
    with pytest.raises(ValueError, match=message):
        list(toy.generate(**run_args(**change)))


def test_forward_view_without_a_model_still_draws():
    fig, text, info = toy.redraw(**view(schedule="linear", T=200, t=100))
    assert "No field: no pretrained model" in text and "**No model**" in info
    assert trace(fig, "contour") is not None


def test_dataset_and_T_controls():
    label, guidance, *out = toy.choose_dataset(**view(dataset="blobs", label="upper moon", guidance=2.0))
    assert label.choices == [(c, c) for c in (tl.UNCONDITIONAL, tl.MIXED, *[f"blob {i}" for i in range(6)])]
    assert label.value == tl.UNCONDITIONAL and guidance.value == 1.0 and len(out) == 3
    label, *_ = toy.choose_dataset(**view(dataset="checkerboard"))
    assert label.visible is False
    t, steps, T, *_ = toy.set_T(1000, **view(T=200, t=500, steps=300))
    assert (t.maximum, t.value, steps.value, T) == (200, 100, 200, 200)


def test_live_training_lowers_loss_and_distance_and_saves_a_checkpoint(monkeypatch):
    monkeypatch.setattr(tl, "UPDATE_S", 0.05)  # an update after the first few steps
    setup = tl.Setup.parse({**D, "source": "trained here"})
    updates = list(tl.train_updates(setup, 250, 0))
    first, last = updates[0], updates[-1]
    assert last.step == last.total == 250 and first.step < 100
    assert last.quality.sliced < 0.7 * first.quality.sliced and last.quality.energy < 0.5 * first.quality.energy
    loss = trace(last.curves, "scatter", "lines").y  # the running average
    assert loss[-1] < 0.7 * loss[0]
    model = load_model(last.path)
    assert model.config.step == 250 and model.config.dataset == "two-moons" and model.objective == "v"
    trained = tl.Setup.parse({**D, "source": "trained here", "trained": last.path})
    assert tl.model_path(trained) == tl.Path(last.path)
    frames = list(toy.generate(**run_args(source="trained here", trained=last.path, n=300, steps=10)))
    assert "Distance to the data" in frames[-1][1]
    assert model.class_names == []  # trained without labels: classes need the pretrained model
    with pytest.raises(UserInputError, match="is unconditional"):
        list(toy.generate(**run_args(source="trained here", trained=last.path, label="upper moon")))
    with pytest.raises(UserInputError, match="trained here is for two-moons, predicting v"):
        tl.model_path(tl.Setup.parse({**D, "objective": "eps", "source": "trained here", "trained": last.path}))
    text, download = toy.training_stopped(last.path)
    assert "step 250" in text and download.value["orig_name"] == tl.Path(last.path).name
    tl.forget(last.path)
    assert not tl.Path(last.path).parent.exists()


def test_stopped_training_ends_before_its_next_step_and_keeps_its_last_update(monkeypatch):
    """Stop during live training: no step after it, the checkpoint of the last update shown stays, and the run
    ends with the Stop button's own words (its event is not cancelled, so the chained redraw still runs)."""
    monkeypatch.setattr(tl, "UPDATE_S", 0.05)
    mine = SimpleNamespace(session_hash="training")
    toy.STOPS.expect(mine, "train")  # the Train click's first step
    run_ = toy.train(request=mine, dataset="two-moons", schedule="cosine", T=1000, objective="v", train_steps=2000,
                     seed=0, trained=None)
    first = next(run_)
    path = first[3]
    assert all(plot.visible and isinstance(plot.value, dict) for plot in first[:2])  # the plots appear with data
    text, download = toy.stop_training(mine)
    step = tl.read_config(path).step
    assert text == f"**Stopped** at step {step}: that model is kept (model: trained here) and can be downloaded."
    assert step < 2000 and download.value["orig_name"] == tl.Path(path).name
    rest = list(run_)
    assert len(rest) == 1 and tl.read_config(path).step == step
    curves, cloud, status, kept, source, offered = rest[0]  # the outputs of train, as the app wires them
    assert status == text and offered.value["orig_name"] == download.value["orig_name"]
    assert curves == cloud == kept == source == SKIP  # the session keeps the path of its last update
    assert toy.STOPS.stop(mine) == {} and toy.stop_training(mine) == (SKIP, SKIP)  # nothing left to stop
    tl.forget(path)


def test_a_generate_stopped_while_it_waits_makes_no_model_call(monkeypatch):
    started = []
    real = toy.reverse_frames

    def watched(*args):
        started.append(True)
        yield from real(*args)

    monkeypatch.setattr(toy, "reverse_frames", watched)
    mine = SimpleNamespace(session_hash="generate")
    toy.STOPS.expect(mine, "generate")  # the Generate click's first step; the run waits its turn
    assert toy.stop_generate(mine) == toy.STOPPED
    assert list(toy.generate(**run_args(steps=20), request=mine)) == [(SKIP, toy.STOPPED)]
    assert not started  # not even x_T was drawn
    assert toy.stop_generate(mine) == SKIP  # no run: the status is left alone
    assert len(list(toy.generate(**run_args(steps=20), request=mine))) == 1 + len(tl.shown(20)) and started


# --- through the app's API ---------------------------------------------------------------------------------

ENDPOINTS = {"/toy_forward", "/toy_set_T", "/toy_dataset", "/toy_generate", "/toy_stop", "/toy_train",
             "/toy_stop_training"}


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    return Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("dl")))


def test_the_named_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert ENDPOINTS <= set(api)
    params = [p["parameter_name"] for p in api["/toy_forward"]["parameters"]]
    assert params == ["dataset", "schedule", "T", "objective", "source", "t", "n", "seed", "field_kind", "method",
                      "steps", "eta", "spacing", "variance", "label", "guidance", "clip"]  # no State: server-side


def test_forward_through_the_api(client):
    fig, text, info = client.predict(*api_args(view(dataset="8-gaussians", t=120, n=400, seed=2)),
                                     api_name="/toy_forward")
    expected = toy.redraw(**view(dataset="8-gaussians", t=120, n=400, seed=2))
    assert fig["type"] == "plotly" and fig["plot"] == expected[0].to_json()
    assert (text, info) == expected[1:]


def test_generate_and_train_through_the_api(client):
    job = client.submit(*api_args(run_args(dataset="two-moons", objective="x0", n=400, steps=20)),
                        api_name="/toy_generate")
    final = job.result()
    assert len(job.outputs()) == 1 + len(tl.shown(20))
    assert "Distance to the data" in final[1]
    job = client.submit("two-moons", "cosine", 1000, "x0", 100, 0, api_name="/toy_train")
    curves, cloud, text, source, download = job.result()
    assert "**Done**" in text and curves["type"] == "plotly" and download["value"] is not None
    assert load_model(download["value"]).config.step == 100
    # the same session now samples the model it trained
    args = api_args(run_args(dataset="two-moons", objective="x0", source="trained here", n=200, steps=10))
    assert "Distance to the data" in client.predict(*args, api_name="/toy_generate")[1]


def test_errors_through_the_api(client):
    with pytest.raises(AppError, match="no pretrained model"):
        client.predict(*api_args(run_args(schedule="linear")), api_name="/toy_generate")
