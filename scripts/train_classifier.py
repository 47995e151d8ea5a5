"""Train the reference classifier of the quality metrics on the Fashion-MNIST training set.

    OMP_NUM_THREADS=1 python -m scripts.train_classifier [--epochs 5] [--out pretrained/fashion_classifier.safetensors]

The network is explorer.classifier.Classifier with its default config. AdamW with a one-cycle learning rate,
random horizontal flips (Fashion-MNIST's classes are left-right symmetric), label smoothing 0.1. The test set is
only used once, at the end, for the accuracy recorded in the file's metadata (and printed). Seeded: weight
initialisation, shuffling and flips all come from --seed.
"""
from __future__ import annotations

import sys

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads: a lone training process gains from spinning waits

import torch
import torch.nn.functional as F

from explorer.classifier import DEFAULT_PATH, Classifier, ClassifierConfig, save_classifier
from explorer.training import pick_device
from scripts import classifier_training as ct


@torch.no_grad()
def accuracy(classifier: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    classifier.eval()
    correct = sum(int((classifier(xb).argmax(1) == yb).sum())
                  for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)


def main() -> None:
    args = ct.parser(__doc__.splitlines()[0], DEFAULT_PATH).parse_args()

    device = pick_device(args.device)
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format  # faster oneDNN convs
    x_train, y_train, x_test, y_test, info = ct.fashion_mnist(args.data_root, device, fmt)

    torch.manual_seed(args.seed)
    config = ClassifierConfig(in_channels=info["channels"], image_size=info["image_size"],
                              dataset=ct.DATASET, class_names=info["class_names"])
    classifier = Classifier(config).to(device, memory_format=fmt)
    wall = ct.train(classifier, x_train, y_train, args, weight_decay=5e-4,
                    loss=lambda xb, yb, g: F.cross_entropy(classifier(xb), yb, label_smoothing=0.1))
    test_accuracy = accuracy(classifier, x_test, y_test)
    config.training = {**ct.provenance(" ".join(["python", *sys.argv]), args, wall, device),
                       "test_accuracy": round(test_accuracy, 4)}
    save_classifier(args.out, classifier.to(memory_format=torch.contiguous_format).cpu())
    print(f"test accuracy {test_accuracy:.4f} after {args.epochs} epochs in {wall:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
