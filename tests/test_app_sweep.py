"""The steps-sweep view with tiny random checkpoints written here: its handlers called directly (the streamed
cells against samplers.sweep and samplers.sample from the same x_T, model calls, the partial grid, Stop, bad
input, the class choice), then the served app's named endpoint with bad and good values."""
from __future__ import annotations

import base64
import dataclasses
import io
import re
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.app import catalogue, plots
from explorer.app import sweep as sv
from explorer.app import sweep_logic as sl
from explorer.app.options import SEED_MAX
from explorer.app.reverse_logic import grid
from explorer.app.stops import Running
from explorer.app.widgets import for_visitor
from explorer.checkpoint import ModelConfig, save_model
from explorer.nets import build_net
from explorer.nets.mlp import MLPConfig
from explorer.nets.unet import UNET_PRESETS
from explorer.samplers import SWEEP_SAMPLERS, run, sample, sweep

CLASSES = ["squares", "stripes"]
OUT = {name: i for i, name in enumerate(sl.OUTPUTS)}
CELL = re.compile(r'data-sampler="([^"]+)" data-steps="(\d+)"><img src="data:image/png;base64,([^"]+)"[^>]*>'
                  r'<div class="caption">([^<]*)</div>')


def _save(path, kind: str, net_config, **config) -> None:
    """A checkpoint of a freshly built network whose weights are nudged off their init (a zero-initialised
    output layer would make every prediction 0)."""
    torch.manual_seed(0)
    net = build_net(kind, net_config.to_dict())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(path, net, ModelConfig(kind, net_config.to_dict(), **config))


@pytest.fixture(scope="session")
def pre(tmp_path_factory):
    """pretrained/: a class-conditional v model (cosine, T = 50, 16 x 16), an unconditional eps model and a 2D toy."""
    pre = tmp_path_factory.mktemp("sweep") / "pretrained"
    unet = dataclasses.replace(UNET_PRESETS["tiny"], image_size=16, num_classes=2)
    _save(pre / "tiny_v.safetensors", "unet", unet, schedule="cosine", T=50, objective="v", dataset="folder:pics",
          sample_shape=[1, 16, 16], class_names=CLASSES)
    _save(pre / "plain_eps.safetensors", "unet", dataclasses.replace(unet, num_classes=0), schedule="linear", T=50,
          objective="eps", dataset="folder:pics", sample_shape=[1, 16, 16])
    _save(pre / "moons.safetensors", "mlp", MLPConfig(hidden=8, num_blocks=1), schedule="cosine", T=50,
          objective="eps", dataset="two-moons", sample_shape=[2])
    return pre


@pytest.fixture
def bundled_dir(pre, monkeypatch):
    monkeypatch.setattr(catalogue, "PRETRAINED", pre)


@pytest.fixture
def calls(bundled_dir):
    """The batch of every call of the bundled models, in order, from forward hooks (the models are loaded first,
    so their load-time trial call is not counted); `during[k]` runs as the k-th call ends."""
    record = SimpleNamespace(batch=[], during={})

    def hook(module, args, output):
        record.batch.append(args[0].shape[0])
        record.during.get(len(record.batch), lambda: None)()

    handles = [catalogue.sampling_model(catalogue.PRETRAINED / name).register_forward_hook(hook)
               for name in catalogue.bundled_images()]
    yield record
    for handle in handles:
        handle.remove()


def controls(**kw) -> dict:
    """The sweep's controls by name (CONTROLS), tiny defaults changed by kw."""
    values = {"checkpoint": "tiny_v.safetensors", "label": "stripes", "seed": 3, "n": 1,
              "samplers": list(SWEEP_SAMPLERS), "step_counts": [5, 10], **kw}
    return {name: values[name] for name in sl.CONTROLS}


