"""Bad input is shown to the visitor as a message, never as a stack trace."""
from __future__ import annotations

import functools
import inspect

import gradio as gr


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
