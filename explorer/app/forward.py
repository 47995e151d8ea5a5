"""The forward-noising view: an image dissolving into noise as t moves, with the maths beside it.

This module builds the page and wires its events; what it shows for a set of controls is
explorer.app.forward_logic's (`ForwardSettings.parse(controls)`, then `show`). Every handler receives the
controls by name (Gradio's `inputs_kwargs`, the names of forward_logic.DEFAULTS), so the API's parameters carry
those names too. A share link or a settings file sets the controls through `apply` (explorer.app.links).
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import gradio as gr

from explorer import checks
from explorer.app.forward_logic import (DEFAULTS, GALLERY, PICTURES, SEED_MAX, SIZES, T_CHOICES, UPLOAD,
                                        ForwardSettings, curves_csv, play_step, rescaled_t, show)
from explorer.app.links import Linked, SharePanel
from explorer.app.uploads import MODES
from explorer.app.widgets import LATEX, for_visitor
from explorer.schedules import SCHEDULES, T_RANGE

TITLE = "Forward process"
PLAY_INTERVAL = 0.15  # seconds between ticks of play (PLAY_FRAMES of them from 0 to T)
CURVES_DIR = Path(tempfile.gettempdir()) / "explorer-curves"  # the curves' CSV files (gradio serves a copy)
KEYS_HINT = "← → step t, Shift ×10"  # explorer/app/page.js steps the slider
CSS = """
#forward-gallery .grid-wrap { min-height: 0 !important; height: auto !important; padding: 4px !important; }
#forward-gallery .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important;
                                   grid-auto-rows: auto !important; gap: 4px !important; }
#forward-gallery .thumbnail-item { aspect-ratio: 1 / 1; height: auto !important; }
#forward-gallery .thumbnail-item img { width: 100%; height: 100%; object-fit: cover; }
"""  # the gallery as a compact 5 x 2 grid of square thumbnails in the narrow control column


@for_visitor
def forward(**controls) -> tuple:
    """The view's outputs (OUTPUTS) for the controls (named as DEFAULTS)."""
    return show(ForwardSettings.parse(controls))


@for_visitor
def use_upload(**controls):
    """A new upload: check it, select it in the image list and show it."""
    out = show(ForwardSettings.parse({**controls, "image": UPLOAD}))
    return gr.Dropdown(choices=[*GALLERY, UPLOAD], value=UPLOAD), *out


@for_visitor
def drop_upload(**controls):
    """The upload was removed: back to the first gallery image."""
    image = DEFAULTS["image"]
    out = show(ForwardSettings.parse({**controls, "image": image, "upload": None}))
    return gr.Dropdown(choices=list(GALLERY), value=image), *out


def pick_gallery(evt: gr.SelectData, **controls):
    """A click on a gallery thumbnail selects that image."""
    image = list(GALLERY)[evt.index]
    return image, *forward(**{**controls, "image": image})


@for_visitor
def set_T(T_before: int, **controls):
    """A new T: rescale the slider and keep t at the same fraction of the process."""
    T = checks.whole("T", controls["T"], *T_RANGE)
    t = rescaled_t(checks.whole("t", controls["t"], 0, T_before), T_before, T)
    return gr.Slider(maximum=T, value=t), T, *show(ForwardSettings.parse({**controls, "T": T, "t": t}))


@for_visitor
def step_back(**controls):
    """One step back, t - 1 (not below 0)."""
    settings = ForwardSettings.parse(controls)
    settings = replace(settings, t=max(0, settings.t - 1))
    return settings.t, *show(settings)


@for_visitor
def step_forward(**controls):
    """One step on, t + 1 (not beyond T)."""
    settings = ForwardSettings.parse(controls)
    settings = replace(settings, t=min(settings.T, settings.t + 1))
    return settings.t, *show(settings)


@for_visitor
def curves_file(schedule: str, T: int) -> gr.DownloadButton:
    """The "Curves (.csv)" button's file for this schedule and T (forward_logic.curves_csv)."""
    schedule, T = checks.choice("schedule", schedule, SCHEDULES), checks.whole("T", T, *T_RANGE)
    return gr.DownloadButton(value=str(curves_csv(schedule, T, CURVES_DIR)))


def toggle_play(playing: bool):
    """Play or pause: the timer steps t by T / PLAY_FRAMES every PLAY_INTERVAL seconds."""
    playing = not playing
    return playing, gr.Timer(active=playing), gr.Button("⏸ Pause" if playing else "▶ Play")


@for_visitor
def tick(**controls):
    """One step of play: t advances (from 0 again after T); reaching T stops the timer. Otherwise the play
    state is left alone (gr.skip), so a pause clicked while a tick is running is not undone."""
    settings = ForwardSettings.parse(controls)
    settings = replace(settings, t=play_step(settings.t, settings.T))
    out = show(settings)
    if settings.t < settings.T:
        return settings.t, gr.skip(), gr.skip(), gr.skip(), *out
    return settings.t, False, gr.Timer(active=False), gr.Button("▶ Play"), *out


def apply(controls: dict) -> tuple:
    """A link's or a settings file's controls (checked, named as DEFAULTS) on the page: the updates of the
    components of the Linked that build() returns."""
    s = ForwardSettings.parse(controls)
    return s.image, s.schedule, s.T, s.seed, gr.Slider(maximum=s.T, value=s.t), s.log_y, s.T, *show(s)


