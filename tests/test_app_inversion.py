"""The DDIM-inversion view, its handlers called directly.

Oracles: for data whose pixels are independent N(mu_y, s^2) given the class y the exact noise predictor is known,
eps*(x_t, t, y) = b_t (x_t - a_t mu_y) / (a_t^2 s^2 + b_t^2), and the DDIM ODE maps x_0 to x_T = (x_0 - mu_y) / s.
So inverting a class-0 image gives N(0, I)-like noise as the steps grow, the reconstruction error falls with the
steps, and decoding that x_T with class 9 shifts every pixel by mu_9 - mu_0. With the bundled model, the
reconstruction is samplers' DDIM eta-0 output from the inverted x_T. Bad input gets a message, through the API too.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.app import catalogue
from explorer.app import inversion as inv
from explorer.app import inversion_logic as il
from explorer.app.widgets import for_visitor
from explorer.samplers import Reconstruction, inversion_errors, run, sample

OUT = {name: i for i, name in enumerate(il.OUTPUTS)}
CHECKPOINT = "fashion_v_cosine_lean.safetensors"
S = 0.15
MU = -0.5 + 0.1 * torch.arange(10)  # the mean pixel of each of the ten classes


class GaussianClasses:
    """The exact eps-predictor of data with independent N(MU[y], S^2) pixels given the class y, on the bundled
    checkpoint's schedule; counts its calls and runs hooks[n] during the n-th."""
    objective, null_label = "eps", 10

    def __init__(self):
        self.schedule = catalogue.model_at(catalogue.PRETRAINED / CHECKPOINT).schedule
        self.calls, self.hooks = 0, {}

    def parameters(self):
        yield torch.zeros(())

    def __call__(self, x, t, y):
        self.calls += 1
        self.hooks.get(self.calls, lambda: None)()
        a = self.schedule.sqrt_alpha_bars[t].to(x.dtype).view(-1, 1, 1, 1)
        b = self.schedule.sqrt_one_minus_alpha_bars[t].to(x.dtype).view(-1, 1, 1, 1)
        return b * (x - a * MU[y].view(-1, 1, 1, 1)) / (a ** 2 * S ** 2 + b ** 2)


