"""The checkpoints the app offers and the models loaded from them, with no gradio in it.

`DEVICE` is where every view runs its networks (explorer.training.pick_device("auto"): cuda, then mps, then
cpu). `model_at(path)` loads a checkpoint once (again when the file changes) after one trial call, and shares
the model read-only; `sampling_model(path)` is that model run in the faster precision the sampling views use.
Bundled files are listed from `PRETRAINED` by their metadata only: the 2D toys for the toy lab, the image models
for the reverse view, which also takes uploads (validated, never a pickle, size-limited) and switches between
bundled files of one family trained for different objectives (`resolve`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from explorer import checks
from explorer.app.options import UserInputError
from explorer.checkpoint import (PRETRAINED_DIR, CheckpointError, DiffusionModel, ModelConfig, fast_precision,
                                 list_checkpoints, load_model, read_config)
from explorer.nets import build_net
from explorer.parameterization import OBJECTIVES
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


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int, size: int, fast: bool) -> DiffusionModel:
    if fast:
        model = _load(path, mtime_ns, size, False)
        return model.at_precision(fast_precision(model.config, DEVICE))
    model = load_model(path, DEVICE)
    _trial(model, Path(path).name)
    return model


def model_at(path: Path) -> DiffusionModel:
    """The model in a checkpoint file in float32, loaded once (again when the file changes) and shared read-only."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size, False)


def sampling_model(path: Path) -> DiffusionModel:
    """model_at(path) as the sampling views (reverse, sweep) run it: in checkpoint.fast_precision, bf16 autocast
    for a UNet on a CPU with native bf16, which moves samples by rounding only (bench/results/quality.md) and
    shares model_at's weights. Likelihoods and inversions, whose results are the errors of hundreds of calls added
    up, keep model_at's float32."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size, True)


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


# --- image checkpoints (the reverse view) --------------------------------------------------------------------

UPLOAD = "your upload"  # the checkpoint choice that samples an uploaded file
MAX_UPLOAD_BYTES = 20 << 20  # as the app's max_file_size; bundled checkpoints are < 10 MB
MAX_SIDE = 64  # largest image side a checkpoint may sample
CHANNELS = (1, 3)


def is_image(config: ModelConfig) -> bool:
    return config.net == "unet" and len(config.sample_shape) == 3


def bundled_images() -> dict[str, ModelConfig]:
    """The image checkpoints in PRETRAINED by file name, with their configs."""
    return {path.name: config for path, config in listed() if is_image(config)}


def choice_label(name: str, config: ModelConfig) -> str:
    return f"{config.dataset} · predicts {config.objective} · {config.schedule} · T={config.T} — {name}"


def checkpoint_choices() -> list[tuple[str, str]]:
    """(label, value) of every bundled image checkpoint, then UPLOAD."""
    return [*((choice_label(name, c), name) for name, c in bundled_images().items()), (UPLOAD, UPLOAD)]


def check_config(name: str, config: ModelConfig) -> None:
    """Refuse checkpoints the reverse view cannot sample: 2D toys and images of unsupported shapes."""
    shape = list(config.sample_shape)
    if not is_image(config):
        raise UserInputError(f"{name} is a {config.net} checkpoint of {config.dataset} with samples of shape "
                             f"{shape}; this view samples images (1 or 3 channels): open 2D toys in the toy lab.")
    c, h, w = shape
    if c not in CHANNELS or h != w or not 1 <= h <= MAX_SIDE:
        raise UserInputError(f"{name} samples images of shape {shape}; this view takes square images with 1 or 3 "
                             f"channels and at most {MAX_SIDE}x{MAX_SIDE} pixels.")


def check_upload(upload: str | None) -> Path:
    """Validate an uploaded checkpoint and load it; raises UserInputError or CheckpointError saying why not."""
    if not upload:
        raise UserInputError("upload a checkpoint (.safetensors, written by train.py) first")
    path = Path(upload)
    if not path.is_file():
        raise UserInputError("the uploaded file is no longer on the server; please upload it again")
    stat = path.stat()
    _check_file(str(path), stat.st_mtime_ns, stat.st_size)
    return path


@functools.lru_cache(maxsize=16)
def _check_file(path: str, mtime_ns: int, size: int) -> None:
    name = Path(path).name
    if Path(path).suffix != ".safetensors":
        raise UserInputError(f"{name} is not a .safetensors file; this app loads only safetensors checkpoints "
                             "written by train.py (never pickles such as .pt or .ckpt).")
    if size > MAX_UPLOAD_BYTES:
        raise UserInputError(f"{name} is {size / 2 ** 20:.1f} MB; checkpoints may be at most "
                             f"{MAX_UPLOAD_BYTES >> 20} MB.")
    config = read_config(path)
    check_config(name, config)
    try:
        with torch.device("meta"):  # the network's size, before allocating it
            net = build_net(config.net, config.net_config)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{name}: cannot build the network from its config: {err}") from None
    needed = sum(p.numel() * p.element_size() for p in net.parameters())
    if needed > size:
        raise CheckpointError(f"{name}: its config describes a network of {needed / 2 ** 20:.1f} MB of weights, "
                              f"more than the whole file holds; the file is damaged or not from train.py.")
    _load(path, mtime_ns, size, False)


def chosen(checkpoint: str, upload: str | None) -> tuple[Path, ModelConfig]:
    """The file named by the checkpoint control (a bundled name or UPLOAD) and its config."""
    if checkpoint == UPLOAD:
        path = check_upload(upload)
        return path, read_config(path)
    found = bundled_images()
    if checkpoint not in found:
        raise UserInputError(f"unknown checkpoint {checkpoint!r}; bundled: {', '.join(found) or 'none'} "
                             f"(or {UPLOAD!r})")
    return PRETRAINED / checkpoint, found[checkpoint]


def same_family(a: ModelConfig, b: ModelConfig) -> bool:
    return (a.dataset, a.schedule, a.T, list(a.sample_shape), list(a.class_names)) == \
        (b.dataset, b.schedule, b.T, list(b.sample_shape), list(b.class_names))


def resolve(checkpoint: str, upload: str | None, objective: str) -> tuple[Path, ModelConfig]:
    """The checkpoint to sample from: the chosen one if it predicts `objective`, else the bundled image
    checkpoint of the same dataset, schedule, T and classes that does, one with the same network if there is
    one; UserInputError if there is none."""
    checks.choice("objective", objective, OBJECTIVES)
    path, config = chosen(checkpoint, upload)
    if config.objective == objective:
        return path, config
    if checkpoint == UPLOAD:
        raise UserInputError(f"the uploaded checkpoint predicts {config.objective}; the {objective} toggle only "
                             "switches between bundled checkpoints. Choose its own objective.")
    found = bundled_images()
    matches = [(name, other) for name, other in found.items()
               if other.objective == objective and same_family(config, other)]
    if matches:  # the same network first (bundled files of one family may differ in size)
        name, other = min(matches, key=lambda match: match[1].net_config != config.net_config)
        return PRETRAINED / name, other
    have = sorted({c.objective for c in found.values() if same_family(config, c)})
    raise UserInputError(f"no bundled checkpoint of {config.dataset} ({config.schedule} schedule, T = {config.T}) "
                         f"predicts {objective}; the bundled ones predict {', '.join(have)}.")