def build() -> Linked:
    """Create the view's components and events inside the current gr.Tab; returns what links set."""
    d = DEFAULTS
    first = forward(**d)
    pixelated = ["pixelated"]
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = gr.Dropdown(list(GALLERY), value=d["image"], label="Image", elem_id="forward-image")
            gallery = gr.Gallery([str(p) for p in GALLERY.values()], columns=5, height="auto", allow_preview=False,
                                 show_label=False, elem_id="forward-gallery", elem_classes=pixelated, buttons=[])
            schedule = gr.Radio(list(SCHEDULES), value=d["schedule"], label="Schedule", elem_id="forward-schedule")
            T = gr.Radio(list(T_CHOICES), value=d["T"], label="T (number of steps)", elem_id="forward-T")
            seed = gr.Number(d["seed"], precision=0, minimum=0, maximum=SEED_MAX, label="Seed",
                             elem_id="forward-seed")
            with gr.Accordion("Upload your own image", open=False):
                upload = gr.File(label="Image file, any format (≤ 40 MP)", type="filepath",
                                 file_count="single", elem_id="forward-upload")
                size = gr.Radio(list(SIZES), value=d["size"], label="Resolution (centre square, resized)")
                colour = gr.Radio(list(MODES), value=d["colour"], label="Colour")
            sharing = SharePanel.build("forward")
        with gr.Column(scale=4):
            with gr.Row(equal_height=True):
                t = gr.Slider(0, d["T"], value=d["t"], step=1, precision=0, scale=8, elem_id="forward-t",
                              label="t: 0 is the image, T is pure noise", info=KEYS_HINT)
                back = gr.Button("◀ −1", scale=0, min_width=90, elem_id="forward-back")
                play = gr.Button("▶ Play", variant="primary", scale=0, min_width=120, elem_id="forward-play")
                ahead = gr.Button("+1 ▶", scale=0, min_width=90, elem_id="forward-ahead")
            with gr.Row():
                pictures = [gr.Image(value, label=label, format="png", interactive=False, elem_id=f"forward-{key}",
                                     elem_classes=pixelated, buttons=["download"])
                            for value, (key, label) in zip(first[:4], PICTURES.items())]
            text_images = gr.Markdown(first[7], label="about the pictures", latex_delimiters=LATEX,
                                      elem_id="forward-text-images")
    with gr.Row(equal_height=False):
        with gr.Column():
            curves = gr.Plot(first[4], label="schedule curves", show_label=False, elem_id="forward-curves")
            with gr.Row():
                log_y = gr.Checkbox(d["log_y"], label="logarithmic y axis", elem_id="forward-log")
                csv = gr.DownloadButton("Curves (.csv)", str(curves_csv(d["schedule"], d["T"], CURVES_DIR)),
                                        size="sm", scale=0, min_width=150, elem_id="forward-csv")
            text_curves = gr.Markdown(first[8], label="about the schedule", latex_delimiters=LATEX,
                                      elem_id="forward-text-curves")
        with gr.Column():
            spectrum = gr.Plot(first[5], label="power spectrum", show_label=False, elem_id="forward-spectrum")
            text_spectrum = gr.Markdown(first[9], label="about the spectrum", latex_delimiters=LATEX,
                                        elem_id="forward-text-spectrum")
        with gr.Column():
            hist = gr.Plot(first[6], label="histogram", show_label=False, elem_id="forward-histogram")
            text_hist = gr.Markdown(first[10], label="about the histogram", latex_delimiters=LATEX,
                                    elem_id="forward-text-histogram")
    timer = gr.Timer(PLAY_INTERVAL, active=False)
    playing = gr.State(False)  # whether the timer runs
    T_shown = gr.State(d["T"])

    controls = {"image": image, "upload": upload, "size": size, "colour": colour, "schedule": schedule, "T": T,
                "seed": seed, "t": t, "log_y": log_y}  # named as DEFAULTS
    but_image = {k: v for k, v in controls.items() if k != "image"}
    outputs = [*pictures, curves, spectrum, hist, text_images, text_curves, text_spectrum, text_hist]
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    gr.on([t.input, image.input, size.input, colour.input, schedule.input, seed.input, log_y.input],
          forward, inputs_kwargs=controls, outputs=outputs, api_name="forward", **quiet)
    upload.upload(use_upload, inputs_kwargs=but_image, outputs=[image, *outputs], api_name="upload",
                  show_progress="minimal")
    upload.clear(drop_upload, inputs_kwargs={k: controls[k] for k in ("schedule", "T", "seed", "t", "log_y")},
                 outputs=[image, *outputs], api_name="drop_upload", **quiet)
    gallery.select(pick_gallery, inputs_kwargs=but_image, outputs=[image, *outputs], api_visibility="private",
                   **quiet)
    T.input(set_T, inputs_kwargs={**controls, "T_before": T_shown}, outputs=[t, T_shown, *outputs],
            api_name="set_T", **quiet)
    back.click(step_back, inputs_kwargs=controls, outputs=[t, *outputs], api_name="step_back", **quiet)
    ahead.click(step_forward, inputs_kwargs=controls, outputs=[t, *outputs], api_name="step_forward", **quiet)
    gr.on([schedule.change, T.change], curves_file, [schedule, T], csv, api_visibility="private",
          show_progress="hidden")
    play.click(toggle_play, playing, [playing, timer, play], api_name="toggle_play", show_progress="hidden")
    timer.tick(tick, inputs_kwargs=controls, outputs=[t, playing, timer, play, *outputs], api_name="tick",
               show_progress="hidden")
    linked = Linked("forward", [image, schedule, T, seed, t, log_y, T_shown, *outputs], apply)
    sharing.wire(linked, controls)
    return linked
