"""The DDIM-inversion view: run deterministic DDIM backwards from an image to its noise x_T, see whether that x_T
looks like Gaussian noise, regenerate the image from it, and decode the same x_T with another class.

This module builds the page and wires its events; what a run shows is explorer.app.inversion_logic's
(`InversionSettings.parse(controls)`, then `invert_stream` / `edit_stream`). Handlers receive the controls by name
(Gradio's `inputs_kwargs`, the names of inversion_logic.CONTROLS and "target"), so the API's parameters carry
those names too.

Invert and Edit take turns (RUN_GROUP, one at a time); the others wait in the queue. The Stop button stops its
session's run before its next model call, or before it starts if it still waits its turn (explorer.app.stops: no
event is cancelled); the run then ends by itself, saying where it stopped.
"""
from __future__ import annotations

import gradio as gr

from explorer.app.inversion_logic import (CONTROLS, DEFAULTS, EDIT_OUTPUTS, GALLERY, MAX_STEPS, OUTPUTS, TEXT, UPLOAD,
                                          InversionSettings, checkpoint, conditional, edit_stream, image_class,
                                          invert_stream, picture, source, start)
from explorer.app.reverse_logic import stopped
from explorer.app.stops import Stops, as_outputs
from explorer.app.widgets import LATEX, for_visitor, gpu_bound

TITLE = "DDIM inversion"
RUN_GROUP = "inversion-run"  # Invert and Edit share one slot: one run at a time, the others wait in the queue
STOPS = Stops()  # Invert's and Edit's runs
CSS = ".inversion-picture label[data-testid=block-label].float { position: static; margin-bottom: 4px; }"
# the pictures' labels above them, not over their top-left corner


def invert(request: gr.Request = None, **controls):
    """Stream one inversion (inputs: CONTROLS by name; outputs: OUTPUTS), inversion_logic.invert_stream."""
    with STOPS.running(request, "invert") as running:  # first: the click's entry is taken even if input is bad
        settings = InversionSettings.parse(controls)
        yield from as_outputs(invert_stream(settings, running), OUTPUTS)


def edit(request: gr.Request = None, **controls):
    """Stream the image's x_T decoded with the class "target" (inputs: CONTROLS and target; outputs:
    EDIT_OUTPUTS), inversion_logic.edit_stream."""
    with STOPS.running(request, "edit") as running:
        settings = InversionSettings.parse(controls)
        yield from as_outputs(edit_stream(settings, settings.target(controls), running), EDIT_OUTPUTS)


stop_run = STOPS.stop_handler(stopped, "invert", "edit")  # the Stop button; outputs: Invert's and Edit's status


@for_visitor
def show_image(**controls):
    """The chosen image as the model sees it; a gallery image also sets the class to its own."""
    settings = InversionSettings.parse(controls)
    return image_class(settings.image, settings.config.class_names) or settings.label, picture(source(settings))


@for_visitor
def use_upload(**controls):
    """A new upload: check it, select it in the image list and show it."""
    return UPLOAD, picture(source(InversionSettings.parse({**controls, "image": UPLOAD})))


@for_visitor
def choose_checkpoint(**controls):
    """Another checkpoint: its classes in both class lists (keeping the choices it has), its T bounding steps."""
    _, config = checkpoint(controls["checkpoint"])
    names = config.class_names

    def kept(value, fallback):
        return gr.Dropdown(choices=names, value=value if value in names else fallback)

    return (kept(controls["label"], image_class(controls["image"], names) or names[0]),
            kept(controls["target"], names[-1]), gr.Slider(maximum=min(MAX_STEPS, config.T)))


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d = DEFAULTS
    name, config = start()
    names = list(config.class_names) if config else []
    label_0 = image_class(d["image"], names) or (names[0] if names else None)
    target_0 = names[(names.index(label_0) + 1) % len(names)] if names else None
    first = picture(source(InversionSettings.parse({**d, "checkpoint": name, "label": label_0}))) if config else None
    pictured = {"format": "png", "interactive": False, "elem_classes": ["pixelated", "inversion-picture"],
                "buttons": ["download"]}
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            with gr.Row():
                run = gr.Button("Invert", variant="primary", elem_id="inversion-run")
                stop = gr.Button("Stop", variant="stop", elem_id="inversion-stop")
            ckpt = gr.Dropdown(list(conditional()), value=name, label="Checkpoint (class-conditional)",
                               elem_id="inversion-checkpoint")
            image = gr.Dropdown([*GALLERY, UPLOAD], value=d["image"], label="Image", elem_id="inversion-image")
            label = gr.Dropdown(names, value=label_0, label="Class of the image", elem_id="inversion-class")
            steps = gr.Slider(1, min(MAX_STEPS, config.T if config else MAX_STEPS), value=d["steps"], step=1,
                              label="Steps", info="each way (DDIM, η = 0)", elem_id="inversion-steps")
            with gr.Accordion("Upload your own image", open=False):
                upload = gr.File(label="Image file, any format (≤ 40 MP)", type="filepath", file_count="single",
                                 elem_id="inversion-upload")
        with gr.Column(scale=3):
            with gr.Row():
                pictures = [gr.Image(value, label=text, elem_id=f"inversion-{key}", **pictured)
                            for value, (key, text) in zip((first, None, None, None), (
                                ("x0", "x_0, the image"), ("xt", "x_t, up and back"), ("xT", "x_T, inverted"),
                                ("rec", "x_0 regenerated")))]
            status = gr.Markdown("Press **Invert**.", elem_id="inversion-status")
    with gr.Row():
        hist = gr.Plot(show_label=False, elem_id="inversion-histogram")
        spectrum = gr.Plot(show_label=False, elem_id="inversion-spectrum")
        errors = gr.Plot(show_label=False, elem_id="inversion-errors")
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown(TEXT, latex_delimiters=LATEX, elem_id="inversion-text")
        with gr.Column(min_width=240):
            gr.Markdown("**Edit**: decode the same x_T with another class.")
            target = gr.Dropdown(names, value=target_0, label="Decode as", elem_id="inversion-target")
            decode = gr.Button("Decode", elem_id="inversion-decode")
            edit_status = gr.Markdown(elem_id="inversion-edit-status")
        edited = gr.Image(label="x_T decoded with that class", elem_id="inversion-edited", **pictured)

    controls = dict(zip(CONTROLS, (ckpt, image, upload, label, steps)))
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last", "api_visibility": "private"}
    one_run = {"concurrency_limit": 1, "concurrency_id": RUN_GROUP, "show_progress": "minimal"}
    at_once = {"concurrency_limit": None, "concurrency_id": "inversion-stop", "show_progress": "hidden"}
    run.click(STOPS.expecting("invert"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(invert)), inputs_kwargs=controls,
        outputs=[*pictures, status, hist, spectrum, errors], api_name="inversion", **one_run)
    gr.on([decode.click, target.input], STOPS.expecting("edit"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(edit)), inputs_kwargs={**controls, "target": target}, outputs=[edited, edit_status],
        api_name="inversion_edit", **one_run)
    stop.click(stop_run, None, [status, edit_status], api_name="inversion_stop", **at_once)

    image.input(show_image, inputs_kwargs=controls, outputs=[label, pictures[0]], **quiet)
    upload.upload(use_upload, inputs_kwargs=controls, outputs=[image, pictures[0]], api_visibility="private",
                  show_progress="minimal")
    ckpt.input(choose_checkpoint, inputs_kwargs={**controls, "target": target}, outputs=[label, target, steps],
               **quiet)
