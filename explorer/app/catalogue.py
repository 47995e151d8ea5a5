"""The checkpoints the app offers and the models loaded from them, with no gradio in it.

`DEVICE` is where every view runs its networks (explorer.training.pick_device("auto"): cuda, then mps, then
cpu). `model_at(path)` loads a checkpoint once (again when the file changes) after one trial call, and shares
the model read-only. Bundled files are listed from `PRETRAINED` by their metadata only.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from explorer.checkpoint import PRETRAINED_DIR, CheckpointError, DiffusionModel, ModelConfig, list_checkpoints, load_model
from explorer.training import pick_device

DEVICE = pick_device("auto")
PRETRAINED = PRETRAINED_DIR


@torch.inference_mode()
def _trial(model: DiffusionModel, name: str) -> None:
    """One call on one sample at t = T: the network must run and answer in the shape of its input."""
    device = next(model.parameters()).device
    x = torch.zeros(1, *model.sample_shape, device=device)
    y = torch.zeros(1, dtype=torch.long, device=device) if model.class_names else None
    try:
        out = model(x, torch.full((1,), model.schedule.T, device=device), y)
    except RuntimeError as err:
        raise CheckpointError(f"{name}: the network does not run on samples of shape {list(model.sample_shape)}: "
                              f"{str(err).splitlines()[0]}") from None
    if out.shape != x.shape:
        raise CheckpointError(f"{name}: the network answers in shape {list(out.shape[1:])} for samples of shape "
                              f"{list(model.sample_shape)}")


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime_ns: int, size: int) -> DiffusionModel:
    model = load_model(path, DEVICE)
    _trial(model, Path(path).name)
    return model


def model_at(path: Path) -> DiffusionModel:
    """The model in a checkpoint file, loaded once (again when the file changes) and shared read-only."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


def listed() -> tuple[tuple[Path, ModelConfig], ...]:
    """Every checkpoint in PRETRAINED with its config, read from the metadata only, again whenever the folder
    changes (adding, removing or atomically rewriting a file changes its mtime)."""
    try:
        stamp = PRETRAINED.stat().st_mtime_ns
    except OSError:
        return ()
    return _listed(PRETRAINED, stamp)


@functools.lru_cache(maxsize=4)
def _listed(folder: Path, mtime_ns: int) -> tuple[tuple[Path, ModelConfig], ...]:
    return tuple(list_checkpoints(folder))


# --- 2D toys -------------------------------------------------------------------------------------------------

def is_toy(config: ModelConfig) -> bool:
    return config.net == "mlp" and list(config.sample_shape) == [2]


def bundled_toys() -> tuple[tuple[Path, ModelConfig], ...]:
    """The toy checkpoints in PRETRAINED with their configs."""
    return tuple((path, config) for path, config in listed() if is_toy(config))
