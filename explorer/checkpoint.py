"""Checkpoints: safetensors weights with the full configuration in the file's metadata, never pickle.

A model file holds the EMA weights of a network plus a JSON `config` (network kind and hyper-parameters,
schedule, T, objective, dataset, class names, sample shape, training step and provenance), so that

    >>> m = load_model("pretrained/fashion_v_cosine.safetensors")
    >>> x0 = run(sample(m, m.schedule, torch.randn(16, *m.sample_shape), objective=m.objective))

rebuilds everything from the file alone. `load_model` returns a `DiffusionModel`: `model(x_t, t, y)` with the
integer timestep t in 1..T; it hands the network the continuous time t / T (networks know nothing of T).

The layout is shared with the two classifiers (explorer.classifier, explorer.noisy_classifier): each kind of file is
a `FileFormat`, whose metadata "format" keeps the kinds apart, so no reader takes another kind's file for its own.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from explorer.checks import Config
from explorer.nets import NETS, build_net
from explorer.parameterization import check_objective
from explorer.schedules import NoiseSchedule, make_schedule

FORMAT = "diffusion-explorer"
FORMAT_VERSION = "1"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
# The bundled model the app opens on and the benchmarks measure (pretrained/README.md says why this one)
DEFAULT_CHECKPOINT = PRETRAINED_DIR / "fashion_v_cosine_lean.safetensors"


class CheckpointError(ValueError):
    """A file that is not a readable diffusion-explorer checkpoint (the message says why)."""


@dataclass
class ModelConfig(Config):
    """Everything needed to rebuild a model from its weights."""

    net: str  # a kind of explorer.nets.NETS: "unet" or "mlp"
    net_config: dict
    schedule: str
    T: int
    objective: str
    dataset: str
    sample_shape: list[int]  # shape of one sample, e.g. [1, 28, 28] or [2]
    class_names: list[str] = field(default_factory=list)  # empty for unconditional models
    step: int = 0  # optimizer steps the weights have seen
    training: dict = field(default_factory=dict)  # provenance: command, wall time, device, ...

    def __post_init__(self):
        if self.net not in NETS:
            raise ValueError(f"unknown net kind {self.net!r}; allowed: {', '.join(NETS)}")
        check_objective(self.objective)
        make_schedule(self.schedule, self.T)  # validates name and T


PRECISIONS = ("fp32", "bf16")


class DiffusionModel(nn.Module):
    """A network with its schedule and objective: model(x_t, t, y) -> prediction in `objective`, float32 in and
    out. `precision` "bf16" runs the network under bfloat16 autocast (weights stay float32)."""

    def __init__(self, net: nn.Module, config: ModelConfig, precision: str = "fp32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
        self.net = net
        self.config = config
        self.precision = precision
        self.schedule: NoiseSchedule = make_schedule(config.schedule, config.T)
        self.objective = config.objective
        self.sample_shape = tuple(config.sample_shape)
        self.class_names = list(config.class_names)
        self.num_classes = net.num_classes
        self.null_label = net.null_label

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        s = t.to(x_t.dtype) / self.schedule.T  # networks see s = t / T
        if self.precision == "fp32":
            return self.net(x_t, s, y)
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16):
            out = self.net(x_t, s, y)
        return out.float()

    def at_precision(self, precision: str) -> DiffusionModel:
        """This model run in `precision`: itself, or a model sharing its network (the weights are not copied)."""
        if precision == self.precision:
            return self
        return DiffusionModel(self.net, self.config, precision).train(self.training)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` is a CPU with bfloat16 matrix instructions (AVX512-BF16 or AMX tiles)."""
    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch 2.x, hence the fallback
    return torch.device(device).type == "cpu" and any(getattr(torch.cpu, name, lambda: False)() for name in names)


def fast_precision(config: ModelConfig, device: torch.device) -> str:
    """The precision to sample `config`'s network in on `device`: "bf16" for a UNet on a CPU with native bf16
    (bench/results/speed.md: faster; quality.md: the same quality at N = 500), "fp32" elsewhere: the toys' MLPs
    are too small to gain, and GPUs are fast enough in float32."""
    return "bf16" if config.net == "unet" and native_bf16(device) else "fp32"


def atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: str | os.PathLike) -> None:
    """Write a safetensors file through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FileFormat:
    """One kind of file this project writes: safetensors weights (no pickle) whose metadata is {"format": `name`,
    "format_version": `version`, "config": the config dataclass as JSON (explorer.checks.Config)}.

    Readers raise `error` with the file's name: `missing` follows "<path>: " when there is no file, and `foreign`
    follows "<name>: a safetensors file, but " when the metadata has another format or no config; `{found!r}` and
    `{expected!r}` in `foreign` stand for the file's format and `name`."""
    name: str
    version: str
    error: type[ValueError]
    missing: str
    foreign: str

    def save(self, path: str | os.PathLike, module: nn.Module, config: Config) -> None:
        """Write `module`'s state dict (buffers such as BatchNorm statistics included) with `config` in the
        metadata, atomically."""
        atomic_save(module.state_dict(), {"format": self.name, "format_version": self.version,
                                          "config": config.to_json()}, path)

    def config_json(self, path: str | os.PathLike) -> str:
        """The config JSON in the metadata of the file at `path`, its weights not read; `error` for a missing file,
        one that is not safetensors, or one of another format."""
        path = Path(path)
        if not path.is_file():
            raise self.error(f"{path}: {self.missing}")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as err:
            raise self.error(f"{path.name}: not a safetensors file ({err})") from err
        if metadata.get("format") != self.name or "config" not in metadata:
            raise self.error(f"{path.name}: a safetensors file, but "
                             + self.foreign.format(found=metadata.get("format"), expected=self.name))
        return metadata["config"]

    def load(self, path: str | os.PathLike, build: Callable[[str], nn.Module],
             device: str | torch.device = "cpu") -> nn.Module:
        """`build(config JSON)` with the file's weights (strict), frozen on `device` (see `frozen`); `error` as
        `config_json` says, or "config or weights invalid" when the config does not validate or the weights do not
        fit the network it describes."""
        text = self.config_json(path)
        try:
            module = build(text)
            module.load_state_dict(load_file(str(path)), strict=True)
        except (ValueError, TypeError, RuntimeError, SafetensorError, OSError) as err:
            raise self.error(f"{Path(path).name}: config or weights invalid: {str(err).splitlines()[0]}") from err
        return frozen(module, device)


def frozen(module: nn.Module, device: str | torch.device) -> nn.Module:
    """`module` on `device` in eval mode with no parameter requiring gradients: how every loader hands one out."""
    module = module.to(device).eval()
    module.requires_grad_(False)
    return module


MODEL_FILE = FileFormat(FORMAT, FORMAT_VERSION, CheckpointError, "no such checkpoint file",
                        "not a diffusion-explorer checkpoint (its metadata has no format/config); train one with "
                        "train.py")


def save_model(path: str | os.PathLike, net: nn.Module, config: ModelConfig) -> None:
    """Save a network's weights (for the app: the EMA weights) with `config` in the metadata."""
    MODEL_FILE.save(path, net, config)


def read_config(path: str | os.PathLike) -> ModelConfig:
    """Read and validate the config of a checkpoint without loading its weights."""
    text = MODEL_FILE.config_json(path)
    try:
        return ModelConfig.from_json(text)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{Path(path).name}: invalid config in metadata: {err}") from err


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "fp32") -> DiffusionModel:
    """Rebuild a model from a checkpoint file alone, run in `precision` (DiffusionModel); eval mode, no
    gradients. Raises CheckpointError with a clear message for a missing, foreign, corrupted or mismatched file."""
    config = read_config(path)
    try:
        net = build_net(config.net, config.net_config)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{Path(path).name}: cannot build the network from its config: {err}") from err
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{Path(path).name}: unreadable weights ({err})") from err
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{Path(path).name}: weights do not match the network in its config: "
                              f"{str(err).splitlines()[0]}") from err
    return frozen(DiffusionModel(net, config, precision), device)


def list_checkpoints(folder: str | os.PathLike = PRETRAINED_DIR) -> list[tuple[Path, ModelConfig]]:
    """The readable checkpoints in `folder`, sorted by name, each with its config (from metadata only)."""
    found = []
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            found.append((path, read_config(path)))
        except CheckpointError:
            continue  # e.g. the reference classifier, which is not a diffusion model
    return found
