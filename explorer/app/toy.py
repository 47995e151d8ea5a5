"""The 2D toy lab: the whole distribution at once. The data cloud melting into a Gaussian (forward), particles
walking back along their paths with the field the network learned (reverse), and a network trained live.

This module builds the page and wires its events; what the lab shows and runs is explorer.app.toy_logic's.
Handlers receive the controls by name (Gradio's `inputs_kwargs`, the names of toy_logic.DEFAULTS) and parse
them into one `ToySettings`. A share link or a settings file sets the controls through `apply`
(explorer.app.links).

Stop buttons (explorer.app.stops): a reverse run ends before its next model call, live training before its next
step; both end by themselves (their events are not cancelled), and a stopped training keeps its last update.
"""
from __future__ import annotations

import gradio as gr

from explorer import checks
from explorer.app.links import Linked, SharePanel
from explorer.app.options import MIXED, until
from explorer.app.stops import Stops
from explorer.app.toy_logic import (CLIP, DEFAULTS, FIELDS, MAX_GUIDANCE, PARTICLES, SOURCES, T_CHOICES,
                                    TRAIN_STEPS, UNCONDITIONAL, Setup, ToySettings, forget, forward_view,
                                    model_info, reverse_frames, stopped_training, train_updates)
from explorer.app.widgets import (LATEX, for_visitor, gpu_bound, noise_controls, sampler_choice, sampler_options,
                                  steps_slider)
from explorer.data import TOY_DATASETS, toy_info
from explorer.parameterization import OBJECTIVES
from explorer.schedules import SCHEDULES, T_RANGE

TITLE = "2D toy lab"
STOPS = Stops()  # Generate's and Train's runs
STOPPED = "**Stopped.**"


@for_visitor
@gpu_bound  # it runs the learned field's model
def redraw(**controls):
    """The forward picture and its text for these controls, and which model the lab uses."""
    settings = ToySettings.parse(controls)
    return *forward_view(settings), model_info(settings.setup)


@for_visitor
def set_T(T_before: int, **controls):
    """A new T: t keeps its fraction of the process, the sampler's steps stay within T."""
    T = checks.whole("T", controls["T"], *T_RANGE)
    t = min(T, round(checks.whole("t", controls["t"], 0, T_before) * T / T_before))
    steps = min(checks.whole("steps", controls["steps"], 1), T)
    out = redraw(**{**controls, "T": T, "t": t, "steps": steps})
    return gr.Slider(maximum=T, value=t), gr.Slider(maximum=T, value=steps), T, *out


def class_choices(dataset: str) -> list[str]:
    """The class list of a toy: unconditional, and mixed and each class where the toy has classes."""
    classes = toy_info(checks.choice("dataset", dataset, TOY_DATASETS))["class_names"]
    return [UNCONDITIONAL, *([MIXED, *classes] if classes else [])]


@for_visitor
def choose_dataset(**controls):
    """A new toy: its classes (if any) in the class list, then redraw."""
    choices = class_choices(controls["dataset"])
    classes = len(choices) > 1
    label = controls["label"] if controls["label"] in choices else UNCONDITIONAL
    guidance = controls["guidance"] if label != UNCONDITIONAL else 1.0
    out = redraw(**{**controls, "label": label, "guidance": guidance})
    return gr.Dropdown(choices=choices, value=label, visible=classes), gr.Slider(value=guidance, visible=classes), *out


def generate(request: gr.Request = None, **controls):
    """Stream a reverse run (toy_logic.reverse_frames): (figure, status) for x_T and every shown step; a
    stopped run ends with STOPPED, the Stop button's words."""
    with STOPS.running(request, "generate") as running:  # first: the click's entry is taken even if input is bad
        settings = ToySettings.parse(controls)
        for figure, text in until(reverse_frames(settings, running.stop), running.stop):  # none if stopped waiting
            if not running.show(text):
                break
            yield figure, text
        if running.stop.is_set():
            yield gr.skip(), STOPPED


def stop_generate(request: gr.Request = None):
    """The Stop button of Generate: this session's run ends before its next model call."""
    return STOPPED if "generate" in STOPS.stop(request) else gr.skip()


