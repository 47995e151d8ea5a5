"""The likelihood view with the bundled Fashion-MNIST checkpoints: its handlers called directly, at a large t stride
on one or two gallery images. Oracles: the streamed totals are explorer.likelihood.elbo's on the same images,
stride, strata and seed; every streamed curve is a prefix of the final one; a stopped run makes no further model
call; bad input and wrong uploads are answered with messages that say what is wrong."""
from __future__ import annotations

import math
import shutil
from types import SimpleNamespace

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from explorer.app import catalogue, plots
from explorer.app import likelihood as lk
from explorer.app import likelihood_logic as ll
from explorer.app.forward_logic import GALLERY
from explorer.app.options import UserInputError, schedule
from explorer.app.stops import Running
from explorer.likelihood import elbo, strata_spans

from conftest import count_model_calls

A, B = "fashion_v_cosine_lean.safetensors", "fashion_eps_cosine.safetensors"
STRIDE = 250  # 1 + ceil(999 / 250) = 5 model calls per checkpoint
CALLS = 1 + math.ceil(999 / STRIDE)
OUT = {name: i for i, name in enumerate(ll.OUTPUTS)}
SKIP = {"__type__": "update"}  # gr.skip()


def controls(**kw) -> dict:
    """The run's controls by name (CONTROLS): A against B on two gallery images at STRIDE, changed by kw."""
    return {**ll.DEFAULTS, "checkpoint": A, "checkpoint_b": B, "n": 2, "t_stride": STRIDE, **kw}


@pytest.fixture
def calls(monkeypatch):
    """Counts every network call; a hook can run on the k-th. The two models are loaded first, so their load-time
    trial call is not counted."""
    for name in (A, B):
        catalogue.model_at(catalogue.PRETRAINED / name)
    return count_model_calls(monkeypatch)


