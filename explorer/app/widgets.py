"""The pieces of gradio every view uses: formulas' delimiters, bad input turned into a message for the visitor,
and the sampler's controls with the handler that shows only the options of the chosen sampler."""
from __future__ import annotations

import functools
import inspect

import gradio as gr

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def for_visitor(fn):
    """Turn a ValueError (UserInputError, CheckpointError, an out-of-range option...) raised by the handler
    `fn` into a gr.Error with the same message; works for plain and for streaming (generator) handlers."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return call