def train(request: gr.Request = None, **controls):
    """Stream live training: (loss curves, sample cloud, status, checkpoint path for gr.State, model source,
    download button). The first update switches the lab to the model trained here; the last offers its file.
    A stopped run ends before its next step with the words of the Stop button (training_stopped)."""
    with STOPS.running(request, "train") as running:
        setup = Setup.parse({**controls, "source": "trained here"})
        first = True
        for u in train_updates(setup, controls["train_steps"], controls["seed"], running.stop):
            if not running.show(u.path):
                break
            source = gr.Radio(value="trained here") if first else gr.skip()
            download = gr.DownloadButton(value=u.path, visible=True) if u.step == u.total else gr.skip()
            curves, cloud = (gr.Plot(u.curves, visible=True), gr.Plot(u.cloud, visible=True)) if first else \
                (u.curves, u.cloud)  # hidden until there is something to draw: no empty placeholders
            first = False
            yield curves, cloud, u.text, u.path, source, download
        if running.stop.is_set():
            text, download = training_stopped(running.shown)
            yield gr.skip(), gr.skip(), text, gr.skip(), gr.skip(), download


def training_stopped(saved: str | None):
    """(status, download button) of a stopped training: the checkpoint saved at its last update stays (and can
    be downloaded)."""
    text, kept = stopped_training(saved)
    return text, gr.DownloadButton(value=saved, visible=True) if kept else gr.skip()


def stop_training(request: gr.Request = None):
    """The Stop button of training: this session's run ends before its next step and keeps its last update."""
    halted = STOPS.stop(request)
    return training_stopped(halted["train"]) if "train" in halted else (gr.skip(), gr.skip())


def apply(controls: dict) -> tuple:
    """A link's or a settings file's controls (checked, named as DEFAULTS) on the page: the updates of the
    components of the Linked that build() returns."""
    s = ToySettings.parse(controls)
    setup, sampler, choices = s.setup, s.sampler, class_choices(s.setup.dataset)
    return (setup.dataset, setup.schedule, setup.T, setup.objective, setup.source, s.field, s.n, s.seed,
            sampler.method, *sampler_options(sampler.method, sampler.variance, sampler.eta), sampler.spacing,
            gr.Slider(maximum=setup.T, value=sampler.steps),
            gr.Dropdown(choices=choices, value=s.label, visible=len(choices) > 1),
            gr.Slider(value=s.guidance, visible=len(choices) > 1), s.clip, gr.Slider(maximum=setup.T, value=s.t),
            setup.T, *redraw(**controls))