def oracle_noise(seed: int, n: int) -> tuple[torch.Tensor, int]:
    """As the view documents its draws: x_T from a generator seeded with the seed, then the cells' seed from it."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((n, 1, 16, 16), generator=g)
    return x_T, int(torch.randint(0, SEED_MAX, (), generator=g))


def cells_of(html: str) -> dict[tuple[str, int], tuple[np.ndarray, str]]:
    """The finished cells of the grid's HTML: (sampler, steps) -> (the picture's pixels, its caption)."""
    return {(s, int(k)): (np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))), caption)
            for s, k, data, caption in CELL.findall(html)}


def shown(x: torch.Tensor) -> np.ndarray:
    return plots.picture(grid(x), 1)


# --- handlers, called directly -------------------------------------------------------------------------------

def test_the_streamed_cells_are_the_library_sweep_of_the_same_noise(calls):
    """Each cell of the final grid is the image samplers.sweep reaches from the same x_T with the same seed; the
    grid fills in cell by cell (a partial grid at every step) and the table gains a row per cell."""
    outs = list(sv.run_sweep(**controls(n=2)))
    order = [(s, k) for k in (5, 10) for s in SWEEP_SAMPLERS]
    assert len(outs) == 1 + len(order)
    for j, out in enumerate(outs):
        assert set(cells_of(out[OUT["grid"]])) == set(order[:j])
        assert out[OUT["grid"]].count('class="pending"') == len(order) - j
        assert [row[:3] for row in out[OUT["table"]]] == [[sl.sampler_name(s), k, k] for s, k in order[:j]]
    model = catalogue.sampling_model(catalogue.PRETRAINED / "tiny_v.safetensors")
    x_T, cell_seed = oracle_noise(3, 2)
    corner = re.search(r'class="corner"><img src="data:image/png;base64,([^"]+)"', outs[0][OUT["grid"]]).group(1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(corner)))), shown(x_T))
    y = torch.full((2,), CLASSES.index("stripes"))
    want = run(sweep(model, model.schedule, x_T, step_counts=(5, 10), seed=cell_seed, objective="v", y=y,
                     clip_x0=True))
    final = cells_of(outs[-1][OUT["grid"]])
    for cell in want:
        pixels, caption = final[cell.sampler, cell.steps]
        assert np.array_equal(pixels, shown(cell.x0)), (cell.sampler, cell.steps)
        assert re.fullmatch(rf"{cell.steps} calls · \d+\.\d\d s", caption)
    for k in (5, 10):  # DDPM (sigma^2 = beta_tilde) is DDIM eta 1 (DDIM eq. 16): those rows agree, not the ODEs'
        ddpm, eta_0, eta_1, solver = (final[label, k][0].astype(int) for label in SWEEP_SAMPLERS)
        assert np.abs(ddpm - eta_1).max() <= 1 and np.abs(ddpm - eta_0).max() > 50 and (solver != eta_0).any()
    for k in (5, 10):  # DDIM eta 0 is the plain sampler from that x_T
        ddim = run(sample(model, model.schedule, x_T, method="ddim", eta=0.0, steps=k, objective="v", y=y,
                          clip_x0=True))
        assert np.array_equal(final["ddim eta 0", k][0], shown(ddim))
    assert "**Done**: 8 cells, 60 model calls" in outs[-1][OUT["status"]]


def test_one_model_call_per_step(calls):
    """DDPM, DDIM and DPM-Solver++ call the model once per step (guidance 1: one batch of n, not two)."""
    outs = list(sv.run_sweep(**controls(n=3, step_counts=[5, 20])))
    assert calls.batch == [3] * 4 * (5 + 20)
    assert [(row[1], row[2]) for row in outs[-1][OUT["table"]]] == [(5, 5)] * 4 + [(20, 20)] * 4
    assert all(row[3] > 0 for row in outs[-1][OUT["table"]])


def test_rows_and_columns_follow_the_choice_in_the_pages_order(calls, monkeypatch):
    """Rows in the order of SWEEP_SAMPLERS and columns increasing, whatever order they were ticked in; the status
    counts a long cell's model calls every TICK of them."""
    monkeypatch.setattr(sl, "TICK", 4)
    settings = sl.SweepSettings.parse(controls(samplers=["dpm-solver++", "ddpm"], step_counts=[10, 5, 10]))
    assert settings.samplers == ("ddpm", "dpm-solver++") and settings.step_counts == (5, 10)
    outs = list(sl.sweep_stream(settings, Running("sweep")))
    ticks = [out["status"] for out in outs if set(out) == {"status"}]
    assert [t.split("running ")[1].split(" · ")[0] for t in ticks] == [
        "DDPM at 5 steps: step 4 of 5", "DPM-Solver++(2M) at 5 steps: step 4 of 5",
        "DDPM at 10 steps: step 4 of 10", "DDPM at 10 steps: step 8 of 10",
        "DPM-Solver++(2M) at 10 steps: step 4 of 10", "DPM-Solver++(2M) at 10 steps: step 8 of 10"]
    html = outs[-1]["grid"]
    assert html.index("DDPM") < html.index("DPM-Solver++") and html.index(">5 steps") < html.index(">10 steps")


def test_stop_ends_the_sweep_before_the_next_cell(calls):
    running = Running("sweep")
    stream = sl.sweep_stream(sl.SweepSettings.parse(controls()), running)
    next(stream)  # x_T and the blank grid
    assert len(next(stream)["table"]) == 1 and len(calls.batch) == 5  # the first cell, DDPM at 5 steps
    assert running.halt() == "1 of 8 cells done"
    assert list(stream) == [{"status": "**Stopped** with 1 of 8 cells done."}] and len(calls.batch) == 5


