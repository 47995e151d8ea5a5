"""The Gradio app: a shell of tabs, one per view module.

Each view module in VIEWS has a TITLE, a `build()` that creates its components and events inside the
current tab, and optionally CSS, so adding a view is one line. `demo` is built at import (Gradio's reload
mode looks for it); `launch()` queues and launches it the way app.py does, so tests serve the same app.

What build() returns goes to explorer.app.links: a view that share links can set returns a links.Linked, the
lesson its links.Opener buttons (None otherwise); the page's load opens the link in its own address
(`?view=toy&t=500...`), selecting the tab whose id is the view's module name.

explorer/app/page.js, in the page's head, steps the sliders with the arrow keys and switches the projector mode
(larger type: the theme's text sizes and the figures' fonts times PROJECTOR_SCALE) in the page, with no server call.
"""
from pathlib import Path

import gradio as gr
import torch

from explorer.app import catalogue, forward, inversion, lesson, likelihood, reverse, sweep, toy
from explorer.app.links import Links

VIEWS = (forward, reverse, toy, likelihood, inversion, sweep, lesson)
QUEUE_SIZE = 64  # waiting events beyond this are refused with "queue full" instead of piling up
CONCURRENCY = 2  # events of one kind run at most this many at once
MAX_FILE_SIZE = "20mb"
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],  # system fonts: works offline
                       font_mono=["ui-monospace", "monospace"])
PROJECTOR_SCALE = 1.3  # page.js reads it from the CSS variable --projector-scale
PROJECTOR_CSS = ":root { --projector-scale: %s; } body.projector { %s }" % (PROJECTOR_SCALE, " ".join(
    f"--{size.replace('_', '-')}: calc({getattr(THEME, size)} * var(--projector-scale));"  # the theme's text
    for size in ("text_xxs", "text_xs", "text_sm", "text_md", "text_lg", "text_xl", "text_xxl")))  # sizes
HEAD = f"<script>{(Path(__file__).parent / 'page.js').read_text()}</script>"
CSS = "\n".join([PROJECTOR_CSS,
                 ".pixelated img { image-rendering: pixelated; }  /* enlarge small images by whole pixels */",
                 ".katex { font-size: 1.15em; } .katex-display > .katex { font-size: 1.4em; }  /* projector */",
                 *(getattr(view, "CSS", "") for view in VIEWS)])


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Diffusion explorer", analytics_enabled=False, delete_cache=(1800, 3600)) as blocks:
        gr.Markdown("# Diffusion explorer\nDenoising diffusion models (DDPM and relatives), one view at a time: "
                    "move the controls and watch the pictures and the formulas change together.")
        projector = gr.Checkbox(False, label="Large type for a projector", container=False, elem_id="projector")
        projector.input(None, projector, js="(on) => window.explorerProjector(on)", api_visibility="private")
        built = {}
        with gr.Tabs() as tabs:
            for view in VIEWS:
                name = view.__name__.rsplit(".", 1)[-1]
                with gr.Tab(view.TITLE, id=name):
                    built[name] = view.build()
        Links(tabs, built).wire(blocks)
        gr.Markdown(f"Running on {catalogue.DEVICE.type} with {torch.get_num_threads()} CPU thread(s).",
                    elem_id="runtime-info")
    return blocks


demo = build_demo()


def launch(**kwargs):
    """Queue and launch `demo`; kwargs override the launch() defaults (tests pass server_port and
    prevent_thread_lock). Host and port default to Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT."""
    demo.queue(max_size=QUEUE_SIZE, api_open=False, default_concurrency_limit=CONCURRENCY)
    options = {"max_file_size": MAX_FILE_SIZE, "enable_monitoring": False, "theme": THEME, "css": CSS, "head": HEAD}
    return demo.launch(**{**options, **kwargs})
