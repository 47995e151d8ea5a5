"""Train a diffusion model and write a checkpoint the app loads with no other input.

    python train.py --dataset fashion-mnist --objective v --out pretrained/my_model.safetensors
    python train.py --dataset two-moons --steps 3000 --out runs/moons.safetensors
    python train.py --out pretrained/my_model.safetensors --resume      # continue after Ctrl-C
    torchrun --nproc_per_node 4 train.py --out runs/big.safetensors      # data parallel (README: several GPUs)

See `python train.py --help` for every option; the loop itself lives in explorer/training.py.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads: a lone training process gains from spinning waits

from explorer.checkpoint import CheckpointError  # noqa: E402
from explorer.data import IMAGE_DATASETS, TOY_DATASETS, DataUnavailableError  # noqa: E402
from explorer.losses import T_SAMPLINGS  # noqa: E402
from explorer.training import (  # noqa: E402
    COMPILE, DEVICES, LR_DECAYS, MLP_PRESETS, PRECISIONS, TrainConfig, Trainer, TrainingError, finish_distributed)
from explorer.nets.unet import UNET_PRESETS  # noqa: E402
from explorer.parameterization import OBJECTIVES  # noqa: E402
from explorer.schedules import SCHEDULES, T_RANGE  # noqa: E402

DEFAULTS = TrainConfig()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = DEFAULTS
    datasets = ", ".join((*IMAGE_DATASETS, "folder:PATH", *TOY_DATASETS))
    p.add_argument("--dataset", default=d.dataset, help=f"training data: {datasets}. fashion-mnist reads the "
                   "Debian package dataset-fashion-mnist offline; mnist/cifar10 download once")
    p.add_argument("--objective", default=d.objective, choices=OBJECTIVES, help="what the network predicts")
    p.add_argument("--schedule", default=d.schedule, choices=SCHEDULES, help="noise schedule")
    p.add_argument("--T", type=int, default=d.T, help=f"diffusion steps, {T_RANGE[0]}..{T_RANGE[1]}")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in total (the default model: about 75 min on 2 CPU cores)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="examples per step, over all processes under torchrun")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="linear learning-rate warm-up steps")
    p.add_argument("--lr-decay", default=d.lr_decay, choices=LR_DECAYS, help="learning-rate decay after warm-up")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA decay of the saved weights, in [0, 1)")
    p.add_argument("--ema-gamma", type=float, default=d.ema_gamma,
                   help="power-function EMA (EDM2) of exponent gamma instead of --ema-decay: averages a fixed "
                   "fraction of the run however long it is (gamma 6.94: sigma_rel 0.10)")
    p.add_argument("--t-sampling", default=d.t_sampling, choices=T_SAMPLINGS,
                   help="how t is drawn: uniform (DDPM) or log-normal in the noise level (EDM; use with "
                   "--min-snr-gamma 0 and v for EDM's weighting)")
    p.add_argument("--min-snr-gamma", type=float, default=d.min_snr_gamma,
                   help="min-SNR-gamma loss weighting; 0 turns it off (plain L_simple)")
    p.add_argument("--unconditional", action="store_true", help="ignore class labels (no guidance possible)")
    p.add_argument("--p-uncond", type=float, default=d.p_uncond,
                   help="label-drop probability, which trains the null class for classifier-free guidance")
    p.add_argument("--model", default=d.model, help=f"network size: UNet {', '.join(UNET_PRESETS)} for images, "
                   f"MLP {', '.join(MLP_PRESETS)} for 2D toys")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (weights, batches, noise)")
    p.add_argument("--device", default=d.device, choices=DEVICES, help="auto picks cuda, then mps, then cpu")
    p.add_argument("--compile", default=d.compile, choices=COMPILE,
                   help="torch.compile the network; auto compiles the UNet (not the toy MLP, not on MPS) and falls back to eager if it cannot build")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="bf16 autocast or fp32; auto picks bf16 on CUDA and on CPUs with AMX, fp32 elsewhere")
    p.add_argument("--out", default=d.out, help="the model file the app loads (EMA weights + config)")
    p.add_argument("--run-dir", default=None, help="resumable state, log.csv and sample grids "
                   "(default runs/<name of --out>)")
    p.add_argument("--data-root", default=None, help="where datasets are unpacked or downloaded "
                   "(default $EXPLORER_DATA or ~/.cache/diffusion-explorer/data)")
    p.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between sample grids (0: never)")
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --run-dir exactly")
    p.add_argument("--force", action="store_true", help="overwrite an existing run's output")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["conditional"] = not args.unconditional
    values["min_snr_gamma"] = args.min_snr_gamma or None
    return TrainConfig(**values)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        trainer = Trainer(config_from_args(args), resume=args.resume, force=args.force)
        outcome = trainer.fit()
    except (ValueError, TrainingError, DataUnavailableError, CheckpointError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    finally:
        finish_distributed()
    if trainer.rank == 0:
        print(f"{outcome} at step {trainer.step}: {trainer.config.out} (resume state in {trainer.config.run_path})",
              file=sys.stderr)
    return 0 if outcome == "done" else 130


if __name__ == "__main__":
    sys.exit(main())