def test_the_stop_button_stops_its_own_sessions_sweep(calls):
    """Stop during a model call ends the sweep after it; Stop while the sweep waits its turn ends it before it
    starts; another session's Stop does nothing."""
    mine, other = SimpleNamespace(session_hash="mine"), SimpleNamespace(session_hash="other")
    pressed = []
    calls.during[7] = lambda: pressed.append((sv.stop_sweep(other), sv.stop_sweep(mine)))
    outs = list(sv.run_sweep(request=mine, **controls()))
    stopped = "**Stopped** with 1 of 8 cells done."
    assert len(calls.batch) == 7 and pressed == [({"__type__": "update"}, stopped)]
    assert outs[-1] == ({"__type__": "update"}, {"__type__": "update"}, stopped)
    sv.STOPS.expect(mine, "sweep")  # a click whose sweep still waits in the queue
    assert sv.stop_sweep(mine) == "**Stopped** before it started."
    assert [out[OUT["status"]] for out in sv.run_sweep(request=mine, **controls())] == [
        "**Stopped** before it started."] and len(calls.batch) == 7


@pytest.mark.parametrize("change,message", [
    ({"step_counts": []}, "choose at least one step count"),
    ({"step_counts": [7]}, "unknown step count 7; allowed: 5, 10, 20, 50, 1000"),
    ({"step_counts": 5}, "the step counts must be a list"),
    ({"step_counts": [5, 1000]}, "T = 50 timesteps, so at most 50 steps; untick 1000"),
    ({"samplers": ["euler"]}, "unknown sampler 'euler'; allowed: ddpm, ddim eta 0, ddim eta 1, dpm-solver++"),
    ({"samplers": []}, "choose at least one sampler"),
    ({"seed": -1}, "seed must be a whole number from 0 to"),
    ({"seed": 2 ** 63}, "seed must be a whole number from 0 to"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"n": 5}, "images per cell must be a whole number from 1 to 4"),
    ({"n": 0}, "images per cell must be a whole number from 1 to 4"),
    ({"checkpoint": "moons.safetensors"}, "open 2D toys in the toy lab"),
    ({"checkpoint": "nope.safetensors"}, "unknown checkpoint 'nope.safetensors'; allowed: plain_eps"),
    ({"label": "circles"}, "unknown class 'circles'; allowed: squares, stripes"),
    ({"checkpoint": "plain_eps.safetensors"}, "plain_eps.safetensors is unconditional"),
])
def test_bad_input_is_answered_with_a_message_before_any_model_call(calls, change, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        list(for_visitor(sv.run_sweep)(**controls(**change)))
    assert len(calls.batch) == 0


def test_an_unconditional_checkpoint_runs_without_a_class(calls):
    outs = list(sv.run_sweep(**controls(checkpoint="plain_eps.safetensors", label=None, samplers=["ddpm"],
                                        step_counts=[5])))
    assert "unconditional" in outs[-1][OUT["status"]] and len(cells_of(outs[-1][OUT["grid"]])) == 1


def test_choosing_a_checkpoint_offers_its_classes(bundled_dir):
    plain = sv.choose_checkpoint("plain_eps.safetensors", "stripes")
    assert plain.visible is False and plain.value is None and plain.choices == []
    tiny = sv.choose_checkpoint("tiny_v.safetensors", "stripes")
    assert tiny.visible and tiny.value == "stripes" and [c[1] for c in tiny.choices] == CLASSES
    assert sv.choose_checkpoint("tiny_v.safetensors", None).value == "squares"
    with pytest.raises(gr.Error, match="toy lab"):
        sv.choose_checkpoint("moons.safetensors", None)


def test_the_text_leads_with_ddims_update_and_stays_short():
    prose = re.sub(r"\$[^$]+\$", "", sl.ABOUT.split("$$")[-1])
    assert sl.ABOUT.startswith("$$") and sl.ABOUT.count("$$") == 2
    assert "DDIM eq. 12 (Song et al. 2021)" in sl.ABOUT and "seed 00" not in sl.ABOUT and len(prose) < 400


# --- the served app ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False, analytics_enabled=False)


def test_the_endpoint_answers_bad_values_with_messages_and_runs_a_cheap_sweep(client):
    """Through the API, on the bundled default checkpoint: out-of-range seed and images, an unknown sampler and
    no step count are answered with messages; one cheap cell runs and returns its row."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/sweep"]
    assert [p["parameter_name"] for p in api["parameters"]] == list(sl.CONTROLS)
    label = catalogue.bundled_images()[sl.DEFAULTS["checkpoint"]].class_names[0]
    good = {**sl.DEFAULTS, "label": label, "n": 1, "samplers": ["dpm-solver++"], "step_counts": [5]}
    for change, words in (({"seed": -1}, "seed"), ({"seed": 2 ** 64}, "seed"), ({"n": 9}, "4"),
                          ({"samplers": ["euler"]}, "euler"), ({"step_counts": []}, "step count"),
                          ({"step_counts": 5}, "list")):
        with pytest.raises(AppError, match=words):
            client.predict(api_name="/sweep", **{**good, **change})
    html, table, status = client.predict(api_name="/sweep", **good)
    assert table["data"] == [["DPM-Solver++(2M)", 5, 5, table["data"][0][3]]] and "**Done**" in status
    assert len(cells_of(html)) == 1
