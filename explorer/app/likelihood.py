"""The likelihood view: where in t a trained model spends its bits. Press Compute and watch the ELBO's terms
(L_T, the L_{t-1}, L_0) fill a curve over t for checkpoint A, then for checkpoint B on the same images.

This module builds the page and wires its events; what a run computes and shows is
explorer.app.likelihood_logic's (`ElboSettings.parse(controls)`, then `elbo_updates`). Handlers receive the controls
by name (Gradio's `inputs_kwargs`, the names of likelihood_logic.CONTROLS), so the API's parameters carry those names.

Runs take turns (RUN_GROUP, one at a time). The Stop button stops its session's run before its next model call, or
before it starts if it still waits its turn (explorer.app.stops: no event is cancelled); the run then ends by
itself, saying where it stopped.
"""
from __future__ import annotations

import gradio as gr

from explorer.app import catalogue
from explorer.app.catalogue import MAX_UPLOAD_BYTES, UPLOAD
from explorer.app.forward_logic import GALLERY
from explorer.app.likelihood_logic import (DEFAULTS, EXPLAIN, GALLERY_SET, NONE, OUTPUTS, ElboSettings, checkpoints,
                                           default_b, elbo_figure, elbo_updates, stride_limit, test_images)
from explorer.app.reverse_logic import default_name, stopped
from explorer.app.stops import Stops, as_outputs
from explorer.app.widgets import LATEX, for_visitor, gpu_bound

TITLE = "Likelihood"
RUN_GROUP = "likelihood-run"  # one run at a time, the others wait in the queue
STOPS = Stops()  # Compute's runs
STRATA_CHOICES = [("log-spaced: as many per decade of t", "log"), ("uniform: every stride", "uniform")]
IMAGE_CHOICES = [(f"the gallery (the first {len(GALLERY)} Fashion-MNIST test images)", GALLERY_SET),
                 (UPLOAD, UPLOAD)]


def compute(request: gr.Request = None, **controls):
    """Stream one run (inputs: CONTROLS by name; outputs: OUTPUTS), likelihood_logic.elbo_updates."""
    with STOPS.running(request, "elbo") as running:  # first: the click's entry is taken even if input is bad
        settings = ElboSettings.parse(controls)
        yield from as_outputs(elbo_updates(settings, running), OUTPUTS)


stop_run = STOPS.stop_handler(stopped, "elbo")  # the Stop button; output: the status


def stride_slider(checkpoint, upload, checkpoint_b, t_stride) -> gr.Slider:
    """The t stride slider, 1..T of the chosen checkpoints, its value kept within."""
    T = stride_limit(checkpoints(checkpoint, upload, checkpoint_b))
    return gr.Slider(maximum=T, value=min(int(t_stride), T))


@for_visitor
def choose(checkpoint, upload, checkpoint_b, t_stride):
    """A checkpoint (A or B) was picked from its list."""
    return stride_slider(checkpoint, upload, checkpoint_b, t_stride)


@for_visitor
def use_upload(upload, checkpoint_b, t_stride):
    """A checkpoint was uploaded: validate and load it, then select it as A."""
    catalogue.check_upload(upload)
    return (gr.Dropdown(choices=catalogue.checkpoint_choices(), value=UPLOAD),
            stride_slider(UPLOAD, upload, checkpoint_b, t_stride))


@for_visitor
def drop_upload(checkpoint_b, t_stride):
    """The checkpoint upload was removed: back to the default bundled checkpoint."""
    name = default_name(catalogue.bundled_images())
    if name is None:
        return gr.Dropdown(choices=catalogue.checkpoint_choices(), value=UPLOAD), gr.skip()
    return (gr.Dropdown(choices=catalogue.checkpoint_choices(), value=name),
            stride_slider(name, None, checkpoint_b, t_stride))


