"""The forward view's handlers called directly: shapes, values against explorer's functions, the ends of t,
the play/step/T controls, and uploads good and bad."""
from __future__ import annotations

import json
import math
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from explorer.app import forward as fv
from explorer.app import forward_logic as fl
from explorer.app import plots
from explorer.app.options import UserInputError
from explorer.app.uploads import load_upload
from explorer.forward import q_chain, q_sample
from explorer.schedules import make_schedule
from explorer.spectrum import crossover_frequency, radial_power_spectrum

GALLERY = dict(fl.DEFAULTS, image="sneaker")
OUT = {name: i for i, name in enumerate(fl.OUTPUTS)}


def controls(**kw):
    return {**GALLERY, **kw}


def settings(**kw) -> fl.ForwardSettings:
    return fl.ForwardSettings.parse(controls(**kw))


def scene(**kw) -> fl.Scene:
    """The cached Scene of the gallery controls changed by kw."""
    return fl.scene(settings(**{"t": 0, **kw}))


def shown(**kw) -> tuple:
    """What the view shows for the gallery controls changed by kw (ValueError for bad ones)."""
    return fl.show(settings(**kw))


def chain_draws(seed: int, t: int, shape) -> torch.Tensor:
    """eps_1..eps_t as the view documents them: one draw per step from one generator seeded with seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn(shape, generator=gen) for _ in range(t)]) if t else torch.zeros(0, *shape)


def normal_tv(density: np.ndarray) -> float:
    """Total variation distance between a histogram over fl.HIST_EDGES and N(0, 1)."""
    cdf = np.array([0.5 * (1 + math.erf(e / math.sqrt(2))) for e in fl.HIST_EDGES])
    p_ref = np.diff(cdf)
    p_hist = density * np.diff(fl.HIST_EDGES)
    outside = (1 - p_hist.sum()) + (1 - p_ref.sum())
    return 0.5 * (np.abs(p_hist - p_ref).sum() + outside)


def test_outputs_have_the_right_shapes(uploads):
    out = shown(t=123)
    assert len(out) == len(fl.OUTPUTS)
    for picture in out[:4]:
        assert picture.dtype == np.uint8 and picture.shape == (224, 224)  # 28 x 28 enlarged 8 times
    assert all(isinstance(fig, go.Figure) for fig in out[4:7])
    assert all(isinstance(text, str) and text for text in out[7:])
    colour = shown(image=fl.UPLOAD, upload=str(uploads["photo"]), size=128, colour="colour")
    assert all(p.shape == (128, 128, 3) for p in colour[:4])
    grey = shown(image=fl.UPLOAD, upload=str(uploads["photo"]), size=64, colour="grey")
    assert all(p.shape == (192, 192) for p in grey[:4])


@pytest.mark.parametrize("schedule,T,t", [("cosine", 1000, 400), ("linear", 200, 77), ("linear", 50, 50)])
def test_values_match_the_explorer_functions(schedule, T, t):
    seed = 3
    sc = scene(schedule=schedule, T=T, seed=seed)
    f = fl.snapshot(sc, t)
    s = make_schedule(schedule, T)
    x0 = sc.picture.x0
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    assert np.array_equal(f.x_t, q_sample(s, x0, t, eps).numpy())
    assert np.allclose(f.x_t_chain, q_chain(s, x0, t, noises=chain_draws(seed, t, x0.shape)).numpy(), atol=1e-6)
    freqs, p0 = radial_power_spectrum(x0)
    _, pt = radial_power_spectrum(torch.from_numpy(f.x_t))
    assert np.allclose(f.power_t, pt.numpy(), rtol=1e-5)
    assert f.crossover == crossover_frequency(s, t, freqs, p0)
    assert f.floor == pytest.approx(1 - float(s.alpha_bars[t]))
    assert np.allclose(f.signal, (s.alpha_bars[t] * p0).numpy(), rtol=1e-5)

    out = fl.render(sc, f)
    ab = float(s.alpha_bars[t])
    assert rf"\prod_{{s=1}}^{{t}} (1-\beta_s) = {fl.num(ab)}$" in out[OUT["text_curves"]]
    assert ab < 1e-3 or f"= {ab:.4f}$" in out[OUT["text_curves"]]  # e.g. "= 0.3702$"
    assert rf"= {fl.num(float(s.sqrt_alpha_bars[t]))}\,x_0 + " in out[OUT["text_images"]]
    assert f"floor $1-\\bar\\alpha_t = {fl.num(f.floor)}$" in out[OUT["text_spectrum"]]
    assert f"std $= {f.x_t.std():.4f}$" in out[OUT["text_histogram"]]
    markers, snr = out[OUT["curves"]].data[-2:]  # the SNR's on its own axis
    assert list(markers.x) == [t] * 3 and list(snr.x) == [t] and snr.yaxis == "y2"
    assert snr.y[0] == pytest.approx(ab / (1 - ab)) or t == 0
    assert markers.y[0] == pytest.approx(ab) and markers.y[2] == pytest.approx(math.sqrt(1 - ab))


def test_chain_checkpoints_give_the_same_draws_in_any_order(uploads):
    """A 3x64x64 chain keeps checkpoints every few steps and its last position; asking in any order (forward
    by a little, back, far) must not change a draw."""
    sc = scene(image=fl.UPLOAD, upload=str(uploads["photo"]), size=64, colour="colour", seed=11)
    assert sc.chain.every > 1
    x0, s = sc.picture.x0, sc.schedule
    for t in (613, 614, 620, 2, 999, 613, 140, 141, 0, 1000, 1000):
        expected = q_chain(s, x0, t, noises=chain_draws(11, t, x0.shape))
        assert torch.allclose(sc.chain(t), expected, atol=1e-5), t


def test_t0_is_the_image_and_t1_agrees_with_the_chain():
    sc = scene(schedule="linear", T=1000, seed=5)
    f0 = fl.snapshot(sc, 0)
    x0 = sc.picture.x0.numpy()
    assert np.array_equal(f0.x_t, x0) and np.array_equal(f0.x_t_chain, x0)
    out = fl.render(sc, f0)
    assert np.array_equal(out[OUT["x_t"]], out[OUT["x0"]])
    assert np.array_equal(out[OUT["x_t_chain"]], out[OUT["x0"]])
    assert f0.crossover is None and f0.floor == 0
    assert normal_tv(f0.density) > 0.4  # a clean Fashion-MNIST image is nothing like N(0, 1)
    f1 = fl.snapshot(sc, 1)
    assert np.allclose(f1.x_t, f1.x_t_chain, atol=1e-6)  # both use eps_1: the "same seed family"
    assert not np.allclose(fl.snapshot(sc, 2).x_t, fl.snapshot(sc, 2).x_t_chain)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_t_equal_T_is_indistinguishable_from_noise_by_the_histogram(schedule, uploads):
    small = fl.snapshot(scene(schedule=schedule, seed=0), 1000)  # 784 pixels
    photo = settings(image=fl.UPLOAD, upload=str(uploads["photo"]), size=128, colour="colour", schedule=schedule)
    large = fl.snapshot(fl.scene(photo), 1000)  # 49152
    assert normal_tv(small.density) < 0.15  # sampling noise alone gives about 0.09 for 784 values
    assert normal_tv(large.density) < 0.03  # and about 0.011 for 49152
    for f, side in ((small, 28), (large, 128)):
        n = f.x_t.size
        assert abs(f.mean) < 4 / math.sqrt(n) and abs(f.std - 1) < 4 / math.sqrt(2 * n)
        assert f.crossover == pytest.approx(1 / side)  # every frequency is drowned


def test_figures_are_valid_plotly_built_from_float32():
    for log_y in (False, True):
        out = shown(t=0, log_y=log_y)  # t = 0: infinite SNR must not reach the figure
        for fig in out[4:7]:
            go.Figure(fig.to_dict())  # validates every property
            for trace in fig.data:
                for axis in ("x", "y"):
                    values = getattr(trace, axis)
                    if isinstance(values, np.ndarray):
                        assert values.dtype == np.float32
        assert out[OUT["curves"]].layout.yaxis.type == ("log" if log_y else None)
        assert None in out[OUT["curves"]].data[-1].y  # SNR marker left out at t = 0


def test_spectrum_marks_the_crossover_and_the_floor():
    f = fl.snapshot(scene(schedule="cosine", T=1000, seed=0), 500)
    fig = shown(t=500)[OUT["spectrum"]]
    assert f.crossover is not None
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert any(s.y0 == pytest.approx(f.floor) for s in lines)
    assert any(s.x0 == pytest.approx(f.crossover) for s in lines)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_picture_enlarges_by_whole_pixels_and_clips():
    x = np.array([[[-2.0, 0.0], [1.0, 3.0]]], dtype=np.float32)
    p = plots.picture(x, 3)
    assert p.shape == (6, 6) and p.dtype == np.uint8
    assert p[0, 0] == 0 and p[0, 3] == 128 and p[5, 5] == 255 and (p[:3, :3] == 0).all()
    assert plots.picture(np.zeros((3, 4, 4), np.float32), 1).shape == (4, 4, 3)


def test_set_T_keeps_the_fraction_and_rescales_the_slider():
    slider, T_shown, *out = fv.set_T(1000, **controls(T=200, t=250))
    assert slider.maximum == 200 and slider.value == 50 and T_shown == 200
    assert "t = 50 of T = 200" in out[OUT["text_images"]]


def test_play_and_step():
    args = lambda t, T=50: controls(T=T, t=t)  # noqa: E731
    assert fv.step_forward(**args(50))[0] == 50 and fv.step_back(**args(0))[0] == 0
    assert fv.step_forward(**args(7))[0] == 8 and fv.step_back(**args(7))[0] == 6
    t, playing, timer, button, *_ = fv.tick(**args(10, T=1000))
    assert t == 20 and playing == timer == button == gr.skip()  # play state left alone mid-run
    t, playing, timer, button, *_ = fv.tick(**args(49))
    assert (t, playing, timer.active) == (50, False, False)
    assert fv.tick(**args(50))[0] == 0  # play again from the start
    playing, timer, button = fv.toggle_play(False)
    assert playing and timer.active and "Pause" in button.value


def test_bad_controls_give_a_message():
    with pytest.raises(ValueError, match=r"t must be a whole number from 0 to 50 \(T = 50\), got 51"):
        shown(t=51, T=50)
    with pytest.raises(ValueError, match="unknown schedule"):
        shown(schedule="quadratic")
    with pytest.raises(UserInputError, match="upload an image first"):
        shown(image=fl.UPLOAD)
    with pytest.raises(gr.Error, match="seed"):
        fv.forward(**controls(seed=-1))


@pytest.mark.parametrize("name", ["photo", "cmyk", "palette", "rgba", "grey16"])
@pytest.mark.parametrize("mode,channels", [("grey", 1), ("colour", 3)])
def test_uploads_in_any_mode_are_converted(uploads, name, mode, channels):
    x = load_upload(uploads[name], 32, mode)
    assert x.shape == (channels, 32, 32) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1 and x.std() > 0.05


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # as explorer.app.uploads sets
@pytest.mark.parametrize("name,message", [
    ("bomb", "too large|megapixels"), ("50mp", "too large|megapixels"), ("tiny", "1x1 pixels"),
    ("text", "not an image"), ("truncated", "could not be decoded"),
])
def test_bad_uploads_give_a_clear_message(uploads, name, message):
    with pytest.raises(UserInputError, match=message):
        load_upload(uploads[name], 64, "grey")
    with pytest.raises(gr.Error, match=message):  # what the visitor sees instead of a trace
        fv.use_upload(**controls(upload=str(uploads[name]), t=10))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_pixel_limit_holds_without_the_warning_filter(uploads):
    with pytest.raises(UserInputError, match="10000x5000 pixels"):
        load_upload(uploads["50mp"], 64, "grey")


def test_a_removed_upload_asks_for_it_again(tmp_path):
    gone = tmp_path / "gone.png"
    with pytest.raises(UserInputError, match="upload it again"):
        shown(image=fl.UPLOAD, upload=str(gone))


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_the_curves_csv_holds_the_schedules_exactly(schedule):
    """The "Curves (.csv)" button's file: named by schedule and T, a row per t = 0..T, each schedule's alpha_bar
    and SNR equal to explorer.schedules' float64 values (the selected schedule first)."""
    button = fv.curves_file(schedule, 50)
    path = Path(button.value["path"])  # gradio's copy in its cache
    assert path.name == f"alpha_bar_{schedule}_T50.csv"
    header, *rows = [line.split(",") for line in path.read_text().splitlines()]
    other = next(name for name in ("cosine", "linear") if name != schedule)
    assert header == ["t", f"alpha_bar_{schedule}", f"snr_{schedule}", f"alpha_bar_{other}", f"snr_{other}"]
    assert [int(row[0]) for row in rows] == list(range(51))
    for k, name in ((1, schedule), (3, other)):
        sched = make_schedule(name, T=50)
        assert [float(row[k]) for row in rows] == sched.alpha_bars.tolist()
        assert [float(row[k + 1]) for row in rows] == sched.snr.tolist()
    assert rows[0][2] == "inf"
    with pytest.raises(gr.Error, match="unknown schedule"):
        fv.curves_file("quadratic", 50)
    with pytest.raises(gr.Error, match="T must be"):
        fv.curves_file(schedule, 0)


def test_each_figure_names_its_png_download():
    """The modebar's "Download plot as a PNG" is on, with a name per panel, in the JSON that gr.Plot sends."""
    names = [json.loads(fig.to_json())["config"]["toImageButtonOptions"]["filename"]
             for fig in shown(schedule="linear", T=200, t=10)[4:7]]
    assert names == ["schedule_linear_T200", "power_spectrum", "histogram"]
    config = json.loads(shown()[4].to_json())["config"]
    assert config.get("displayModeBar", True) and "toImage" not in config.get("modeBarButtonsToRemove", [])
