"""What the two classifier trainers share (scripts/train_classifier.py, scripts/train_noisy_classifier.py): their
common command-line options, the Fashion-MNIST tensors on the device, the training loop (shuffled batches, random
horizontal flips, AdamW with a one-cycle learning rate, a tqdm bar) and the provenance a file's metadata records.

Each script keeps what is its own: the network, the loss of a batch, the evaluation. A script imports this module
after calling explorer.threads.configure_threads, since it imports torch.
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from explorer.data import load_image_tensors

DATASET = "fashion-mnist"


def parser(description: str, default_out: Path) -> argparse.ArgumentParser:
    """--epochs, --batch-size, --lr, --seed, --device, --data-root and --out (default: `default_out`, relative to the
    repository); a script adds its own options before parsing."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--data-root", default=None, help="data folder (default: $EXPLORER_DATA or ~/.cache/...)")
    p.add_argument("--out", default=str(default_out.relative_to(default_out.parents[1])))
    return p


def fashion_mnist(root: str | None, device: torch.device, memory_format: torch.memory_format = torch.preserve_format):
    """(x_train, y_train, x_test, y_test, info) of Fashion-MNIST on `device`, the images in `memory_format`; x float
    [N, 1, 28, 28] in [-1, 1], y int64 [N] (explorer.data.load_image_tensors)."""
    x_train, y_train, info = load_image_tensors(DATASET, train=True, root=root)
    x_test, y_test, _ = load_image_tensors(DATASET, train=False, root=root)
    return (x_train.to(device, memory_format=memory_format), y_train.to(device),
            x_test.to(device, memory_format=memory_format), y_test.to(device), info)


def train(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, weight_decay: float,
          loss: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
          bar_interval: float = 0.1) -> float:
    """Train `network` in place for args.epochs passes over (x, y) in shuffled batches of args.batch_size, each
    image flipped left-right with probability 1/2; `loss(x_batch, y_batch, g)` is minimised by AdamW (args.lr,
    one-cycle schedule, `weight_decay`). A CPU generator g seeded with args.seed draws the order, the flips and
    whatever else `loss` draws from it, in that order. A tqdm bar redraws at most every `bar_interval` seconds.
    Returns the wall time in seconds."""
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                    total_steps=args.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    bar = tqdm(total=args.epochs * steps_per_epoch, unit="step", dynamic_ncols=True, mininterval=bar_interval)
    for epoch in range(args.epochs):
        network.train()
        for idx in torch.randperm(len(x), generator=g).to(x.device).split(args.batch_size):
            xb, yb = x[idx], y[idx]
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(x.device)
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            value = loss(xb, yb, g)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{value.item():.3f}", refresh=False)
    bar.close()
    return time.perf_counter() - start


def provenance(command: str, args: argparse.Namespace, wall: float, device: torch.device) -> dict:
    """What a classifier file's config records of the run that made it (its `training` field), before the
    script's own results."""
    return {"command": command, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "wall_time_s": round(wall, 1), "device": str(device),
            "threads": torch.get_num_threads(), "torch": torch.__version__}
