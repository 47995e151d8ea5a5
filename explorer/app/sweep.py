"""The steps-sweep view: one x_T, one class, one bundled checkpoint, through DDPM, DDIM eta 0, DDIM eta 1 and
DPM-Solver++ (rows) at 5, 10, 20, 50 and 1000 steps (columns); the cells fill in as they finish, each with its model
calls and seconds, and a table lists them.

This module builds the page and wires its events; what a run shows is explorer.app.sweep_logic's
(`SweepSettings.parse(controls)`, then `sweep_stream`). The handler receives the controls by name (Gradio's
`inputs_kwargs`, the names of sweep_logic.CONTROLS), so the API's parameters carry those names too; it gets them
as sent (preprocess=False), since SweepSettings.parse checks every one (Gradio 6's CheckboxGroup preprocess raises
an unhandled TypeError on a number sent through the API). Sweeps take turns (RUN_GROUP); the Stop button stops
its session's sweep before its next model call, or before it starts if it still waits its turn (explorer.app.stops).
"""
from __future__ import annotations

import gradio as gr

from explorer.app import catalogue, plots
from explorer.app.sweep_logic import (ABOUT, DEFAULTS, MAX_IMAGES, OUTPUTS, TABLE_HEADERS, SweepSettings,
                                      bundled, sampler_name, steps_name, stopped, sweep_stream)
from explorer.app.stops import Stops, as_outputs
from explorer.app.widgets import LATEX, for_visitor, gpu_bound
from explorer.samplers import SWEEP_SAMPLERS, SWEEP_STEPS

TITLE = "Steps sweep"
RUN_GROUP = "sweep-run"  # one sweep at a time; the others wait in the queue
STOPS = Stops()
CSS = f"""
#sweep-grid table {{ border-collapse: collapse; }}
#sweep-grid th, #sweep-grid td {{ border: none; padding: 6px 10px; text-align: center; vertical-align: top;
                                  font-size: {plots.FONT}px; }}
#sweep-grid tbody tr {{ border-top: 1px solid var(--border-color-primary); }}
#sweep-grid thead th {{ font-size: {plots.TITLE_FONT}px; vertical-align: bottom; }}
#sweep-grid tbody th {{ text-align: right; vertical-align: middle; white-space: nowrap; }}
#sweep-grid td.pending {{ color: #999; vertical-align: middle; }}
#sweep-grid .caption {{ font-size: {plots.LEGEND_FONT}px; }}
"""  # the grid's type as the plots' (on a projector): headers as titles, captions as legends


def run_sweep(request: gr.Request = None, **controls):
    """Stream one sweep (inputs: CONTROLS by name; outputs: OUTPUTS), sweep_logic.sweep_stream."""
    with STOPS.running(request, "sweep") as running:  # first: the click's entry is taken even if input is bad
        settings = SweepSettings.parse(controls)
        yield from as_outputs(sweep_stream(settings, running), OUTPUTS)


stop_sweep = STOPS.stop_handler(stopped, "sweep")  # the Stop button; output: the status


@for_visitor
def choose_checkpoint(checkpoint, label):
    """A checkpoint was picked: offer its classes, keeping `label` if it has it (none, hidden, for an unconditional
    one)."""
    names = bundled(checkpoint)[1].class_names
    return gr.Dropdown(choices=names, value=label if label in names else next(iter(names), None),
                       visible=bool(names))


def build() -> None:
    """Create the view's components and events inside the current gr.Tab."""
    d = DEFAULTS
    found = catalogue.bundled_images()
    start = d["checkpoint"] if d["checkpoint"] in found else next(iter(found), None)
    classes = list(found[start].class_names) if start else []
    with gr.Row():
        with gr.Column(scale=1, min_width=340):
            with gr.Row():
                run = gr.Button("Run sweep", variant="primary", elem_id="sweep-run")
                stop = gr.Button("Stop", variant="stop", elem_id="sweep-stop")
            checkpoint = gr.Dropdown([(catalogue.choice_label(name, c), name) for name, c in found.items()],
                                     value=start, label="Checkpoint", elem_id="sweep-checkpoint")
            label = gr.Dropdown(classes, value=next(iter(classes), None), label="Class", visible=bool(classes),
                                elem_id="sweep-class")
            step_counts = gr.CheckboxGroup([(steps_name(k), k) for k in SWEEP_STEPS], value=d["step_counts"],
                                           label="Steps (columns)", info="model calls per image; 1000 takes minutes",
                                           elem_id="sweep-steps")
            samplers = gr.CheckboxGroup([(sampler_name(s), s) for s in SWEEP_SAMPLERS], value=d["samplers"],
                                        label="Samplers (rows)", elem_id="sweep-samplers")
            with gr.Row():
                seed = gr.Number(d["seed"], precision=0, minimum=0, label="Seed", elem_id="sweep-seed")
                n = gr.Slider(1, MAX_IMAGES, value=d["n"], step=1, label="Images per cell", elem_id="sweep-n")
            gr.Markdown(ABOUT, latex_delimiters=LATEX, elem_id="sweep-about")
        with gr.Column(scale=3):
            status = gr.Markdown("Press **Run sweep**: the same x_T through every sampler and number of steps.",
                                 elem_id="sweep-status")
            grid = gr.HTML(elem_id="sweep-grid", elem_classes=["pixelated"])
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number", "number"],
                                 interactive=False, label="Results", elem_id="sweep-table")

    controls = {"checkpoint": checkpoint, "label": label, "seed": seed, "n": n, "samplers": samplers,
                "step_counts": step_counts}  # named as CONTROLS
    at_once = {"concurrency_limit": None, "concurrency_id": "sweep-stop", "show_progress": "hidden"}
    run.click(STOPS.expecting("sweep"), api_visibility="private", **at_once).then(
        for_visitor(gpu_bound(run_sweep)), inputs_kwargs=controls, outputs=[grid, table, status], api_name="sweep",
        preprocess=False, concurrency_limit=1, concurrency_id=RUN_GROUP, show_progress="minimal")
    stop.click(stop_sweep, None, status, api_name="sweep_stop", **at_once)
    checkpoint.input(choose_checkpoint, inputs_kwargs={"checkpoint": checkpoint, "label": label}, outputs=label,
                     api_name="sweep_checkpoint", show_progress="hidden", trigger_mode="always_last")
