"""The training loop: DDPM Algorithm 1 with EMA, warm-up and decay, label dropout, exact resume.

EMA: a fixed decay with warm-up, or the power-function EMA of Karras et al. 2024 (EDM2, section 3.1) when
`ema_gamma` is set: beta_t = (1 - 1/t)^(gamma + 1) after optimizer step t, which averages the weights of the whole
run with a profile proportional to step^gamma (gamma = 0: the plain mean of all steps), so its length is a fixed fraction of the run however long it grows
(relative width sigma_rel = sqrt(gamma + 1) / ((gamma + 2) sqrt(gamma + 3)), EDM2 eq. 2).
Data parallel: under torchrun (`torchrun --nproc_per_node N train.py ...`) every rank draws the same whole batch
(indices, label dropout, t and eps from the same seeded generators) and trains on its 1/N slice of it through
DistributedDataParallel (gloo on CPU, NCCL on CUDA), so N processes at batch B take the same steps as one process
at batch B, up to float summation order; `batch_size` is the whole batch. Only rank 0 writes checkpoints, logs
and grids; the state file does not depend on N, so a run resumes on any number of processes.
Precision: "bf16" runs forward and backward under bfloat16 autocast (weights, optimizer and EMA stay float32);
"auto" picks it for the UNet on CUDA with bf16 support and on CPUs with AMX tiles (their bf16 matrix units),
float32 elsewhere and for the toys' MLP.

    trainer = Trainer(TrainConfig(dataset="fashion-mnist", objective="v", steps=2000))
    trainer.fit()           # tqdm progress, sample grids, checkpoints, Ctrl-C saves

Outputs of a run: `config.out` is the app's model file (EMA weights + config, see explorer.checkpoint); the
run folder (`config.run_dir`, default runs/<name of out>/) holds `state.safetensors` (weights, EMA, optimizer,
step and every RNG state, enough to resume exactly), `log.csv` (loss per step) and `samples/step_*.png`.
Everything is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from explorer import data
from explorer.checks import choice, number, whole
from explorer.checkpoint import DiffusionModel, ModelConfig, atomic_save, save_model
from explorer.losses import T_SAMPLINGS, diffusion_loss, draw_t_eps, t_probabilities
from explorer.nets import build_net
from explorer.nets.mlp import MLPConfig
from explorer.nets.unet import UNET_PRESETS
from explorer.parameterization import OBJECTIVES
from explorer.samplers import run, sample
from explorer.schedules import SCHEDULES, T_RANGE, make_schedule

MLP_PRESETS = {"tiny": MLPConfig(hidden=32, num_blocks=1), "small": MLPConfig()}
DEVICES = ("auto", "cpu", "cuda", "mps")
COMPILE = ("auto", "on", "off")
LR_DECAYS = ("cosine", "none")
PRECISIONS = ("auto", "fp32", "bf16")
ADDED_LATER = {"ema_gamma": None, "t_sampling": "uniform"}  # what runs saved before these options trained with
# options that define the run; the rest (length, intervals, device, compile, precision) may change on --resume
RUN_DEFINING = ("dataset", "objective", "schedule", "T", "batch_size", "lr", "warmup", "lr_decay", "ema_decay",
                "ema_gamma", "min_snr_gamma", "t_sampling", "conditional", "p_uncond", "model", "seed", "data_root")


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a run that would be overwritten, nothing to resume...)."""