@pytest.fixture
def gaussian(monkeypatch, tmp_path):
    """The exact model in place of every checkpoint, and a class-0 image of its data uploaded as a PNG."""
    model = GaussianClasses()
    monkeypatch.setattr(catalogue, "model_at", lambda path: model)
    z = torch.randn(28, 28, generator=torch.Generator().manual_seed(0))
    u8 = ((MU[0] + S * z + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(u8).save(tmp_path / "class0.png")
    return SimpleNamespace(model=model, x_0=torch.from_numpy(u8 / 127.5 - 1).float()[None, None],
                           upload=str(tmp_path / "class0.png"))


@pytest.fixture
def seen(monkeypatch):
    """Everything the view's inversion_errors yields (Steps and Reconstructions), in order."""
    items = []

    def recorded(*args, **kwargs):
        for item in inversion_errors(*args, **kwargs):
            items.append(item)
            yield item

    monkeypatch.setattr(il, "inversion_errors", recorded)
    return items


def controls(**change) -> dict:
    return {"checkpoint": CHECKPOINT, "image": "dress", "upload": None, "label": "Dress", "steps": 10, **change}


def shown(outs, name: str) -> list:
    """The values an output took in a stream, in order (None clears it; gr.skip() leaves it alone)."""
    return [o[OUT[name]] for o in outs if not isinstance(o[OUT[name]], dict)]


def reconstructions(items) -> dict[int, Reconstruction]:
    return {r.steps: r for r in items if isinstance(r, Reconstruction)}


def test_gaussian_data_inverts_to_gaussian_noise_with_errors_that_fall_with_the_steps(gaussian, seen):
    outs = list(inv.invert(**controls(image=il.UPLOAD, upload=gaussian.upload, label="T-shirt/top", steps=100)))
    recs = reconstructions(seen)
    assert list(recs) == [100, 5, 10, 20, 50]  # the chosen count first, then the curve's
    assert np.array_equal(outs[0][OUT["original"]], il.picture(gaussian.x_0))
    z = (gaussian.x_0 - MU[0]) / S  # where the exact ODE takes x_0
    steps = sorted(recs)
    for fewer, more in zip(steps, steps[1:]):
        assert recs[more].rmse < recs[fewer].rmse
        assert (recs[more].x_T - z).abs().max() < (recs[fewer].x_T - z).abs().max()
    x_T = recs[100].x_T
    std = float(x_T.std(correction=0))
    assert abs(std - float(z.std(correction=0))) < 0.05 and abs(float(z.std()) - 1) < 0.1
    assert recs[100].rmse < 0.02
    assert "**Done**: 370 model calls" in outs[-1][OUT["status"]]
    assert f"std {std:.3f}" in shown(outs, "status")[-1]
    histogram, spectrum, errors = (shown(outs, name)[-1] for name in ("histogram", "spectrum", "errors"))
    assert f"std {std:.3f}" in histogram.layout.title.text
    assert list(errors.data[0].x) == steps and np.allclose(errors.data[0].y, [float(recs[n].rmse) for n in steps])
    for figure in (histogram, spectrum, errors):
        go.Figure(figure.to_dict())  # every property name valid


def test_decoding_x_T_with_another_class_translates_the_image(gaussian):
    args = controls(image=il.UPLOAD, upload=gaussian.upload, label="T-shirt/top", steps=100)
    edited = list(inv.edit(**args, target="Ankle boot"))
    assert "**Done**" in edited[-1][1] and "decoded as **Ankle boot**" in edited[-1][1]
    shifted = il.picture(gaussian.x_0 + MU[9] - MU[0]).astype(int)  # every pixel moved by mu_9 - mu_0
    assert np.abs(edited[-1][0].astype(int) - shifted).mean() < 2
    same = list(inv.edit(**args, target="T-shirt/top"))[-1][0]
    assert np.array_equal(same, shown(list(inv.invert(**args)), "reconstruction")[-1])


def test_the_bundled_model_regenerates_the_image_as_ddim_does(seen):
    outs = list(inv.invert(**controls()))
    recs = reconstructions(seen)
    assert list(recs) == [10, 5] and recs[10].rmse < recs[5].rmse and recs[10].rmse < 0.2
    model = catalogue.model_at(catalogue.PRETRAINED / CHECKPOINT)
    y = torch.tensor([3])  # Dress
    with torch.inference_mode():
        x_0 = run(sample(model, model.schedule, recs[10].x_T, method="ddim", eta=0.0, steps=10,
                         objective=model.objective, y=y))
    assert torch.equal(x_0, recs[10].x0)
    assert np.array_equal(shown(outs, "reconstruction")[-1], il.picture(x_0))
    assert np.array_equal(shown(outs, "x_T")[-1], il.picture(recs[10].x_T))
    frames = shown(outs, "x_t")
    assert len(frames) == 1 + 10 + 10  # x_0, ten steps up, ten down, each captioned with its t
    assert np.array_equal(frames[-1][:224], il.picture(x_0)) and (frames[-1][224:] < 255).any()
    assert "**Done**: 30 model calls" in outs[-1][OUT["status"]]


def test_stop_before_the_run_and_during_it(gaussian):
    mine = SimpleNamespace(session_hash="mine")
    inv.STOPS.expect(mine, "invert")  # the click, then Stop while it waits its turn
    assert inv.stop_run(mine)[0] == "**Stopped** before it started."
    outs = list(inv.invert(request=mine, **controls()))
    assert [o[OUT["status"]] for o in outs] == ["**Stopped** before it started."] and gaussian.model.calls == 0
    gaussian.model.hooks[3] = lambda: inv.stop_run(mine)  # Stop pressed during the third model call
    outs = list(inv.invert(request=mine, **controls()))
    assert gaussian.model.calls == 3 and outs[-1][OUT["status"]] == "**Stopped** after inverting: step 2 of 10, t = 200."
    gaussian.model.hooks[6] = lambda: inv.stop_run(mine)
    edited = list(inv.edit(request=mine, **controls(), target="Bag"))
    assert gaussian.model.calls == 6 and edited[-1][1] == "**Stopped** after inverting: step 2 of 10, t = 200."
    assert inv.STOPS.stop(mine) == {}  # the flags are gone with the runs


def test_a_gallery_image_brings_its_class_and_the_text_names_its_equation():
    label, original = inv.show_image(**controls(image="ankle boot"))
    assert label == "Ankle boot" and original.shape == (224, 224)
    label_, target, steps = inv.choose_checkpoint(**controls(), target="Bag")
    assert label_.value == "Dress" and target.value == "Bag" and steps.maximum == il.MAX_STEPS
    formula, prose = il.TEXT.split("$$\n\n")
    assert il.TEXT.count("$$") == 2 and "DDIM eq. 12 (Song et al. 2021)" in prose and "seed 00" not in prose
    assert len(prose) < 400


@pytest.mark.parametrize("change,message", [
    (dict(checkpoint="toy_blobs_eps.safetensors"), "'toy_blobs_eps.safetensors' is not a bundled class-conditional"),
    (dict(checkpoint="fashion_classifier.safetensors"), "'fashion_classifier.safetensors' is not a bundled class-"),
    (dict(checkpoint=None), "None is not a bundled class-conditional image model; .* needs one of: fashion_"),
    (dict(image="cat"), "unknown image 'cat'"),
    (dict(image=il.UPLOAD), "upload an image first"),
    (dict(label="Hat"), "unknown class 'Hat'; allowed: T-shirt/top, Trouser"),
    (dict(steps=0), r"steps must be a whole number from 1 to 100 \(each way\), got 0"),
    (dict(steps=101), "steps must be a whole number from 1 to 100"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(target="Hat"), "unknown class to decode with 'Hat'"),
])
def test_bad_settings_say_what_is_wrong(change, message):
    handlers = [inv.edit] if "target" in change else [inv.invert, inv.edit]
    for handler in handlers:
        with pytest.raises(gr.Error, match=message):
            next(for_visitor(handler)(**{"target": "Bag", **controls(**change)}))


@pytest.mark.parametrize("name,message", [("text", "is not an image this app can read"),
                                          ("truncated", "could not be decoded"), ("tiny", "only 1x1 pixels")])
def test_bad_uploads_say_why(uploads, name, message):
    args = controls(image=il.UPLOAD, upload=str(uploads[name]))
    with pytest.raises(gr.Error, match=message):
        inv.use_upload(**args)
    with pytest.raises(gr.Error, match=message):
        next(for_visitor(inv.invert)(**args))


def test_out_of_range_steps_through_the_api(app_url, tmp_path):
    client = Client(app_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in api["/inversion"]["parameters"]] == list(il.CONTROLS)
    assert [p["parameter_name"] for p in api["/inversion_edit"]["parameters"]] == [*il.CONTROLS, "target"]
    answers = [(0, "less than minimum value 1"), (101, "greater than maximum value 100"),  # Gradio's slider
               (2.5, "steps must be a whole number from 1 to 100")]  # the view's own check
    for name in ("/inversion", "/inversion_edit"):
        for steps, message in answers:
            with pytest.raises(AppError, match=message):
                client.predict(api_name=name, checkpoint=CHECKPOINT, image="dress", upload=None, label="Dress",
                               steps=steps)
