"""Train the noise-aware classifier p_phi(y | x_t, t) of classifier guidance on the Fashion-MNIST training set.

    OMP_WAIT_POLICY=PASSIVE python -m scripts.train_noisy_classifier [--epochs 5] \
        [--out pretrained/fashion_noisy_classifier.safetensors]

The network is explorer.noisy_classifier.NoisyClassifier with its default (small) config. Each training image is
noised to x_t = q_sample(x_0, t, eps) (seed 001, eq. 1) at a timestep t drawn uniformly from 0..T of the cosine
schedule with T = 1000, the bundled diffusion models' schedule (Dhariwal & Nichol 2021, section 4: the classifier
is trained on the noisy images the sampler will show it). AdamW with a one-cycle learning rate, random
horizontal flips. The test set is used only at the end: accuracy at a few noise levels (--eval-t), each test
image noised once with a seeded eps, printed and recorded in the file's metadata with the command. Seeded:
initialisation, shuffling, flips, t and eps all come from --seed.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads; OMP_WAIT_POLICY=PASSIVE in the environment wins (shared cores)

import torch
import torch.nn.functional as F
from tqdm import tqdm

from explorer.data import load_image_tensors
from explorer.forward import q_sample
from explorer.noisy_classifier import (
    DEFAULT_PATH,
    NoisyClassifier,
    NoisyClassifierConfig,
    noisy_accuracy,
    save_noisy_classifier,
)
from explorer.training import pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--eval-t", default="0,250,500,750", help="comma-separated timesteps to report accuracy at")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--data-root", default=None, help="data folder (default: $EXPLORER_DATA or ~/.cache/...)")
    parser.add_argument("--out", default=str(DEFAULT_PATH.relative_to(DEFAULT_PATH.parents[1])))
    args = parser.parse_args()
    eval_ts = [int(t) for t in args.eval_t.split(",")]

    device = pick_device(args.device)
    x_train, y_train, info = load_image_tensors("fashion-mnist", train=True, root=args.data_root)
    x_test, y_test, _ = load_image_tensors("fashion-mnist", train=False, root=args.data_root)
    x_train, y_train, x_test, y_test = (v.to(device) for v in (x_train, y_train, x_test, y_test))

    torch.manual_seed(args.seed)
    config = NoisyClassifierConfig(in_channels=info["channels"], image_size=info["image_size"], schedule=args.schedule,
                                   T=args.T, dataset="fashion-mnist", class_names=info["class_names"])
    classifier = NoisyClassifier(config).to(device)
    schedule = classifier.schedule
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                    total_steps=args.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    bar = tqdm(total=args.epochs * steps_per_epoch, unit="step", dynamic_ncols=True, mininterval=5)
    for epoch in range(args.epochs):
        classifier.train()
        for idx in torch.randperm(len(x_train), generator=g).to(device).split(args.batch_size):
            x0, y = x_train[idx], y_train[idx]
            flip = (torch.rand(len(idx), generator=g) < 0.5).to(device)
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
            t = torch.randint(0, args.T + 1, (len(idx),), generator=g).to(device)  # uniform in 0..T
            eps = torch.randn(x0.shape, generator=g).to(device)
            loss = F.cross_entropy(classifier(q_sample(schedule, x0, t, eps), t), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    wall = time.perf_counter() - start
    classifier.eval()
    accuracy = {str(t): noisy_accuracy(classifier, x_test, y_test, t, torch.Generator().manual_seed(args.seed))
                for t in eval_ts}
    accuracy = {t: round(value, 4) for t, value in accuracy.items()}
    config.training = {
        "command": " ".join(["python -m scripts.train_noisy_classifier", *sys.argv[1:]]), "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "t_sampling": f"uniform 0..{args.T}",
        "wall_time_s": round(wall, 1), "device": str(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "test_accuracy_by_t": accuracy,
    }
    save_noisy_classifier(args.out, classifier.cpu())
    print(f"test accuracy by t {accuracy} after {args.epochs} epochs in {wall:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