@for_visitor
def use_image(checkpoint, upload, image_upload):
    """An image was uploaded: read it at checkpoint A's resolution, then score it instead of the gallery."""
    test_images(checkpoints(checkpoint, upload, NONE)[0][1], UPLOAD, 1, image_upload)
    return UPLOAD


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d = DEFAULTS
    found = catalogue.bundled_images()
    start = default_name(found)
    T = found[start].T if start else 1000
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            with gr.Row():
                run = gr.Button("Compute the ELBO", variant="primary", elem_id="likelihood-run")
                stop = gr.Button("Stop", variant="stop", elem_id="likelihood-stop")
            checkpoint = gr.Dropdown(catalogue.checkpoint_choices(), value=start or UPLOAD, label="Checkpoint A",
                                     elem_id="likelihood-checkpoint")
            checkpoint_b = gr.Dropdown([("none", NONE), *catalogue.checkpoint_choices()[:-1]], value=default_b(found),
                                       label="Checkpoint B, overlaid", info="eps, x0 or v; linear or cosine",
                                       elem_id="likelihood-checkpoint-b")
            images = gr.Radio(IMAGE_CHOICES, value=d["images"], label="Test images", elem_id="likelihood-images")
            n = gr.Slider(1, len(GALLERY), value=d["n"], step=1, label="Gallery images", elem_id="likelihood-n")
            t_stride = gr.Slider(1, T, value=min(d["t_stride"], T), step=1, label="t stride",
                                 info="one model call per stratum: about T / stride per checkpoint",
                                 elem_id="likelihood-stride")
            strata = gr.Radio(STRATA_CHOICES, value=d["strata"], label="Strata of t", elem_id="likelihood-strata")
            seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed (t and noise)", elem_id="likelihood-seed")
            with gr.Accordion("Upload a checkpoint or an image", open=False):
                upload = gr.File(label=f"Checkpoint A: .safetensors from train.py, at most {MAX_UPLOAD_BYTES >> 20} MB",
                                 file_types=[".safetensors"], type="filepath", elem_id="likelihood-upload")
                image_upload = gr.File(label="Image to score, any format (centre square, resized)", type="filepath",
                                       elem_id="likelihood-image-upload")
        with gr.Column(scale=3):
            plot = gr.Plot(elbo_figure([], T), show_label=False, elem_id="likelihood-curve")
            status_md = gr.Markdown("Press **Compute the ELBO**.", latex_delimiters=LATEX, elem_id="likelihood-status")
            gr.Markdown(EXPLAIN, latex_delimiters=LATEX, elem_id="likelihood-text")

    controls = {"checkpoint": checkpoint, "upload": upload, "checkpoint_b": checkpoint_b, "images": images, "n": n,
                "image_upload": image_upload, "t_stride": t_stride, "strata": strata, "seed": seed}  # as CONTROLS
    at_once = {"concurrency_limit": None, "concurrency_id": "likelihood-stop", "show_progress": "hidden"}
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    run.click(STOPS.expecting("elbo"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(compute)), inputs_kwargs=controls, outputs=[plot, status_md], api_name="likelihood",
        concurrency_limit=1, concurrency_id=RUN_GROUP, show_progress="minimal")
    stop.click(stop_run, None, status_md, api_name="likelihood_stop", **at_once)
    around = {k: controls[k] for k in ("checkpoint", "upload", "checkpoint_b", "t_stride")}
    gr.on([checkpoint.input, checkpoint_b.input], choose, inputs_kwargs=around, outputs=t_stride,
          api_visibility="private", **quiet)
    upload.upload(use_upload, inputs_kwargs={k: around[k] for k in ("upload", "checkpoint_b", "t_stride")},
                  outputs=[checkpoint, t_stride], api_name="likelihood_upload_checkpoint", show_progress="minimal")
    upload.clear(drop_upload, inputs_kwargs={k: around[k] for k in ("checkpoint_b", "t_stride")},
                 outputs=[checkpoint, t_stride], api_visibility="private", **quiet)
    image_upload.upload(use_image, inputs_kwargs={k: controls[k] for k in ("checkpoint", "upload", "image_upload")},
                        outputs=images, api_name="likelihood_upload_image", show_progress="minimal")
    image_upload.clear(lambda: GALLERY_SET, None, images, api_visibility="private", **quiet)