@dataclass
class TrainConfig:
    """Every option of a training run; see train.py --help for each one's meaning."""

    dataset: str = "fashion-mnist"
    objective: str = "v"
    schedule: str = "cosine"
    T: int = 1000
    steps: int = 2000  # the bundled Fashion-MNIST models' budget: about 75 min on 2 CPU cores
    batch_size: int = 128
    lr: float = 4e-3  # the best of 1e-3, 2e-3, 4e-3 at equal CPU time (bench/results/recipes.md); bundled: 2e-3
    warmup: int = 200
    lr_decay: str = "cosine"
    ema_decay: float = 0.999
    ema_gamma: float | None = None
    min_snr_gamma: float | None = 5.0
    t_sampling: str = "uniform"
    conditional: bool = True
    p_uncond: float = 0.1
    model: str = "small"
    seed: int = 0
    device: str = "auto"
    compile: str = "auto"
    precision: str = "auto"
    out: str = "runs/model.safetensors"
    run_dir: str | None = None
    data_root: str | None = None
    sample_every: int = 500
    ckpt_every: int = 250

    def __post_init__(self):
        is_toy = self.dataset in data.TOY_DATASETS
        if not (is_toy or self.dataset in data.IMAGE_DATASETS or self.dataset.startswith("folder:")):
            allowed = ", ".join((*data.IMAGE_DATASETS, *data.TOY_DATASETS, "folder:PATH"))
            raise ValueError(f"unknown dataset {self.dataset!r}; allowed: {allowed}")
        choice("objective", self.objective, OBJECTIVES)
        choice("schedule", self.schedule, SCHEDULES)
        choice("lr_decay", self.lr_decay, LR_DECAYS)
        choice("device", self.device, DEVICES)
        choice("compile", self.compile, COMPILE)
        choice("precision", self.precision, PRECISIONS)
        choice("t_sampling", self.t_sampling, T_SAMPLINGS)
        choice("model", self.model, tuple(MLP_PRESETS if is_toy else UNET_PRESETS))
        self.T = whole("T", self.T, *T_RANGE)
        self.steps = whole("steps", self.steps, 1, 10_000_000)
        self.batch_size = whole("batch_size", self.batch_size, 1, 65536)
        self.warmup = whole("warmup", self.warmup, 0, 10_000_000)
        self.seed = whole("seed", self.seed, 0, 2 ** 63 - 1)
        self.sample_every = whole("sample_every", self.sample_every, 0, 10_000_000)
        self.ckpt_every = whole("ckpt_every", self.ckpt_every, 1, 10_000_000)
        number("lr", self.lr, 0.0, 1.0, open_low=True)
        number("ema_decay", self.ema_decay, 0.0, 1.0, open_high=True)
        number("p_uncond (label-drop probability)", self.p_uncond, 0.0, 1.0, open_high=True)
        if self.ema_gamma is not None:
            number("ema_gamma (None: the fixed ema_decay)", self.ema_gamma, 0.0)
        if self.min_snr_gamma is not None:
            number("min_snr_gamma (None: off)", self.min_snr_gamma, 0.0, open_low=True)
        if not str(self.out).endswith(".safetensors"):
            raise ValueError(f"out must be a .safetensors path, got {self.out!r}")

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / Path(self.out).stem


def pick_device(name: str = "auto") -> torch.device:
    """cuda, then mps, then cpu for "auto"; an explicit device that is not available is an error."""
    has = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if has[d]))
    choice("device", name, DEVICES)
    if not has[name]:
        raise ValueError(f"device {name!r} is not available on this machine")
    return torch.device(name)


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this rank's device): under torchrun (WORLD_SIZE > 1) joins the process group, gloo on
    CPU and NCCL on CUDA with one GPU per local rank; (0, 1, device) in a plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if device.type == "mps":
        raise ValueError("data-parallel training runs on CPU (gloo) or CUDA (NCCL), not on mps")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def finish_distributed() -> None:
    """Leave the process group init_distributed joined (nothing in a plain process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def resolve_precision(name: str, device: torch.device) -> str:
    """"fp32" or "bf16" for `name` on `device` ("auto": see the module docstring); bf16 where the device has
    no bf16 support is an error."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    supported = {"cuda": lambda: torch.cuda.is_bf16_supported(), "cpu": amx}.get(device.type, lambda: False)()
    if name == "auto":
        return "bf16" if supported else "fp32"
    if name == "bf16" and device.type not in ("cuda", "cpu"):
        raise ValueError(f"precision 'bf16' is not available on {device.type}; use fp32")
    return name


def ema_decay_at(config: TrainConfig, step: int) -> float:
    """The EMA decay applied after optimizer step `step` (1-based): power-function (EDM2) when `ema_gamma` is
    set, else `ema_decay` with warm-up (1 + n) / (10 + n), n = step - 1."""
    if config.ema_gamma is not None:
        return (1 - 1 / step) ** (config.ema_gamma + 1)
    return min(config.ema_decay, step / (9 + step))