def oracle(name: str, x0: torch.Tensor, strata: str, seed: int = 0):
    """explorer.likelihood.elbo of a bundled checkpoint, as the view documents its draws."""
    model = catalogue.model_at(catalogue.PRETRAINED / name)
    return elbo(model, model.schedule, x0, model.objective, t_stride=STRIDE, strata=strata,
                generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("strata", ["log", "uniform"])
def test_the_streamed_curves_fill_up_to_the_elbo_of_the_library(calls, strata):
    settings = ll.ElboSettings.parse(controls(strata=strata))
    frames = list(ll._curves(settings, None))
    assert calls.n == len(frames) == 2 * CALLS  # one frame per model call, A's then B's
    final = frames[-1]
    assert [c.label for c in final] == ["A", "B"] and all(c.elbo.complete for c in final)
    for c, name in zip(final, (A, B)):
        expected = oracle(name, settings.x0, strata)
        assert torch.equal(c.elbo.t, expected.t) and torch.equal(c.elbo.terms_bpd, expected.terms_bpd)
        assert c.elbo.total_bpd == expected.total_bpd
    for k, curves in enumerate(frames):  # A grows term by term, then B beside the finished A
        part = curves[-1].elbo
        done = final[len(curves) - 1].elbo
        assert len(curves) == 1 + k // CALLS and len(part.t) == 1 + k % CALLS
        assert torch.equal(part.t, done.t[:len(part.t)]) and torch.equal(part.terms_bpd, done.terms_bpd[:len(part.t)])
    ends = [start + span - 1 for start, span in strata_spans(1000, STRIDE, strata)]
    t, spent = final[0].cumulative()  # bits spent up to the end of each span, then L_T at T: the total
    assert t.tolist() == [1, *ends, 1000] and spent[-1] == pytest.approx(final[0].elbo.total_bpd, rel=1e-6)


def test_log_strata_cut_t_as_finely_as_the_stride_and_keep_the_total_unbiased():
    """The view's default strata (explorer.likelihood.strata_spans, "log"): as many spans as a uniform stride, that
    tile t = 2..T in order and grow with t, so a log t axis gets points in every decade; and the stratified total
    averages to the full one, as the uniform stride's does (tests/test_likelihood.py)."""
    for T, stride in [(1000, 40), (1000, 1), (50, 7), (2, 5), (1, 1)]:
        spans = strata_spans(T, stride, "log")
        assert len(spans) == len(strata_spans(T, stride, "uniform")) == math.ceil((T - 1) / stride)
        assert [start for start, _ in spans] == [2 + sum(n for _, n in spans[:i]) for i in range(len(spans))]
        assert sum(n for _, n in spans) == T - 1 and all(n >= 1 for _, n in spans)
    lengths = [n for _, n in strata_spans(1000, 40, "log")]
    assert lengths == sorted(lengths) and lengths[0] == 1 and lengths[-1] > 100
    s = schedule("linear", 100)
    x0 = torch.randint(0, 256, (8, 1, 4, 4), generator=torch.Generator().manual_seed(0)) / 255 * 2 - 1
    zero = lambda x, t, y: torch.zeros_like(x)  # noqa: E731
    full = elbo(zero, s, x0, generator=torch.Generator().manual_seed(0))
    totals = [elbo(zero, s, x0, t_stride=10, strata="log", generator=torch.Generator().manual_seed(k)).total_bpd
              for k in range(8)]
    assert sum(totals) / len(totals) == pytest.approx(full.total_bpd, rel=0.15)


def test_the_figure_draws_each_partial_as_a_prefix_of_the_final_one():
    running = Running("elbo")
    updates = list(ll.elbo_updates(ll.ElboSettings.parse(controls()), running))
    assert len(updates) == 2 * CALLS
    last = updates[-1]["curve"]
    go.Figure(last.to_dict())  # valid with Plotly's validation on
    final = {tr.name.split(":")[0]: tr for tr in last.data if tr.showlegend is not False}
    assert [name.split(":")[0] for name in final] == ["A", "B"]
    for update in updates:
        for tr in update["curve"].data:
            if tr.showlegend is not False:  # the L_{t-1} line of A or B
                whole = final[tr.name.split(":")[0]]
                assert np.array_equal(tr.x, whole.x[:len(tr.x)]) and np.array_equal(tr.y, whole.y[:len(tr.y)])
    layout = last.layout
    assert layout.xaxis.type == "log" and layout.yaxis.type == "log" and layout.font.size == plots.FONT
    assert layout.title.font.size == plots.TITLE_FONT and layout.legend.font.size == plots.LEGEND_FONT
    x0 = ll.ElboSettings.parse(controls()).x0
    totals = [oracle(name, x0, "log").total_bpd for name in (A, B)]
    assert [tr.name for tr in final.values()] == [f"A: {A[:-12]}: {totals[0]:.3f} bits/dim",
                                                  f"B: {B[:-12]}: {totals[1]:.3f} bits/dim"]
    text = updates[-1]["status"]
    assert text.startswith("**Done**") and all(f"**{total:.3f}**" in text for total in totals)
    assert "Evaluating **A: 1 of 5 timesteps**" in updates[0]["status"]
    assert "Evaluating **B: 2 of 5 timesteps**" in updates[CALLS + 1]["status"]


def test_without_b_one_curve_and_the_gallery_images_as_they_are():
    settings = ll.ElboSettings.parse(controls(checkpoint_b=ll.NONE, n=3))
    assert len(settings.runs) == 1 and settings.x0.shape == (3, 1, 28, 28)
    first = next(iter(GALLERY.values()))
    pixels = torch.from_numpy(np.asarray(Image.open(first), dtype=np.float32))
    assert torch.equal(settings.x0[0, 0], pixels / 127.5 - 1)  # on the 8-bit grid, unchanged


def test_an_uploaded_image_is_scored_at_the_checkpoints_shape(uploads):
    settings = ll.ElboSettings.parse(controls(images=lk.UPLOAD, image_upload=str(uploads["photo"])))
    assert settings.x0.shape == (1, 1, 28, 28)
    assert torch.equal(torch.round((settings.x0 + 1) * 127.5), (settings.x0 + 1) * 127.5)  # 8-bit levels
    assert lk.use_image(A, None, str(uploads["photo"])) == lk.UPLOAD


def test_stop_during_a_call_ends_the_run_after_it(calls):
    running = Running("elbo")
    calls.hooks[3] = running.halt  # Stop pressed while the third model call runs
    updates = list(ll.elbo_updates(ll.ElboSettings.parse(controls()), running))
    assert calls.n == 3  # the call in progress finishes; no further call is made
    assert updates[-1] == {"status": "**Stopped** after A: 2 of 5 timesteps."}  # the third is not shown


def test_a_stop_while_the_run_waits_its_turn_ends_it_before_it_starts(calls):
    mine = SimpleNamespace(session_hash="likelihood waiting")
    lk.STOPS.expect(mine, "elbo")
    before = "**Stopped** before it started."
    assert lk.stop_run(mine) == before and lk.stop_run(SimpleNamespace(session_hash="other")) == SKIP
    outs = list(lk.compute(request=mine, **controls()))
    assert calls.n == 0 and outs == [(SKIP, before)]
    assert lk.STOPS.stop(mine) == {}


def test_choosing_checkpoints_keeps_the_stride_within_T(tmp_path):
    slider = lk.choose(A, None, B, 2000)
    assert (slider.maximum, slider.value) == (1000, 1000)
    copy = tmp_path / "mine.safetensors"
    shutil.copy(catalogue.PRETRAINED / B, copy)
    dropdown, slider = lk.use_upload(str(copy), ll.NONE, 40)
    assert dropdown.value == lk.UPLOAD and slider.value == 40
    assert lk.drop_upload(ll.NONE, 40)[0].value == A
    with pytest.raises(gr.Error, match="upload a checkpoint"):
        lk.choose(lk.UPLOAD, None, B, 40)


BAD = [
    (dict(t_stride=0), "t stride must be a whole number from 1 to 1000"),
    (dict(t_stride=1001), "t stride must be a whole number from 1 to 1000"),
    (dict(t_stride=2.5), "t stride must be a whole number"),
    (dict(n=0), "the number of images must be a whole number from 1 to 10"),
    (dict(n=11), "the number of images must be a whole number from 1 to 10"),
    (dict(seed=-1), "seed must be a whole number"),
    (dict(strata="cubic"), "unknown strata 'cubic'; allowed: uniform, log"),
    (dict(images="mine"), "unknown images 'mine'"),
    (dict(checkpoint_b="toy_blobs_eps.safetensors"), "unknown checkpoint B"),
    (dict(checkpoint="toy_blobs_eps.safetensors"), "unknown checkpoint"),
    (dict(checkpoint=lk.UPLOAD), "upload a checkpoint"),
    (dict(checkpoint=lk.UPLOAD, upload=str(catalogue.PRETRAINED / "toy_blobs_eps.safetensors")), "toy lab"),
    (dict(checkpoint=lk.UPLOAD, upload=str(catalogue.PRETRAINED / "fashion_classifier.safetensors")),
     "not a diffusion-explorer checkpoint"),
    (dict(checkpoint=lk.UPLOAD, upload=str(catalogue.PRETRAINED / "fashion_noisy_classifier.safetensors")),
     "not a diffusion-explorer checkpoint"),
    (dict(images=lk.UPLOAD), "upload an image first"),
    (dict(images=lk.UPLOAD, image_upload="/no/such/file.png"), "no longer on the server"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_settings_say_what_is_wrong(calls, change, message):
    with pytest.raises(ValueError, match=message):
        ll.ElboSettings.parse(controls(**change))
    with pytest.raises(gr.Error, match=message):  # as the page shows it
        next(lk.for_visitor(lk.compute)(**controls(**change)))
    assert calls.n == 0


@pytest.mark.parametrize("upload,message", [("text", "not an image"), ("truncated", "could not be decoded"),
                                            ("tiny", "at least 8 pixels"), ("bomb", "too large")])
def test_bad_image_uploads_say_why(uploads, upload, message):
    with pytest.raises(UserInputError, match=message):
        ll.ElboSettings.parse(controls(images=lk.UPLOAD, image_upload=str(uploads[upload])))
    with pytest.raises(gr.Error, match=message):
        lk.use_image(A, None, str(uploads[upload]))


def test_wrong_checkpoint_uploads_say_why():
    with pytest.raises(gr.Error, match="toy lab"):
        lk.use_upload(str(catalogue.PRETRAINED / "toy_blobs_eps.safetensors"), B, 40)
    with pytest.raises(gr.Error, match="not a diffusion-explorer checkpoint"):
        lk.use_upload(str(catalogue.PRETRAINED / "fashion_classifier.safetensors"), B, 40)


def test_the_text_leads_with_ddpm_eq_5_and_keeps_its_prose_short():
    formula, prose = ll.EXPLAIN.split("\n\n", 1)
    assert formula.startswith("$$") and formula.endswith("$$") and formula.count("$$") == 2
    assert "DDPM eq. 5" in prose and "seed 00" not in ll.EXPLAIN and len(prose) < 400