def build() -> Linked:
    """Create the view's components and events inside the current gr.Tab; returns what links set."""
    d = DEFAULTS
    first = redraw(**d)
    choices = class_choices(d["dataset"])
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            dataset = gr.Dropdown(list(TOY_DATASETS), value=d["dataset"], label="Dataset", elem_id="toy-dataset")
            schedule = gr.Radio(list(SCHEDULES), value=d["schedule"], label="Schedule", elem_id="toy-schedule")
            T = gr.Radio(list(T_CHOICES), value=d["T"], label="T (number of steps)", elem_id="toy-T")
            objective = gr.Radio(list(OBJECTIVES), value=d["objective"], label="The network predicts",
                                 elem_id="toy-objective")
            source = gr.Radio(list(SOURCES), value=d["source"], label="Model", elem_id="toy-source")
            info = gr.Markdown(first[2], elem_id="toy-model-info")
            field_kind = gr.Radio(list(FIELDS), value=d["field_kind"], label="Arrows: the learned field",
                                  elem_id="toy-field")
            with gr.Row():
                n = gr.Slider(*PARTICLES, value=d["n"], step=100, label="Particles", elem_id="toy-n")
                seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed", elem_id="toy-seed")
            with gr.Accordion("Sampler", open=True):
                method = sampler_choice("toy", d["method"])
                variance, eta, spacing = noise_controls("toy", d["method"], d["variance"], d["eta"], d["spacing"])
                steps = steps_slider("toy", d["T"], d["steps"])
                label = gr.Dropdown(choices, value=d["label"], label="Class", visible=len(choices) > 1,
                                    elem_id="toy-class")
                guidance = gr.Slider(0, MAX_GUIDANCE, value=d["guidance"], step=0.25, visible=len(choices) > 1,
                                     label="Guidance w", info="needs a class · 1: conditional", elem_id="toy-guidance")
                clip = gr.Checkbox(d["clip"], label=f"Clip x̂₀ to [−{CLIP:g}, {CLIP:g}]", elem_id="toy-clip")
            sharing = SharePanel.build("toy")
        with gr.Column(scale=4):
            t = gr.Slider(0, d["T"], value=d["t"], step=1, label="Forward: t (0 is the data, T is pure noise)",
                          elem_id="toy-t")
            with gr.Row(equal_height=False):
                with gr.Column():
                    forward_plot = gr.Plot(first[0], show_label=False, elem_id="toy-forward")
                    forward_text = gr.Markdown(first[1], latex_delimiters=LATEX, elem_id="toy-forward-text")
                with gr.Column():
                    with gr.Row():
                        run_btn = gr.Button("Generate", variant="primary", elem_id="toy-generate")
                        stop_btn = gr.Button("Stop", variant="stop", elem_id="toy-stop")
                    reverse_plot = gr.Plot(show_label=False, elem_id="toy-reverse")
                    reverse_text = gr.Markdown("Press **Generate** to watch the particles find the data.",
                                               elem_id="toy-reverse-text")
            with gr.Accordion("Train live: a new model on this toy, in your browser", open=False,
                              elem_id="toy-train-live"):
                with gr.Row(equal_height=True):
                    train_steps = gr.Slider(*TRAIN_STEPS, value=d["train_steps"], step=50, scale=4,
                                            label="Training steps (batch 256; a few hundred fit two moons)",
                                            elem_id="toy-train-steps")
                    train_btn = gr.Button("Train", variant="primary", scale=1, elem_id="toy-train")
                    stop_train_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="toy-stop-train")
                    download = gr.DownloadButton("Download the checkpoint (.safetensors)", visible=False, scale=2,
                                                 elem_id="toy-download")
                train_text = gr.Markdown("Uses the dataset, schedule, T, objective and seed above; the result is "
                                         "sampled by **Generate** (model: trained here) and loads in train.py's "
                                         "`load_model`.", elem_id="toy-train-text")
                with gr.Row(equal_height=False):
                    curves = gr.Plot(show_label=False, visible=False, elem_id="toy-curves")
                    preview = gr.Plot(show_label=False, visible=False, elem_id="toy-preview")
    trained = gr.State(None, delete_callback=forget)
    T_shown = gr.State(d["T"])

    head = {"dataset": dataset, "schedule": schedule, "T": T, "objective": objective, "source": source,
            "trained": trained}
    run_controls = {**head, "n": n, "seed": seed, "field_kind": field_kind, "method": method, "steps": steps,
                    "eta": eta, "spacing": spacing, "variance": variance, "label": label, "guidance": guidance,
                    "clip": clip}  # named as toy_logic.SETUP and SAMPLER
    view = {**head, "t": t, **{k: v for k, v in run_controls.items() if k not in head}}
    shown_outputs = [forward_plot, forward_text, info]
    quiet = {"show_progress": "hidden", "trigger_mode": "always_last"}
    gr.on([t.input, schedule.input, objective.input, source.input, field_kind.input, n.release, seed.input,
           label.input, guidance.release, clip.input], redraw, inputs_kwargs=view, outputs=shown_outputs,
          api_name="toy_forward", **quiet)
    T.input(set_T, inputs_kwargs={**view, "T_before": T_shown}, outputs=[t, steps, T_shown, *shown_outputs],
            api_name="toy_set_T", **quiet)
    dataset.input(choose_dataset, inputs_kwargs=view, outputs=[label, guidance, *shown_outputs],
                  api_name="toy_dataset", **quiet)
    method.input(sampler_options, method, [variance, eta], api_visibility="private", **quiet)

    at_once = {"concurrency_limit": None, "concurrency_id": "toy-stop", "show_progress": "hidden"}
    run_btn.click(STOPS.expecting("generate"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(generate)), inputs_kwargs=run_controls, outputs=[reverse_plot, reverse_text],
        api_name="toy_generate", show_progress="minimal")
    stop_btn.click(stop_generate, None, reverse_text, api_name="toy_stop", **at_once)
    train_controls = {**{k: head[k] for k in ("dataset", "schedule", "T", "objective")}, "train_steps": train_steps,
                      "seed": seed, "trained": trained}
    training = train_btn.click(STOPS.expecting("train"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(train)), inputs_kwargs=train_controls,
        outputs=[curves, preview, train_text, trained, source, download], api_name="toy_train",
        show_progress="minimal", concurrency_limit=1, concurrency_id="toy-train")
    training.then(redraw, inputs_kwargs=view, outputs=shown_outputs, api_visibility="private", **quiet)
    stop_train_btn.click(stop_training, None, [train_text, download], api_name="toy_stop_training", **at_once)
    linked = Linked("toy", [dataset, schedule, T, objective, source, field_kind, n, seed, method, variance, eta,
                            spacing, steps, label, guidance, clip, t, T_shown, *shown_outputs], apply)
    sharing.wire(linked, view)
    return linked
