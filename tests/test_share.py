"""Share links and settings files (explorer.app.share): settings -> link -> settings and settings -> JSON ->
settings for the forward view, the reverse view and the toy lab, bad values answered with messages, unknown keys left out and named;
then the handlers (explorer.app.links) called directly: the page load's link, the lesson's buttons, Share, and a
settings file uploaded, good and bad."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import gradio as gr
import numpy as np
import pytest

from explorer.app import forward, lesson, links, reverse, share, toy
from explorer.app import forward_logic as fl
from explorer.app import reverse_logic as rl
from explorer.app import toy_logic as tl
from explorer.app.toy_logic import MIXED
from explorer.app.widgets import for_visitor

TABS = ("forward", "reverse", "toy", "likelihood", "inversion", "sweep", "lesson")
SKIP = {"__type__": "update"}  # gr.skip()


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def link_keys(view: str, controls: dict) -> dict:
    return {k: controls[k] for k in share.SPECS[view].keys}


FORWARD = {**fl.DEFAULTS, "image": "ankle boot", "schedule": "linear", "T": 200, "seed": 7, "t": 150.0,
           "log_y": True}
REVERSE = {**rl.DEFAULTS, "checkpoint": "fashion_eps_cosine.safetensors", "objective": "eps", "method": "ddpm",
           "variance": "beta", "steps": 100, "label": "Sneaker", "guidance": 2.5, "classifier_scale": 1.5, "seed": 3,
           "n": 8, "clip": False}
TOY = {**tl.DEFAULTS, "dataset": "blobs", "T": 50, "objective": "x0", "t": 40, "n": 700, "seed": 3,
       "field_kind": "eps", "method": "ddpm", "variance": "beta", "eta": 0.35, "spacing": "leading", "steps": 17,
       "label": MIXED, "guidance": 2.5, "clip": False}


@pytest.mark.parametrize("view,controls", [("forward", FORWARD), ("reverse", REVERSE), ("toy", TOY),
                                           ("forward", fl.DEFAULTS), ("reverse", rl.DEFAULTS), ("toy", tl.DEFAULTS)])
def test_settings_go_through_a_link_and_a_file_unchanged(view, controls):
    spec = share.SPECS[view]
    values, notes = share.settings_of(view, controls)
    whole = {"t": int(controls["t"])} if "t" in controls else {}
    assert not notes and values == link_keys(view, {**controls, **whole})
    link = share.read_link(query_of(share.to_query(view, values)), TABS)
    assert (link.view, link.ignored) == (view, [])
    assert link.controls == {**spec.defaults, **values, **{k: controls[k] for k in ("objective",) if view == "reverse"}}
    assert all(type(link.controls[k]) is type(values[k]) for k in values)  # 150.0 from a slider became 150
    restored, ignored = share.read_settings(view, share.to_json(view, values).encode())
    assert (restored, ignored) == (link.controls, [])


def test_the_link_reads_like_the_settings():
    values, _ = share.settings_of("forward", FORWARD)
    assert share.to_query("forward", values) == \
        "?view=forward&image=ankle+boot&schedule=linear&T=200&seed=7&t=150&log_y=true"


def test_what_no_link_carries_is_replaced_by_the_default_and_said(tmp_path):
    upload = tmp_path / "mine.png"
    upload.write_bytes(b"")
    values, notes = share.settings_of("forward", {**FORWARD, "image": fl.UPLOAD, "upload": str(upload)})
    assert values["image"] == fl.DEFAULTS["image"] and values["t"] == 150
    assert notes == [f"image {fl.UPLOAD!r} is not in the link: it opens with {fl.DEFAULTS['image']!r}"]
    values, notes = share.settings_of("toy", {**TOY, "source": "trained here", "trained": "/tmp/x.safetensors"})
    assert values["source"] == "pretrained" and "source 'trained here' is not in the link" in notes[0]
    values, notes = share.settings_of("forward", {**FORWARD, "T": 300, "t": 20})  # the API allows any T
    assert (values["T"], values["t"]) == (1000, 20) and "T 300 is not in the link" in notes[0]
    with pytest.raises(ValueError, match="t must be a whole number from 0 to 200"):
        share.settings_of("forward", {**FORWARD, "t": 201})  # bad controls: no link


def test_a_link_leaves_out_bad_and_unknown_parameters_and_names_them():
    link = share.read_link({"view": "forward", "t": "5000", "schedule": "zigzag", "seed": "x", "log_y": "yes",
                            "image": "sneaker", "bogus": "1", "__theme": "dark", "__sign": "abc"}, TABS)
    assert link.view == "forward"
    assert link.controls == {**fl.DEFAULTS, "image": "sneaker"}  # the good one applies
    reasons = dict(line.split(": ", 1) for line in link.ignored)
    assert set(reasons) == {"bogus", "t='5000'", "schedule='zigzag'", "seed='x'", "log_y='yes'"}  # no __ names
    assert "not a setting of the forward view (its settings: image, schedule, T, seed, t, log_y)" in reasons["bogus"]
    assert "from 0 to 1000" in reasons["t='5000'"] and "allowed: linear, cosine" in reasons["schedule='zigzag'"]
    assert "a number" in reasons["seed='x'"] and "true or false" in reasons["log_y='yes'"]
    assert "whole number" in share.read_link({"view": "toy", "t": "2.5"}, TABS).ignored[0]
    assert "finite number" in share.read_link({"view": "toy", "eta": "nan"}, TABS).ignored[0]
    assert "unknown T 300" in share.read_link({"view": "toy", "T": "300"}, TABS).ignored[0]  # not on the page


def test_T_moves_t_and_steps_as_the_page_does():
    link = share.read_link({"view": "toy", "T": "50", "steps": "80"}, TABS)
    assert (link.controls["T"], link.controls["t"], link.controls["steps"]) == (50, 15, 50)  # 300 of 1000: 15 of 50
    assert "from 1 to 50" in link.ignored[0]
    link = share.read_link({"view": "forward", "t": "40", "T": "50"}, TABS)  # any order in the query
    assert (link.controls["T"], link.controls["t"], link.ignored) == (50, 40, [])


def test_a_reverse_link_takes_the_checkpoint_first_with_its_objective_and_classes():
    link = share.read_link({"view": "reverse", "label": "Sneaker", "steps": "20",
                            "checkpoint": "fashion_x0_cosine.safetensors"}, TABS)  # any order in the query
    assert link.ignored == []
    assert {k: link.controls[k] for k in ("checkpoint", "objective", "label", "steps")} == \
        {"checkpoint": "fashion_x0_cosine.safetensors", "objective": "x0", "label": "Sneaker", "steps": 20}
    link = share.read_link({"view": "reverse", "checkpoint": "../app.py", "label": "Dog", "steps": "1001",
                            "classifier_scale": "99", "method": "heun"}, TABS)
    reasons = dict(line.split(": ", 1) for line in link.ignored)
    assert set(reasons) == {"checkpoint='../app.py'", "label='Dog'", "steps='1001'", "classifier_scale='99'",
                            "method='heun'"}
    assert "one of the bundled files (fashion_eps_cosine.safetensors" in reasons["checkpoint='../app.py'"]
    assert "unknown class 'Dog'" in reasons["label='Dog'"] and "from 1 to 1000" in reasons["steps='1001'"]
    assert link.controls == rl.DEFAULTS
    upload = {**REVERSE, "checkpoint": rl.UPLOAD, "upload": str(rl.catalogue.PRETRAINED / REVERSE["checkpoint"])}
    values, notes = share.settings_of("reverse", upload)  # an upload stays with its visitor
    assert values["checkpoint"] == rl.DEFAULTS["checkpoint"] and values["label"] == "Sneaker"
    assert notes == [f"checkpoint {rl.UPLOAD!r} is not in the link: it opens with {rl.DEFAULTS['checkpoint']!r}"]


def test_a_class_and_guidance_need_a_toy_with_classes():
    link = share.read_link({"view": "toy", "dataset": "swiss-roll", "label": MIXED, "guidance": "3"}, TABS)
    assert link.controls["label"] == tl.UNCONDITIONAL and link.controls["guidance"] == 1.0
    assert [line.split("=")[0] for line in link.ignored] == ["label", "guidance"]


def test_views_without_link_settings_and_links_without_views():
    assert share.read_link({}, TABS) == share.Link(None, None, [])
    assert share.read_link({"view": "sweep"}, TABS) == share.Link("sweep", None, [])
    assert share.read_link({"view": "sweep", "t": "3"}, TABS).ignored == ["t: the sweep tab takes no link settings"]
    link = share.read_link({"view": "nowhere", "t": "3"}, TABS)
    assert link.view is None and len(link.ignored) == 2 and "unknown view 'nowhere'" in link.ignored[0]
    assert share.read_link({"t": "3"}, TABS).ignored == ["t: the link names no view"]


@pytest.mark.parametrize("data,message", [
    (b"\xff\xfe", "no JSON text"), (b"{", "no JSON text"), (b"[" * 100_00, "no JSON text"),
    (b"[1, 2]", "a JSON object was expected, not list"), (b'{"t": 3}', "for view None, not the forward view"),
    (b'{"view": "toy"}', "for the 2D toy lab, not the forward view"),
    (b'{"view": "forward", "t": "250"}', "t must be a whole number"),
    (b'{"view": "forward", "log_y": 1}', "log_y must be True or False"),
    (b'{"view": "forward", "image": 3}', "image must be a non-empty text"),
    (b'{"view": "forward", "T": 50, "t": 60}', r"from 0 to 50 \(T = 50\)"),
    (b'{"view": "forward", "seed": NaN}', "seed must be a whole number"),
    (b" " * (share.MAX_FILE_BYTES + 1), "at most"),
])
def test_a_bad_settings_file_is_a_message(data, message):
    with pytest.raises(ValueError, match=message):
        share.read_settings("forward", data)


def test_unknown_keys_in_a_settings_file_are_left_out_and_named():
    controls, ignored = share.read_settings("toy", json.dumps({"view": "toy", "t": 9, "colour": "red"}).encode())
    assert controls == {**tl.DEFAULTS, "t": 9}
    assert ignored == ["colour: not a setting of the 2D toy lab (its settings: " + ", ".join(share.SPECS["toy"].keys)
                       + ")"]


def test_every_lesson_step_opens_a_valid_link():
    assert 5 <= len(lesson.STEPS) <= 6
    for step in lesson.STEPS:
        link = share.read_link(step.query, TABS)
        assert link.view in TABS and not link.ignored, step.title
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z*])", step.text)  # "eq. 4", "al. 2021" end none
        assert "seed 00" not in step.text and 2 <= len(sentences) <= 4, (step.title, sentences)


# --- the handlers -----------------------------------------------------------------------------------------------

N_FORWARD, N_REVERSE, N_TOY = 7 + len(fl.OUTPUTS), 19, 18 + 3  # the outputs of build()'s Linked: controls and
# states, then what they show
TOY_T = 16  # where the toy lab's t slider is among them
AT_TOY = 1 + N_FORWARD + N_REVERSE  # the tabs, then the views in the order of the page


@pytest.fixture(scope="module")
def app_links() -> links.Links:
    """The app's Links with the real views' apply (their components are not needed to compute the updates)."""
    return links.Links(None, {"forward": links.Linked("forward", [None] * N_FORWARD, forward.apply),
                              "reverse": links.Linked("reverse", [None] * N_REVERSE, reverse.apply),
                              "toy": links.Linked("toy", [None] * N_TOY, toy.apply),
                              "lesson": [links.Opener(None, step.query) for step in lesson.STEPS]})


def test_the_page_load_selects_the_tab_and_sets_the_controls(app_links):
    request = SimpleNamespace(query_params={"view": "forward", "image": "sneaker", "T": "200", "t": "120"})
    updates = app_links.on_load(request)
    assert len(updates) == len(app_links.outputs) == AT_TOY + N_TOY
    assert isinstance(updates[0], gr.Tabs) and updates[0].selected == "forward"
    image, schedule, T, seed, t, log_y, T_shown, *shown = updates[1:1 + N_FORWARD]
    assert (image, schedule, T, seed, t.value, t.maximum, log_y, T_shown) == \
        ("sneaker", "cosine", 200, 0, 120, 200, False, 200)
    expected = fl.show(fl.ForwardSettings.parse({**fl.DEFAULTS, "image": "sneaker", "T": 200, "t": 120}))
    assert all(np.array_equal(a, b) for a, b in zip(shown[:4], expected[:4])) and shown[7:] == list(expected[7:])
    assert list(updates[1 + N_FORWARD:]) == [SKIP] * (N_REVERSE + N_TOY)  # the other views are left as they are


def test_a_page_without_a_link_changes_nothing(app_links, recwarn):
    assert app_links.on_load(SimpleNamespace(query_params={})) == (SKIP,) * len(app_links.outputs)
    assert not recwarn.list


def test_the_page_load_names_what_it_left_out(app_links):
    with pytest.warns(UserWarning, match=r"Left out of the link: bogus: .*; t='9999': t must be"):
        updates = app_links.on_load(SimpleNamespace(query_params={"view": "toy", "bogus": "<b>", "t": "9999"}))
    assert updates[0].selected == "toy" and updates[AT_TOY + TOY_T].value == tl.DEFAULTS["t"]
    with pytest.warns(UserWarning, match="&lt;b&gt;"):  # the visitor's text is escaped
        app_links.on_load(SimpleNamespace(query_params={"view": "toy", "<b>": "1"}))


def test_the_toy_lab_gets_its_classes_sampler_options_and_slider_ranges(app_links):
    updates = app_links.open({"view": "toy", "dataset": "blobs", "T": "50", "t": "20", "method": "ddpm",
                              "steps": "30", "label": MIXED, "guidance": "2"})
    (dataset, _, T, _, source, _, _, _, method, variance, eta, _, steps, label, guidance, _, t, T_shown, fig, text,
     info) = updates[AT_TOY:]
    assert (dataset, T, source, method, T_shown) == ("blobs", 50, "pretrained", "ddpm", 50)
    assert variance.visible and not eta.visible
    assert (steps.maximum, steps.value, t.maximum, t.value) == (50, 30, 50, 20)
    assert label.value == MIXED and label.visible and MIXED in [c[0] for c in label.choices]
    assert guidance.value == 2.0 and guidance.visible
    assert "t = 20" in text and "No model" in info  # no bundled model at T = 50: the lab says so
    assert list(updates[1:AT_TOY]) == [SKIP] * (N_FORWARD + N_REVERSE)


def test_the_reverse_view_gets_the_checkpoint_its_controls_and_its_sigma_plot(app_links):
    updates = app_links.open({"view": "reverse", "checkpoint": "fashion_eps_cosine.safetensors", "method": "ddpm",
                              "variance": "beta", "steps": "100", "label": "Sneaker", "guidance": "2.5",
                              "classifier_scale": "1.5", "seed": "3", "n": "8", "clip": "false"})
    (checkpoint, method, variance, eta, spacing, seed, n, clip, objective, objective_b, info, steps, steps_b, label,
     guidance, guidance_b, classifier, classifier_b, plot) = updates[1 + N_FORWARD:AT_TOY]
    assert updates[0].selected == "reverse"
    assert (checkpoint, method, spacing, seed, n, clip) == ("fashion_eps_cosine.safetensors", "ddpm", "trailing", 3,
                                                             8, False)
    assert (variance.value, variance.visible, eta.visible) == ("beta", True, False)
    assert objective.value == objective_b.value == "eps" and "fashion_eps_cosine.safetensors" in info
    assert (steps.value, steps.maximum, steps_b.value) == (100, 1000, rl.DEFAULTS_B["steps_b"])
    assert (label.value, label.visible) == ("Sneaker", True) and "Sneaker" in [c[0] for c in label.choices]
    assert (guidance.value, guidance.visible, classifier.value, classifier.visible) == (2.5, True, 1.5, True)
    assert guidance_b.visible and classifier_b.visible  # run B keeps its own values
    assert "DDPM" in str(plot.to_dict()["data"])  # the sigma curve of the linked sampler
    assert list(updates[1:1 + N_FORWARD]) == [SKIP] * N_FORWARD and list(updates[AT_TOY:]) == [SKIP] * N_TOY


def test_a_lesson_button_opens_its_link(app_links):
    assert len(app_links.openers) == len(lesson.STEPS)
    for opener in app_links.openers:
        updates = app_links.open(opener.query)
        assert updates[0].selected == opener.query["view"]
        if opener.query["view"] == "reverse":  # its view only
            assert list(updates[1:1 + N_FORWARD]) + list(updates[AT_TOY:]) == [SKIP] * (N_FORWARD + N_TOY)
            assert updates[1 + N_FORWARD] == rl.DEFAULTS["checkpoint"]


def test_share_gives_the_link_and_a_settings_file_that_restores_it():
    query, button = links.share_link("toy", **{k: v for k, v in TOY.items() if k != "train_steps"})
    assert button.visible and query == share.to_query("toy", share.settings_of("toy", TOY)[0])
    path = button.value["path"]
    linked = links.Linked("toy", [None] * N_TOY, toy.apply)
    restored = links.load_settings(linked, path)
    expected = toy.apply({**tl.DEFAULTS, **share.settings_of("toy", TOY)[0]})
    assert restored[:8] == expected[:8] and restored[-2:] == expected[-2:]


def test_a_bad_settings_upload_is_a_message_and_sets_nothing(tmp_path):
    linked = links.Linked("forward", [None] * N_FORWARD, forward.apply)
    bad = tmp_path / "bad.json"
    bad.write_text('{"view": "forward", "t": -1}')
    with pytest.raises(gr.Error, match="t must be a whole number from 0 to 1000"):
        for_visitor(links.load_settings)(linked, str(bad))  # as the page calls it
    with pytest.raises(ValueError, match="no settings file arrived"):
        links.load_settings(linked, None)
    odd = tmp_path / "odd.json"
    odd.write_text('{"view": "forward", "t": 7, "zoom": 2}')
    with pytest.warns(UserWarning, match="Left out of the settings file: zoom: not a setting"):
        updates = links.load_settings(linked, str(odd))
    assert updates[4].value == 7
