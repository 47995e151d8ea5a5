"""Train the reference classifier of the quality metrics on the Fashion-MNIST training set.

    OMP_NUM_THREADS=1 python -m scripts.train_classifier [--epochs 5] [--out pretrained/fashion_classifier.safetensors]

The network is explorer.classifier.Classifier with its default config. AdamW with a one-cycle learning rate,
random horizontal flips (Fashion-MNIST's classes are left-right symmetric), label smoothing 0.1. The test set is
only used once, at the end, for the accuracy recorded in the file's metadata (and printed). Seeded: weight
initialisation, shuffling and flips all come from --seed.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads: a lone training process gains from spinning waits

import torch
import torch.nn.functional as F
from tqdm import tqdm

from explorer.classifier import DEFAULT_PATH, Classifier, ClassifierConfig, save_classifier
from explorer.data import load_image_tensors
from explorer.training import pick_device


@torch.no_grad()
def accuracy(classifier: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    classifier.eval()
    correct = sum(int((classifier(xb).argmax(1) == yb).sum())
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--data-root", default=None, help="data folder (default: $EXPLORER_DATA or ~/.cache/...)")
    parser.add_argument("--out", default=str(DEFAULT_PATH.relative_to(DEFAULT_PATH.parents[1])))
    args = parser.parse_args()

    device = pick_device(args.device)
    x_train, y_train, info = load_image_tensors("fashion-mnist", train=True, root=args.data_root)
    x_test, y_test, _ = load_image_tensors("fashion-mnist", train=False, root=args.data_root)
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format  # faster oneDNN convs
    x_train, y_train = x_train.to(device, memory_format=fmt), y_train.to(device)
    x_test, y_test = x_test.to(device, memory_format=fmt), y_test.to(device)

    torch.manual_seed(args.seed)
    config = ClassifierConfig(in_channels=info["channels"], image_size=info["image_size"],
                              dataset="fashion-mnist", class_names=info["class_names"])
    classifier = Classifier(config).to(device, memory_format=fmt)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=args.lr, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                    total_steps=args.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    bar = tqdm(total=args.epochs * steps_per_epoch, unit="step", dynamic_ncols=True)
    for epoch in range(args.epochs):
        classifier.train()
        for idx in torch.randperm(len(x_train), generator=g).to(device).split(args.batch_size):
            xb, yb = x_train[idx], y_train[idx]
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(device)
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = F.cross_entropy(classifier(xb), yb, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    wall = time.perf_counter() - start
    test_accuracy = accuracy(classifier, x_test, y_test)
    config.training = {
        "command": " ".join(["python", *sys.argv]), "epochs": args.epochs, "batch_size": args.batch_size,
        "lr": args.lr, "seed": args.seed, "wall_time_s": round(wall, 1), "device": str(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "test_accuracy": round(test_accuracy, 4),
    }
    save_classifier(args.out, classifier.to(memory_format=torch.contiguous_format).cpu())
    print(f"test accuracy {test_accuracy:.4f} after {args.epochs} epochs in {wall:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
