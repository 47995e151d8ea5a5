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

import sys

from explorer.threads import configure_threads

configure_threads("spin")  # before torch loads; OMP_WAIT_POLICY=PASSIVE in the environment wins (shared cores)

import torch
import torch.nn.functional as F

from explorer.forward import q_sample
from explorer.noisy_classifier import (
    DEFAULT_PATH,
    NoisyClassifier,
    NoisyClassifierConfig,
    noisy_accuracy,
    save_noisy_classifier,
)
from explorer.training import pick_device
from scripts import classifier_training as ct


def main() -> None:
    parser = ct.parser(__doc__.splitlines()[0], DEFAULT_PATH)
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--eval-t", default="0,250,500,750", help="comma-separated timesteps to report accuracy at")
    args = parser.parse_args()
    eval_ts = [int(t) for t in args.eval_t.split(",")]

    device = pick_device(args.device)
    x_train, y_train, x_test, y_test, info = ct.fashion_mnist(args.data_root, device)

    torch.manual_seed(args.seed)
    config = NoisyClassifierConfig(in_channels=info["channels"], image_size=info["image_size"], schedule=args.schedule,
                                   T=args.T, dataset=ct.DATASET, class_names=info["class_names"])
    classifier = NoisyClassifier(config).to(device)

    def loss(x0: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        t = torch.randint(0, args.T + 1, (len(x0),), generator=g).to(device)  # uniform in 0..T
        eps = torch.randn(x0.shape, generator=g).to(device)
        return F.cross_entropy(classifier(q_sample(classifier.schedule, x0, t, eps), t), y)

    wall = ct.train(classifier, x_train, y_train, args, weight_decay=1e-4, loss=loss, bar_interval=5)
    classifier.eval()
    accuracy = {str(t): noisy_accuracy(classifier, x_test, y_test, t, torch.Generator().manual_seed(args.seed))
                for t in eval_ts}
    accuracy = {t: round(value, 4) for t, value in accuracy.items()}
    config.training = {**ct.provenance(" ".join(["python -m scripts.train_noisy_classifier", *sys.argv[1:]]), args,
                                       wall, device),
                       "t_sampling": f"uniform 0..{args.T}", "test_accuracy_by_t": accuracy}
    save_noisy_classifier(args.out, classifier.cpu())
    print(f"test accuracy by t {accuracy} after {args.epochs} epochs in {wall:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