def lr_at(config: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `steps` (or constant)."""
    warm = min(1.0, (step + 1) / config.warmup) if config.warmup else 1.0
    decay = 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps)) if config.lr_decay == "cosine" else 1.0
    return config.lr * warm * decay


class Trainer:
    """One training run. Builds data, network, EMA copy and optimizer from `config`; with resume=True it
    continues from the run folder's state so that the next steps equal those of an uninterrupted run."""

    def __init__(self, config: TrainConfig, resume: bool = False, force: bool = False):
        state_path = config.run_path / "state.safetensors"
        if resume:
            if not state_path.is_file():
                raise TrainingError(f"nothing to resume: {state_path} does not exist")
            config = self._config_for_resume(config, state_path)
        elif not force and (Path(config.out).exists() or state_path.exists()):
            raise TrainingError(f"{config.out} or {state_path} already exists; pass --resume to continue that run "
                                "or --force to overwrite it")
        self.config = config
        self.rank, self.world, self.device = init_distributed(pick_device(config.device))
        if config.batch_size % self.world:
            raise ValueError(f"batch_size {config.batch_size} must divide by the {self.world} processes")
        self.schedule = make_schedule(config.schedule, config.T)
        self._load_data()
        torch.manual_seed(config.seed)  # weight init
        self.net = build_net(self.net_kind, self.net_config).to(self.device)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.data_gen = torch.Generator().manual_seed(config.seed)  # batch indices and label dropout
        self.noise_gen = torch.Generator(self.device).manual_seed(config.seed + 1)  # t and eps of the loss
        self.step, self.elapsed = 0, 0.0
        self.images_seen = 0
        # bf16 pays on the UNet's convolutions; a toy MLP is too small to gain, and keeps fp32's precision
        self.precision = resolve_precision("fp32" if config.precision == "auto" and self.net_kind == "mlp"
                                           else config.precision, self.device)
        # channels_last suits oneDNN's fp32 convolutions on a CPU; under bf16 autocast it is no faster compiled and
        # far slower eager (bench/results/speed.md), so bf16 keeps the contiguous layout
        self.channels_last = self.net_kind == "unet" and self.device.type == "cpu" and self.precision == "fp32"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.eager = (torch.nn.parallel.DistributedDataParallel(
            self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.world > 1 else self.net)
        self.forward = self._maybe_compile()
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else None
        self.t_probs = (None if config.t_sampling == "uniform"
                        else t_probabilities(self.schedule, config.t_sampling).to(self.device, torch.float32))
        if resume:
            self._load_state(state_path)
        self._compiled_from = self.step  # the first step of this process is where torch.compile builds

    # --- set-up -------------------------------------------------------------------------------------------
    @staticmethod
    def _config_for_resume(config: TrainConfig, state_path: Path) -> TrainConfig:
        """The saved run's defining options; length, intervals, device and compile may be changed."""
        with safe_open(str(state_path), framework="pt") as f:
            saved = {**ADDED_LATER, **json.loads(f.metadata()["train_config"])}
        defaults = TrainConfig()
        changed = [k for k in RUN_DEFINING if getattr(config, k) not in (saved[k], getattr(defaults, k))]
        if changed:
            raise TrainingError(f"cannot change {', '.join(changed)} when resuming; the run was started with "
                                + ", ".join(f"{k}={saved[k]!r}" for k in changed))
        return TrainConfig(**{**asdict(config), **{k: saved[k] for k in RUN_DEFINING}})

    def _load_data(self):
        c = self.config
        if c.dataset in data.TOY_DATASETS:
            info = data.toy_info(c.dataset)
            self.images, self.labels = None, None
            self.sample_shape = [2]
            self.net_kind = "mlp"
            net_config = MLP_PRESETS[c.model].to_dict()
        else:
            self.images, self.labels, info = data.load_image_tensors(c.dataset, train=True, root=c.data_root)
            self.images = self.images.to(self.device)
            self.labels = self.labels.to(self.device)
            self.sample_shape = list(self.images.shape[1:])
            self.net_kind = "unet"
            net_config = UNET_PRESETS[c.model].to_dict()
            net_config.update(in_channels=self.sample_shape[0], image_size=self.sample_shape[1])
        self.class_names = list(info["class_names"]) if c.conditional else []
        net_config["num_classes"] = len(self.class_names)
        self.net_config = net_config

    def _maybe_compile(self):
        """torch.compile the UNet (fused GroupNorm/SiLU/adds pay back the minute it takes to build); "auto"
        leaves the small toy MLP and MPS in eager mode, where compiling costs more than it saves."""
        c = self.config
        if c.compile == "off" or (c.compile == "auto" and (self.net_kind != "unet" or self.device.type == "mps")):
            return self.eager
        return torch.compile(self.eager, dynamic=False)

    # --- one step -------------------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole batch (every rank draws the same one): x_0 and labels with label dropout."""
        c = self.config
        n = c.batch_size
        if self.images is None:
            x0, y = data.sample_toy(c.dataset, n, generator=self.data_gen)
            x0, y = x0.to(self.device), y.to(self.device)
        else:
            idx = torch.randint(len(self.images), (n,), generator=self.data_gen).to(self.device)
            x0, y = self.images[idx], self.labels[idx]
            if self.channels_last:
                x0 = x0.contiguous(memory_format=torch.channels_last)
        if not self.class_names:
            return x0, None
        drop = (torch.rand(n, generator=self.data_gen) < c.p_uncond).to(self.device)  # label dropout for CFG
        return x0, torch.where(drop, torch.full_like(y, len(self.class_names)), y)

    def _model_fn(self, x_t, t, y):
        return self.forward(x_t, t.to(x_t.dtype) / self.config.T, y)

    def train_step(self) -> torch.Tensor:
        """One optimizer step of Algorithm 1 on this rank's slice of the batch; returns its loss (a tensor, to
        avoid a device sync)."""
        c = self.config
        x0, y = self._batch()
        t, eps = draw_t_eps(self.schedule, x0, self.noise_gen, self.t_probs)
        part = slice(self.rank * len(x0) // self.world, (self.rank + 1) * len(x0) // self.world)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(c, self.step)
        self.net.train()
        with self.autocast or contextlib.nullcontext():
            loss = diffusion_loss(self._model_fn, self.schedule, x0[part], c.objective,
                                  None if y is None else y[part], c.min_snr_gamma, draws=(t[part], eps[part]))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.net.parameters()), 1 - ema_decay_at(c, self.step))
        self.images_seen += x0.shape[0]
        return loss.detach()

    # --- outputs ---------------------------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        c = self.config
        return ModelConfig(net=self.net_kind, net_config=self.net_config, schedule=c.schedule, T=c.T,
                           objective=c.objective, dataset=c.dataset, sample_shape=self.sample_shape,
                           class_names=self.class_names, step=self.step,
                           training={"train_config": asdict(c), "wall_time_s": round(self.elapsed, 1),
                                     "images_seen": self.images_seen, "device": str(self.device),
                                     "torch": torch.__version__, "command": " ".join(sys.argv)})

    def ema_model(self) -> DiffusionModel:
        """The EMA weights as a sampling model (a copy; training goes on with its own weights)."""
        net = copy.deepcopy(self.ema).to(memory_format=torch.contiguous_format)
        return DiffusionModel(net, self.model_config()).eval()

    def save(self) -> None:
        """Write the app's model file (EMA weights) and the resumable state, each atomically (rank 0 only)."""
        if self.rank:
            return
        save_model(self.config.out, self.ema, self.model_config())
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        opt = self.optimizer.state_dict()
        for idx, st in opt["state"].items():
            tensors.update({f"opt.{idx}.{k}": v if torch.is_tensor(v) else torch.tensor(v) for k, v in st.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data"] = self.data_gen.get_state()
        tensors["rng.noise"] = self.noise_gen.get_state()
        meta = {"train_config": json.dumps(asdict(self.config)), "step": str(self.step),
                "elapsed": repr(self.elapsed), "images_seen": str(self.images_seen),
                "param_groups": json.dumps(opt["param_groups"])}
        atomic_save(tensors, meta, self.config.run_path / "state.safetensors")

    def _load_state(self, path: Path) -> None:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        self.optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        torch.set_rng_state(tensors["rng.torch"])
        self.data_gen.set_state(tensors["rng.data"])
        self.noise_gen.set_state(tensors["rng.noise"])
        self.step, self.elapsed = int(meta["step"]), float(meta["elapsed"])
        self.images_seen = int(meta["images_seen"])

    def sample_grid(self, path: str | os.PathLike, per_class: int = 8, steps: int = 20) -> None:
        """Save a PNG of EMA samples from fixed noise (DPM-Solver++, `steps` calls): one row per class for
        conditional image models, an 8x8 grid otherwise, and a 2D histogram of 4000 points for toys."""
        model = self.ema_model()
        g = torch.Generator(self.device).manual_seed(1234)
        k = len(self.class_names)
        if self.images is None:
            n, y = 4000, None
        else:
            n = k * per_class if k else 64
            y = torch.arange(k, device=self.device).repeat_interleave(per_class) if k else None
        x_T = torch.randn((n, *self.sample_shape), generator=g, device=self.device)
        clip = data.TOY_CLIP if self.images is None else True
        x0 = run(sample(model, self.schedule, x_T, method="dpm-solver++", steps=steps, objective=model.objective, y=y,
                        clip_x0=clip))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.images is None:
            picture = torch.histogramdd(x0.float().cpu(), bins=[256, 256], range=[-3.0, 3.0, -3.0, 3.0]).hist
            save_image((picture.T.flip(0) / picture.max().clamp(min=1)).sqrt()[None], str(path))
        else:
            save_image(make_grid((x0.float().cpu() + 1) / 2, nrow=per_class if k else 8, padding=1).clamp(0, 1),
                       str(path))

    def steps(self) -> Iterator[tuple[int, float]]:
        """Train to `config.steps`, yielding (step, loss) after each optimizer step, as improved-diffusion's
        p_sample_loop_progressive yields each sampling step; `fit` drains it, and so can a UI. `elapsed` counts
        training time only, not the consumer's work between steps. The loss is the mean over all ranks. A
        non-finite loss raises TrainingError."""
        while self.step < self.config.steps:
            start = time.perf_counter()
            loss = self.train_step_with_fallback()
            if self.world > 1:
                dist.all_reduce(loss)
                loss /= self.world
            loss = loss.item()
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at step {self.step}")
            self.elapsed += time.perf_counter() - start
            yield self.step, loss

    def fit(self, progress: bool = True) -> str:
        """Drain `steps` with a tqdm bar (loss, images/s, ETA), a CSV log, checkpoints every `ckpt_every` steps
        and sample grids every `sample_every` steps. Ctrl-C or SIGTERM save and return "interrupted"; a
        non-finite loss raises TrainingError and keeps the last good checkpoint."""
        c = self.config
        run_path = c.run_path
        run_path.mkdir(parents=True, exist_ok=True)
        log_path = run_path / "log.csv"
        rows = [r for r in _read_log(log_path) if int(r["step"]) <= self.step]  # drop rows past the saved state
        writes = self.rank == 0
        bar = tqdm(total=c.steps, initial=self.step, disable=not (progress and writes), unit="step",
                   dynamic_ncols=True)
        last_saved, rate, clock = self.step, None, self.elapsed
        restore = _sigterm_as_interrupt()
        try:
            for step, loss in self.steps():
                took, clock = self.elapsed - clock, self.elapsed
                rate = c.batch_size / took if rate is None else 0.9 * rate + 0.1 * c.batch_size / took
                rows.append({"step": step, "loss": f"{loss:.5f}", "lr": f"{lr_at(c, step - 1):.3g}",
                             "images_per_s": f"{rate:.1f}", "elapsed_s": f"{self.elapsed:.1f}"})
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.0f}")
                if step % c.ckpt_every == 0:
                    self.save()
                    if writes:
                        _write_log(log_path, rows)
                    last_saved = step
                if writes and c.sample_every and step % c.sample_every == 0:
                    self.sample_grid(run_path / "samples" / f"step_{step:07d}.png")
            outcome = "done"
        except TrainingError as err:
            raise TrainingError(f"{err}; stopped without saving, the last good checkpoint (step {last_saved}) is "
                                "kept. Try a lower --lr.") from err
        except KeyboardInterrupt:
            outcome = "interrupted"
        finally:
            bar.close()
            restore()
        self.save()
        if writes:
            _write_log(log_path, rows)
        return outcome

    def train_step_with_fallback(self) -> torch.Tensor:
        """train_step, falling back to eager mode once if torch.compile cannot build (no C++ compiler, an
        unsupported platform) and compile is "auto"; the random draws of the failed try are replayed."""
        if self.forward is self.eager or self.config.compile == "on" or self.step > self._compiled_from:
            return self.train_step()
        states = self.data_gen.get_state(), self.noise_gen.get_state(), torch.get_rng_state()
        try:
            return self.train_step()
        except Exception as err:  # torch._dynamo raises many types; any failure here means "no compile"
            warnings.warn(f"torch.compile failed ({type(err).__name__}); training in eager mode")
            self.data_gen.set_state(states[0])
            self.noise_gen.set_state(states[1])
            torch.set_rng_state(states[2])
            self.forward = self.eager
            return self.train_step()


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "loss", "lr", "images_per_s", "elapsed_s"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C while training (so `kill` saves too); returns a function restoring the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
