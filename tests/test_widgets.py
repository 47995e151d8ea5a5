"""explorer.app.widgets: gpu_bound delegates to spaces.GPU where the `spaces` package imports (Hugging Face
ZeroGPU; a fake module stands in for it here) and is the identity elsewhere; gradio's cached pictures are
replaced whole, never rewritten in place; number fields take only numbers."""
from __future__ import annotations

import functools
import inspect
import os
import sys
import types
from pathlib import Path

import pytest
import gradio as gr
from gradio import processing_utils
from PIL import Image

from explorer.app.widgets import gpu_bound


def plain(x):
    return x + 1


def stream(n):
    yield from range(n)


@pytest.fixture
def spaces(monkeypatch) -> list:
    """A fake `spaces` whose GPU (as the real one: GPU(task=None, *, duration=None)) records (task, duration) and
    wraps plain functions in plain functions, generator functions in generator functions."""
    calls = []

    def GPU(task=None, *, duration=None):
        if task is None:
            return functools.partial(GPU, duration=duration)
        calls.append((task, duration))
        if inspect.isgeneratorfunction(task):
            def relay(*args, **kwargs):
                yield from task(*args, **kwargs)
            return relay
        return lambda *args, **kwargs: task(*args, **kwargs)

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    return calls


def test_with_spaces_plain_handlers_go_through_spaces_gpu(spaces):
    wrapped = gpu_bound(plain)
    assert spaces == [(plain, None)] and wrapped is not plain and wrapped(1) == 2


def test_with_spaces_generator_handlers_stay_generators(spaces):
    wrapped = gpu_bound(stream)
    assert spaces == [(stream, None)]
    assert inspect.isgeneratorfunction(wrapped) and list(wrapped(3)) == [0, 1, 2]


def test_the_duration_reaches_spaces_gpu(spaces):
    def seconds(n):
        return 10 * n

    gpu_bound(duration=90)(plain)
    gpu_bound(duration=seconds)(stream)
    assert spaces == [(plain, 90), (stream, seconds)]


def test_without_spaces_the_handler_is_returned_unchanged(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    assert gpu_bound(plain) is plain and gpu_bound(stream) is stream
    assert gpu_bound(duration=30)(stream) is stream


def test_a_cached_picture_written_again_is_replaced_whole(tmp_path):
    """A download under way keeps the whole file it opened while the same picture is saved again for another
    visitor: the new file is renamed into place (a new inode), not rewritten in the open one."""
    picture = Image.new("L", (28, 28), 7)
    path = Path(processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png"))
    data = path.read_bytes()
    with open(path, "rb") as download:
        again = Path(processing_utils.save_pil_to_cache(picture, str(tmp_path), format="png"))
        assert again == path and os.fstat(download.fileno()).st_ino != path.stat().st_ino
        assert download.read() == data == path.read_bytes()
    assert sorted(tmp_path.rglob("*")) == [path.parent, path]  # no temporary folder left behind


def test_number_fields_answer_anything_but_a_finite_number_with_a_message():
    """gradio's Slider and Number compare the payload with their bounds first, so a string raised a TypeError;
    with explorer.app.widgets imported, anything but a finite int or float is a gr.Error naming the field."""
    steps, seed = gr.Slider(1, 50, step=1, label="Steps"), gr.Number(label="Seed", precision=0)
    assert steps.preprocess(7) == 7 and seed.preprocess(3.0) == 3 and seed.preprocess(None) is None
    for bad in ("7", [3], True, float("nan"), float("-inf")):
        for field, name in ((steps, "Steps"), (seed, "Seed")):
            with pytest.raises(gr.Error, match=rf"{name}: .+ is not a number\."):
                field.preprocess(bad)
    with pytest.raises(gr.Error, match="greater than maximum"):  # gradio's own bounds check still runs
        steps.preprocess(51)
