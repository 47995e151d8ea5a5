"""Stop buttons that end a streaming run through a flag, not by cancelling its Gradio event.

A cancelled streaming event can end as an error on the page (Gradio 6 marks its outputs "Error" when the cancel
races the stream's next message) and the events chained after it with `.then` never run. Here a click on a
run's button first registers the run at once (`Stops.expecting(kind)`, an unqueued first step, so a Stop also
reaches a run still waiting its turn in the queue); the handler takes that entry when its turn comes
(`Stops.running`), checks the entry's flag before each model call or training step (options.until), shows
nothing more once it is halted (`Running.show`) and ends by itself, with the same words as the Stop button.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

import gradio as gr


class Running:
    """A run, from the click that asks for it to its end: its kind (which button started it), what it has
    shown last (None before its first frame; the view decides what that is) and its stop flag. Showing and
    stopping exclude each other, so what the Stop button reports is always what the run shows last."""

    def __init__(self, kind: str):
        self.kind = kind
        self.shown = None
        self.started = False
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def show(self, shown) -> bool:
        """Record what is about to be shown; False (show nothing more) once stopped."""
        with self._lock:
            if self.stop.is_set():
                return False
            self.shown = shown
            return True

    def halt(self):
        """Stop the run; returns what it has shown last."""
        with self._lock:
            self.stop.set()
            return self.shown


class Stops:
    """The flags of one view's runs, per browser session. The handler takes the oldest registered entry of
    its kind when it starts (a call through the API, which skips the click, gets a fresh one); the entry is
    dropped when the run ends."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: list[tuple[str, Running]] = []  # (session, run), in the order they were asked for

    def expect(self, request: gr.Request | None, kind: str) -> None:
        """A run of `kind` was asked for in this session; it may still wait its turn in the queue."""
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._runs.append((session, Running(kind)))

    def expecting(self, kind: str):
        """The first step of a click on the button of `kind`: a handler that registers the run at once."""
        def expect(request: gr.Request = None):
            self.expect(request, kind)
        return expect

    @contextlib.contextmanager
    def running(self, request: gr.Request | None, kind: str) -> Iterator[Running]:
        """The entry of the run now starting; enter it before validating input, so that a run failing on its
        input takes its click's entry with it (no stale entry for a later Stop to halt)."""
        session = getattr(request, "session_hash", None)
        with self._lock:
            entry = next((r for s, r in self._runs if s == session and r.kind == kind and not r.started), None)
            if entry is None:
                entry = Running(kind)
                if session:
                    self._runs.append((session, entry))
            entry.started = True
        try:
            yield entry
        finally:
            with self._lock:
                self._runs = [(s, r) for s, r in self._runs if r is not entry]

    def stop(self, request: gr.Request | None) -> dict:
        """Stop this session's runs, running or waiting: {kind: what it has shown last}, a running run's where
        one of that kind runs."""
        session = getattr(request, "session_hash", None)
        with self._lock:
            entries = sorted((r for s, r in self._runs if s == session), key=lambda r: r.started)
        return {entry.kind: entry.halt() for entry in entries}

    def stop_handler(self, stopped: Callable[[str | None], str], *kinds: str):
        """The handler of a Stop button for runs of `kinds`: this session's runs end before their next model call
        (or before they start if they still wait their turn). Outputs: one status per kind, in order, a stopped
        run's `stopped(what it showed last)` at once, the others unchanged."""
        def stop(request: gr.Request = None):
            halted = self.stop(request)
            answers = tuple(stopped(halted[kind]) if kind in halted else gr.skip() for kind in kinds)
            return answers if len(answers) > 1 else answers[0]
        return stop


def as_outputs(updates: Iterable[dict], names: tuple[str, ...]) -> Iterator[tuple]:
    """A logic module's stream of {output name: value} dicts as the tuples Gradio expects for the outputs `names`,
    gr.skip() for those an update leaves as they are."""
    for update in updates:
        yield tuple(update.get(name, gr.skip()) for name in names)
