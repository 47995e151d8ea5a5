"""The reverse-sampling view: press Generate and watch noise become an image, step by step, with the model's
current guess of the clean image beside it; change one setting, or compare two on the same x_T.

This module builds the page and wires its events; what a run shows is explorer.app.reverse_logic's
(`RunSettings.parse(controls)`, then `generate_stream` / `compare_stream`), the checkpoints are
explorer.app.catalogue's. Handlers receive the controls by name (Gradio's `inputs_kwargs`, the names of
reverse_logic.CONTROLS and CONTROLS_B), so the API's parameters carry those names too.

Runs take turns (RUN_GROUP, one at a time); the others wait in the queue. The Stop button stops its session's
run before its next model call, or before it starts if it still waits its turn (explorer.app.stops: no event
is cancelled); the run then ends by itself, saying where it stopped. The eps / x0 / v toggle switches to the
bundled checkpoint with the same dataset, schedule, T and classes trained with that objective. Classifier guidance
s sits under classifier-free guidance w, shown where the bundled noise-aware classifier fits the checkpoint (the
model info says why not elsewhere). After a run, the step slider replays its frames from the session's gr.State
(explorer.app.reverse_replay: small uint8 arrays, no model call). A share link or settings file sets run A's
controls (explorer.app.share: the checkpoint first, with its objective and classes).
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from explorer.app import catalogue
from explorer.app.catalogue import MAX_UPLOAD_BYTES, UPLOAD
from explorer.app.links import Linked, SharePanel
from explorer.app.options import MIXED, SamplerOptions, UserInputError
from explorer.app.reverse_logic import (COMPARE_OUTPUTS, DEFAULTS, DEFAULTS_B, KEEP_S, MAX_CLASSIFIER_SCALE,
                                        MAX_GUIDANCE, MAX_IMAGES, OUTPUTS, RunSettings, compare_stream, default_name,
                                        generate_stream, guide_for, model_info, sampler_options as checked_sampler,
                                        sigma_figure, stopped, with_checkpoint)
from explorer.app.reverse_replay import scrub
from explorer.app.stops import Stops, as_outputs
from explorer.app.widgets import (LATEX, METHOD_CHOICES, VARIANCE_CHOICES, for_visitor, gpu_bound, noise_controls,
                                  sampler_choice, sampler_options, steps_slider)
from explorer.checkpoint import ModelConfig, read_config
from explorer.parameterization import OBJECTIVES
from explorer.samplers import SPACINGS

TITLE = "Reverse process"
RUN_GROUP = "reverse-run"  # Generate and Compare share one slot: one run at a time, the others wait in the queue
STOPS = Stops()  # Generate's and Compare's runs
CSS = """
.reverse-grid .image-frame { width: 100%; }
.reverse-grid img { width: 100% !important; height: auto !important; max-height: 440px; object-fit: contain; }
.reverse-grid label[data-testid=block-label].float { position: static; margin-bottom: 4px; }
"""  # grids fill their box (enlarged without smoothing by the app's "pixelated" class), their labels above them


def generate(request: gr.Request = None, **controls):
    """Stream one run (inputs: CONTROLS by name; outputs: OUTPUTS, then the step slider), reverse_logic's
    generate_stream; the step slider is off while the run streams and spans the steps it showed after it."""
    with STOPS.running(request, "generate") as running:  # first: the click's entry is taken even if input is bad
        settings = RunSettings.parse(controls)
        for update in generate_stream(settings, running):
            yield *(update.get(name, gr.skip()) for name in OUTPUTS), step_slider(update)


def step_slider(update: dict):
    """The step slider for a streamed update: off from x_T on, over the shown steps once the run has ended."""
    if "replay" not in update:
        return gr.skip()
    replay = update["replay"]
    return gr.Slider(interactive=False) if replay is None else gr.Slider(maximum=replay.last, value=replay.last,
                                                                          interactive=True)


@for_visitor
def scrub_step(replay, step):
    """The step slider moved: the session's last run at that step again (x_t, x0_hat, the step's update and its
    numbers), from its kept frames (reverse_replay.scrub)."""
    shown = scrub(replay, step)
    return shown["x_t"], shown["x0_hat"], shown["update"], shown["numbers"]


def compare(request: gr.Request = None, **controls):
    """Stream two runs from the same x_T side by side (inputs: CONTROLS, then CONTROLS_B for run B, which
    shares the checkpoint family, class, seed and number of images; outputs: COMPARE_OUTPUTS)."""
    with STOPS.running(request, "compare") as running:  # first: the click's entry is taken even if input is bad
        a, b = RunSettings.parse(controls), RunSettings.parse_b(controls)
        yield from as_outputs(compare_stream(a, b, running), COMPARE_OUTPUTS)


stop_run = STOPS.stop_handler(stopped, "generate", "compare")  # the Stop button; outputs: both runs' status


@for_visitor
def sigma_plot(**controls):
    """The sigma curve of the current sampler settings, redrawn as they change (before any run)."""
    path, config = catalogue.resolve(controls["checkpoint"], controls["upload"], controls["objective"])
    return sigma_figure(config, [("", checked_sampler(controls, path, config))])


def checkpoint_controls(path: Path, config: ModelConfig, steps, steps_b, label, **chosen) -> tuple:
    """Updates of the controls that depend on the checkpoint (reverse_logic.with_checkpoint): objective (A and B),
    model info, steps (A and B, at most T), class and guidance w (A and B; hidden for unconditional models),
    classifier guidance s (A and B; hidden where the noise-aware classifier does not fit the checkpoint).
    `chosen`: values for guidance and classifier_scale (a link's); without them the sliders keep theirs where
    they apply and go to 1 and 0 where they do not."""
    c = with_checkpoint({"steps": steps, "steps_b": steps_b, "label": label, **chosen}, path, config)
    conditional = bool(config.class_names)
    steered = guide_for(path, config)[0] is not None

    def slider(name: str, shown: bool, off: float) -> gr.Slider:
        if name in c:
            return gr.Slider(visible=shown, value=c[name])
        return gr.Slider(visible=True) if shown else gr.Slider(visible=False, value=off)

    guidance, guidance_b = (slider(name, conditional, 1.0) for name in ("guidance", "guidance_b"))
    classifier, classifier_b = (slider(name, steered, 0.0) for name in ("classifier_scale", "classifier_scale_b"))
    return (gr.Radio(value=config.objective), gr.Radio(value=config.objective), model_info(path, config),
            gr.Slider(maximum=config.T, value=c["steps"]), gr.Slider(maximum=config.T, value=c["steps_b"]),
            gr.Dropdown(choices=[MIXED, *config.class_names], value=c["label"], visible=conditional),
            guidance, guidance_b, classifier, classifier_b)


@for_visitor
def choose_checkpoint(checkpoint, upload, steps, steps_b, label):
    """A checkpoint was picked from the list."""
    return checkpoint_controls(*catalogue.chosen(checkpoint, upload), steps, steps_b, label)


@for_visitor
def choose_objective(checkpoint, upload, objective, steps, steps_b, label):
    """The eps / x0 / v toggle: switch to the bundled checkpoint of the same family with that objective; if
    there is none, say so and keep the current one."""
    try:
        path, config = catalogue.resolve(checkpoint, upload, objective)
    except UserInputError as exc:
        gr.Warning(str(exc))
        current = catalogue.chosen(checkpoint, upload)[1].objective
        return gr.skip(), current, *([gr.skip()] * 9)
    value = UPLOAD if checkpoint == UPLOAD else path.name
    return (gr.Dropdown(choices=catalogue.checkpoint_choices(), value=value),
            *checkpoint_controls(path, config, steps, steps_b, label))


@for_visitor
def use_upload(upload, steps, steps_b, label):
    """A checkpoint was uploaded: validate and load it, then select it."""
    path = catalogue.check_upload(upload)
    return (gr.Dropdown(choices=catalogue.checkpoint_choices(), value=UPLOAD),
            *checkpoint_controls(path, read_config(path), steps, steps_b, label))


@for_visitor
def drop_upload(steps, steps_b, label):
    """The upload was removed: back to the default bundled checkpoint."""
    found = catalogue.bundled_images()
    if not found:
        return gr.Dropdown(choices=catalogue.checkpoint_choices(), value=UPLOAD), *([gr.skip()] * 10)
    name = default_name(found)
    return (gr.Dropdown(choices=catalogue.checkpoint_choices(), value=name),
            *checkpoint_controls(catalogue.PRETRAINED / name, found[name], steps, steps_b, label))


def apply(controls: dict) -> tuple:
    """A link's or a settings file's controls (checked, named as CONTROLS) on the page: the updates of the
    components of the Linked that build() returns; run B's steps go within the checkpoint's T and its guidance to
    what the checkpoint allows, as when the checkpoint is chosen on the page."""
    s = RunSettings.parse(controls)
    o = s.sampler
    return (s.path.name, o.method, *sampler_options(o.method, o.variance, o.eta), o.spacing, s.seed, s.n, s.clip,
            *checkpoint_controls(s.path, s.config, o.steps, DEFAULTS_B["steps_b"], s.label, guidance=s.guidance,
                                 classifier_scale=s.classifier_scale),
            sigma_figure(s.config, [("", o)]))


def build() -> Linked:
    """Create the view's components and events inside the current gr.Tab; returns what links set."""
    d, db = DEFAULTS, DEFAULTS_B
    found = catalogue.bundled_images()
    start = default_name(found)
    config = found.get(start)
    steered = bool(config and guide_for(catalogue.PRETRAINED / start, config)[0])
    T = config.T if config else 1000
    classes = list(config.class_names) if config else []
    options = SamplerOptions(d["method"], d["variance"], d["eta"], d["spacing"], min(d["steps"], T))
    figure = sigma_figure(config, [("", options)]) if config else None
    info = model_info(catalogue.PRETRAINED / start, config) if config else \
        f"No bundled image checkpoint in {catalogue.PRETRAINED.name}/: upload one (train it with train.py)."
    grid_style = ["pixelated", "reverse-grid"]
    with gr.Row():
        with gr.Column(scale=1, min_width=340):  # the action and the essentials first, in the first screen
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="reverse-generate")
                stop = gr.Button("Stop", variant="stop", elem_id="reverse-stop")
            checkpoint = gr.Dropdown(catalogue.checkpoint_choices(), value=start or UPLOAD, label="Checkpoint",
                                     elem_id="reverse-checkpoint")
            method = sampler_choice("reverse", d["method"])
            steps = steps_slider("reverse", T, d["steps"])
            label = gr.Dropdown([MIXED, *classes], value=MIXED, label="Class", visible=bool(classes),
                                elem_id="reverse-class")
            guidance = gr.Slider(0, MAX_GUIDANCE, value=d["guidance"], step=0.25, visible=bool(classes),
                                 label="Classifier-free w", info="0: unconditional · 1: conditional · > 1: further",
                                 elem_id="reverse-guidance")
            classifier = gr.Slider(0, MAX_CLASSIFIER_SCALE, value=d["classifier_scale"], step=0.5, visible=steered,
                                   label="Classifier s", info="0: off · > 0: up a noisy classifier's log p(y | x_t)",
                                   elem_id="reverse-classifier")
            with gr.Accordion("Advanced", open=False, elem_id="reverse-advanced"):
                variance, eta, spacing = noise_controls("reverse", d["method"], d["variance"], d["eta"],
                                                        d["spacing"])
                with gr.Row():
                    seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed", elem_id="reverse-seed")
                    n = gr.Slider(1, MAX_IMAGES, value=d["n"], step=1, label="Images", elem_id="reverse-n")
                clip = gr.Checkbox(d["clip"], label="Clip x̂₀ to [−1, 1]", elem_id="reverse-clip")
            objective = gr.Radio(list(OBJECTIVES), value=config.objective if config else "eps",
                                 label="The network predicts", info="switches to the checkpoint trained for it",
                                 elem_id="reverse-objective")
            info_md = gr.Markdown(info, latex_delimiters=LATEX, elem_id="reverse-info")
            with gr.Accordion("Upload a checkpoint", open=False):
                upload = gr.File(label=f".safetensors from train.py, at most {MAX_UPLOAD_BYTES >> 20} MB",
                                 file_types=[".safetensors"], type="filepath", elem_id="reverse-upload")
            sharing = SharePanel.build("reverse")
        with gr.Column(scale=3):
            with gr.Row():
                x_t = gr.Image(label="x_t", format="png", interactive=False, elem_id="reverse-xt",
                               elem_classes=grid_style, buttons=["download"])
                x0_hat = gr.Image(label="x̂₀, the model's guess of the clean image", format="png",
                                  interactive=False, elem_id="reverse-x0", elem_classes=grid_style,
                                  buttons=["download"])
            status_md = gr.Markdown("Press **Generate**.", elem_id="reverse-status")
            with gr.Row(equal_height=False):
                with gr.Column(scale=2):
                    scrubber = gr.Slider(0, 1, value=0, step=1, interactive=False, label="After a run: back to step",
                                         info="x_t and x̂₀ show that step again · ← → step, Shift ×10",
                                         elem_id="reverse-scrub")
                    numbers = gr.Markdown(elem_id="reverse-scrub-info")
                update = gr.Image(label="That step's update (enlarged)", format="png", interactive=False,
                                  elem_id="reverse-update", elem_classes=grid_style, buttons=["download"])
            replay = gr.State(None, time_to_live=KEEP_S)  # the last run's frames (uint8), for the step slider
            with gr.Row():
                plot = gr.Plot(figure, show_label=False, elem_id="reverse-sigmas")
                with gr.Column():
                    anim = gr.Image(label="Trajectory: x_t and x̂₀ (GIF)", interactive=False, type="filepath",
                                    elem_id="reverse-gif", elem_classes=grid_style, buttons=["download"])
                    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                        elem_id="reverse-downloads")
    with gr.Accordion("Compare: the same x_T through two settings", open=False):
        gr.Markdown("**A** is the setting above; **B** is set here. Both share the checkpoint's dataset and "
                    "schedule, the class, the seed and the number of images, so they start from the same x_T.")
        with gr.Row():
            objective_b = gr.Radio(list(OBJECTIVES), value=config.objective if config else "eps",
                                   label="B: the network predicts", elem_id="reverse-objective-b")
            method_b = gr.Radio(METHOD_CHOICES, value=db["method_b"], label="B: sampler",
                                elem_id="reverse-method-b")
            variance_b = gr.Radio(VARIANCE_CHOICES, value=db["variance_b"], label="B: DDPM noise",
                                  visible=db["method_b"] == "ddpm",
                                  elem_id="reverse-variance-b")
            eta_b = gr.Slider(0, 1, value=db["eta_b"], step=0.05, label="B: η", visible=db["method_b"] == "ddim",
                              elem_id="reverse-eta-b")
        with gr.Row():
            spacing_b = gr.Radio(list(SPACINGS), value=db["spacing_b"], label="B: spacing", elem_id="reverse-spacing-b")
            steps_b = gr.Slider(1, T, value=min(db["steps_b"], T), step=1, label="B: steps", elem_id="reverse-steps-b")
            guidance_b = gr.Slider(0, MAX_GUIDANCE, value=db["guidance_b"], step=0.25, label="B: classifier-free w",
                                   visible=bool(classes), elem_id="reverse-guidance-b")
            classifier_b = gr.Slider(0, MAX_CLASSIFIER_SCALE, value=db["classifier_scale_b"], step=0.5,
                                     label="B: classifier s", visible=steered, elem_id="reverse-classifier-b")
            clip_b = gr.Checkbox(db["clip_b"], label="B: clip x̂₀", elem_id="reverse-clip-b")
        with gr.Row():
            run_b = gr.Button("Compare A and B", variant="primary", elem_id="reverse-compare")
            stop_b = gr.Button("Stop", variant="stop", elem_id="reverse-stop-b")
        with gr.Row():
            pictures_b = [gr.Image(label=name, format="png", interactive=False, elem_id=f"reverse-{key}",
                                   elem_classes=grid_style, buttons=["download"])
                          for name, key in (("A: x_t", "a-xt"), ("A: x̂₀", "a-x0"), ("B: x_t", "b-xt"),
                                            ("B: x̂₀", "b-x0"))]
        status_b = gr.Markdown(elem_id="reverse-compare-status")
        plot_b = gr.Plot(show_label=False, elem_id="reverse-compare-sigmas")

    controls = {"checkpoint": checkpoint, "upload": upload, "objective": objective, "method": method,
                "variance": variance, "eta": eta, "spacing": spacing, "steps": steps, "label": label,
                "guidance": guidance, "classifier_scale": classifier, "seed": seed, "n": n,
                "clip": clip}  # named as CONTROLS
    controls_b = {"objective_b": objective_b, "method_b": method_b, "variance_b": variance_b, "eta_b": eta_b,
                  "spacing_b": spacing_b, "steps_b": steps_b, "guidance_b": guidance_b,
                  "classifier_scale_b": classifier_b, "clip_b": clip_b}
    dependent = [objective, objective_b, info_md, steps, steps_b, label, guidance, guidance_b, classifier,
                 classifier_b]
    around = {"checkpoint": checkpoint, "upload": upload, "steps": steps, "steps_b": steps_b, "label": label}
    plot_inputs = {k: controls[k] for k in ("checkpoint", "upload", "objective", "method", "variance", "eta",
                                            "spacing", "steps")}
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    one_run = {"concurrency_limit": 1, "concurrency_id": RUN_GROUP, "show_progress": "minimal"}

    at_once = {"concurrency_limit": None, "concurrency_id": "reverse-stop", "show_progress": "hidden"}
    run.click(STOPS.expecting("generate"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(generate)), inputs_kwargs=controls,
        outputs=[x_t, x0_hat, status_md, plot, anim, downloads, replay, scrubber], api_name="generate", **one_run)
    run_b.click(STOPS.expecting("compare"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(compare)), inputs_kwargs={**controls, **controls_b},
        outputs=[*pictures_b, status_b, plot_b], api_name="compare", **one_run)
    gr.on([stop.click, stop_b.click], stop_run, None, [status_md, status_b], api_name="stop", **at_once)
    scrubber.input(scrub_step, [replay, scrubber], [x_t, x0_hat, update, numbers], api_name="scrub", **quiet)

    gr.on([method.input, variance.input, eta.input, spacing.input, steps.input], sigma_plot,
          inputs_kwargs=plot_inputs, outputs=plot, api_name="sigma_plot", **quiet)
    redraw = {"fn": sigma_plot, "inputs_kwargs": plot_inputs, "outputs": plot, "api_visibility": "private",
              **quiet}
    checkpoint.input(choose_checkpoint, inputs_kwargs=around, outputs=dependent, api_name="choose_checkpoint",
                     **quiet).success(**redraw)
    objective.input(choose_objective, inputs_kwargs={**around, "objective": objective},
                    outputs=[checkpoint, *dependent], api_name="choose_objective", **quiet).success(**redraw)
    but_checkpoint = {k: v for k, v in around.items() if k != "checkpoint"}
    upload.upload(use_upload, inputs_kwargs=but_checkpoint, outputs=[checkpoint, *dependent],
                  api_name="upload_checkpoint", show_progress="minimal").success(**redraw)
    upload.clear(drop_upload, inputs_kwargs={k: around[k] for k in ("steps", "steps_b", "label")},
                 outputs=[checkpoint, *dependent], api_name="drop_checkpoint", **quiet).success(**redraw)
    method.input(sampler_options, method, [variance, eta], api_visibility="private", **quiet)
    method_b.input(sampler_options, method_b, [variance_b, eta_b], api_visibility="private", **quiet)
    linked = Linked("reverse", [checkpoint, method, variance, eta, spacing, seed, n, clip, *dependent, plot], apply)
    sharing.wire(linked, controls)
    return linked
