"""Share links, settings files and the lesson's buttons, wired into the page; explorer.app.share encodes and
checks them, with no gradio.

A view whose controls a link can set returns a `Linked` from its build(): the components a link sets, in order,
and `apply`, which turns checked controls (share.Link.controls) into their updates. Its `SharePanel` offers the
link to the current settings, a settings file to save, and a file to load. `Links` takes what every view's
build() returned and wires the page's load (the page's own query parameters, as gr.Request.query_params gives
them) and the lesson's `Opener` buttons: each selects its link's tab, sets that view's controls and names what it
left out in a warning.
"""
from __future__ import annotations

import functools
import html
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from explorer.app import files, share
from explorer.app.options import UserInputError
from explorer.app.widgets import for_visitor

OUT_DIR = Path(tempfile.gettempdir()) / "diffusion-explorer-settings"
KEEP_S = 3600  # settings files older than this are deleted
RESOLVE = "(query) => query ? new URL(query, window.location.href).href : ''"  # the page's address, the link's query
QUIET = {"show_progress": "hidden", "api_visibility": "private"}


@dataclass(frozen=True)
class Linked:
    """A view's part in links: its tab id, the components a link sets and their updates for checked controls."""
    view: str
    outputs: list
    apply: Callable[[dict], tuple]


@dataclass(frozen=True)
class Opener:
    """A button that opens a link (its query parameters, name -> text) in this page."""
    button: gr.Button
    query: dict[str, str]


def warn(lines: list[str], what: str) -> None:
    """One warning on the page naming everything left out of `what` (the values are the visitor's: escaped)."""
    if lines:
        gr.Warning(html.escape(f"Left out of {what}: " + "; ".join(lines), quote=False))


def share_link(view: str, **controls) -> tuple:
    """(the link's query, the settings file's download button) for a view's controls; what a link cannot carry
    is said in a warning. The page turns the query into a whole address (RESOLVE)."""
    values, notes = share.settings_of(view, controls)
    warn(notes, "the link and the settings file")
    path = files.new_folder(OUT_DIR, KEEP_S) / f"{view}-settings.json"
    path.write_text(share.to_json(view, values))
    return share.to_query(view, values), gr.DownloadButton(value=str(path), visible=True)


def load_settings(linked: Linked, path: str | None) -> tuple:
    """A settings file uploaded to a view: its controls set on the page (unknown keys left out, named in a
    warning); anything else wrong is a message and sets nothing."""
    if not path or not Path(path).is_file():
        raise UserInputError("no settings file arrived; please choose it again")
    with open(path, "rb") as file:
        data = file.read(share.MAX_FILE_BYTES + 1)
    controls, ignored = share.read_settings(linked.view, data)
    warn(ignored, "the settings file")
    return linked.apply(controls)


@dataclass(frozen=True)
class SharePanel:
    """A view's Share / Save / Load controls (elem_ids `{view}-share...`), made in the current column by `build`;
    `wire` connects them once the view's components all exist."""
    button: gr.Button
    link: gr.Textbox
    save: gr.DownloadButton
    load: gr.UploadButton

    @classmethod
    def build(cls, view: str) -> SharePanel:
        with gr.Accordion("Share or save these settings", open=False, elem_id=f"{view}-share"):
            button = gr.Button("Link to these settings", elem_id=f"{view}-share-button")
            link = gr.Textbox(label="Link: anyone who opens it sees these settings", buttons=["copy"],
                              interactive=False, elem_id=f"{view}-share-link")
            with gr.Row():
                save = gr.DownloadButton("Save settings (.json)", visible=False, elem_id=f"{view}-save")
                load = gr.UploadButton("Load settings (.json)", file_types=[".json"], elem_id=f"{view}-load")
        return cls(button, link, save, load)

    def wire(self, linked: Linked, controls: dict) -> None:
        """Link (and the settings file) from the view's `controls` (components by name); a loaded file sets
        `linked.outputs`."""
        v = linked.view
        self.button.click(for_visitor(functools.partial(share_link, v)), inputs_kwargs=controls,
                          outputs=[self.link, self.save], api_name=f"{v}_share", show_progress="hidden").success(
            None, self.link, self.link, js=RESOLVE, **QUIET)
        self.load.upload(for_visitor(functools.partial(load_settings, linked)), self.load, linked.outputs,
                         api_name=f"{v}_load_settings", show_progress="minimal")


class Links:
    """The app's links: the page load and the lesson's buttons select a tab and set a linked view's controls."""

    def __init__(self, tabs: gr.Tabs, built: Mapping[str, object]):
        """`built`: what each tab's build() returned, by tab id (a Linked, a list of Openers, or None)."""
        self.tab_ids = tuple(built)
        self.views = {name: b for name, b in built.items() if isinstance(b, Linked)}
        self.openers = [o for b in built.values() if isinstance(b, list) for o in b if isinstance(o, Opener)]
        self.outputs = [tabs, *(c for linked in self.views.values() for c in linked.outputs)]

    def open(self, query: Mapping[str, str]) -> tuple:
        """The updates of `outputs` for a link's query parameters: its tab selected, its view's controls set,
        everything else left as it is; what the link left out is named in a warning."""
        link = share.read_link(query, self.tab_ids)
        warn(link.ignored, "the link")
        updates = [gr.Tabs(selected=link.view) if link.view else gr.skip()]
        for name, linked in self.views.items():
            chosen = name == link.view and link.controls is not None
            updates += linked.apply(link.controls) if chosen else [gr.skip()] * len(linked.outputs)
        return tuple(updates)

    def on_load(self, request: gr.Request) -> tuple:
        """The page's load: its address's query parameters as a link."""
        return self.open(dict(request.query_params) if request else {})

    def wire(self, blocks: gr.Blocks) -> None:
        """Open the page's own link when it loads, and each Opener's link when its button is clicked."""
        blocks.load(for_visitor(self.on_load), None, self.outputs, **QUIET)
        for opener in self.openers:
            opener.button.click(for_visitor(functools.partial(self.open, opener.query)), None, self.outputs, **QUIET)
