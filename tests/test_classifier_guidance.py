"""Classifier guidance, against the exact posterior of a two-class Gaussian mixture, and the bundled noise-aware
classifier p_phi(y | x_t, t) (its file, its config, its accuracy on real noisy test images).

Data: 1-D, p(x_0) = 1/2 N(-M, SIGMA^2) + 1/2 N(M, SIGMA^2), class y = 0 (left) or 1 (right). At timestep t,
q(x_t | y) = N(a_t mu_y, v_t) with v_t = a_t^2 SIGMA^2 + b_t^2, so the exact classifier is
log p(y | x_t) = -(x_t - a_t mu_y)^2 / (2 v_t) + const and the exact noise predictor of the mixture is
eps*(x_t) = b_t sum_y p(y | x_t) (x_t - a_t mu_y) / v_t. With scale s = 1 guidance turns the score of q(x_t) into
that of q(x_t | y), so every sampler must then draw from the class-y Gaussian N(mu_y, SIGMA^2).
"""
import math
import os

import pytest
import torch

from explorer.checkpoint import (
    PRETRAINED_DIR,
    CheckpointError,
    list_checkpoints,
    read_config,
)
from explorer.classifier import (
    Classifier,
    ClassifierConfig,
    ClassifierError,
    load_classifier,
)
from explorer.data import DataUnavailableError, load_image_tensors
from explorer.noisy_classifier import (
    DEFAULT_PATH,
    FORMAT,
    NoisyClassifier,
    NoisyClassifierConfig,
    NoisyClassifierError,
    load_noisy_classifier,
    noisy_accuracy,
    save_noisy_classifier,
)
from explorer.samplers import make_denoiser, run, sample
from explorer.schedules import make_schedule

M, SIGMA = 1.0, 0.5
MEANS = torch.tensor([-M, M], dtype=torch.float64)
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _moments(schedule, x, t):
    """a_t, b_t and v_t shaped (B, 1), and the offsets x_t - a_t mu_y (B, 2), for x of shape (B, 1)."""
    ab = schedule.alpha_bars[t].to(x.dtype).view(-1, 1)
    return ab.sqrt(), (1 - ab).sqrt(), ab * SIGMA ** 2 + 1 - ab, x - ab.sqrt() * MEANS


class MixtureClassifier:
    """The exact p(y | x_t) of the mixture, as logits: -(x_t - a_t mu_y)^2 / (2 v_t)."""

    noise_aware = True
    num_classes = 2

    def __init__(self, schedule):
        self.schedule = schedule
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        _, _, v, offset = _moments(self.schedule, x, t)
        return -offset ** 2 / (2 * v)


def mixture_oracle(schedule):
    """The exact eps-predictor of the (unconditional) mixture; it ignores y."""
    def model(x, t, y=None):
        _, b, v, offset = _moments(schedule, x, t)
        posterior = torch.softmax(-offset ** 2 / (2 * v), dim=1)  # p(y | x_t)
        return b * (posterior * offset).sum(1, keepdim=True) / v

    return model


def test_guided_eps_is_the_class_conditional_eps_at_scale_one():
    """eps_hat - s b_t grad log p(y | x_t) (Dhariwal & Nichol eq. 14) with s = 1 is exactly the noise predictor
    of q(x_t | y), b_t (x_t - a_t mu_y) / v_t; with s = 2 it moves as far again."""
    s = make_schedule("cosine", 1000)
    x = 2 * torch.randn(64, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(64) % 2
    plain = make_denoiser(mixture_oracle(s), s, "eps", y)
    for t in (1, 30, 400, 999, 1000):
        _, b, v, offset = _moments(s, x, t)
        conditional = b * offset.gather(1, y[:, None]) / v
        for scale in (1.0, 2.0):
            guided = make_denoiser(mixture_oracle(s), s, "eps", y, classifier=MixtureClassifier(s),
                                   classifier_scale=scale)(x, t)
            unguided = plain(x, t).eps
            assert torch.allclose(guided.eps, unguided + scale * (conditional - unguided), rtol=0, atol=1e-12)
            assert torch.allclose(s.sqrt_alpha_bars[t] * guided.x0 + s.sqrt_one_minus_alpha_bars[t] * guided.eps,
                                  x, atol=1e-9)  # x0_hat follows the guided eps


@pytest.mark.parametrize("method,steps", [("ddpm", 250), ("ddim", 100), ("dpm-solver++", 20)])
def test_guided_samplers_draw_more_of_class_y_as_the_scale_grows(method, steps):
    s = make_schedule("cosine", 1000)
    n = 2000
    x_T = torch.randn(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.ones(n, dtype=torch.long)  # class 1: the right-hand Gaussian N(M, SIGMA^2)

    def draw(scale, classifier=None):
        return run(sample(mixture_oracle(s), s, x_T, method=method, steps=steps, y=y, classifier=classifier,
                          classifier_scale=scale, generator=torch.Generator().manual_seed(2)))[:, 0]

    unguided = draw(0.0)
    zero = MixtureClassifier(s)
    assert torch.equal(draw(0.0, zero), unguided) and zero.calls == 0  # s = 0 is the unguided sampler exactly
    assert (unguided > 0).double().mean().item() == pytest.approx(0.5, abs=0.03)
    runs = {scale: draw(scale, MixtureClassifier(s)) for scale in (0.5, 1.0, 2.0, 4.0)}
    # s = 1 samples the class-y Gaussian: mean M, std SIGMA, a fraction Phi(M / SIGMA) on the right of 0
    assert runs[1.0].mean().item() == pytest.approx(M, abs=0.03)
    assert runs[1.0].std().item() == pytest.approx(SIGMA, rel=0.05)
    in_class = [(unguided > 0).double().mean().item()] + [(x > 0).double().mean().item() for x in runs.values()]
    assert in_class[2] == pytest.approx(0.5 * (1 + math.erf(M / SIGMA / math.sqrt(2))), abs=0.01)
    assert in_class[0] < in_class[1] < in_class[2] and all(a <= b for a, b in zip(in_class, in_class[1:]))
    means = [unguided.mean().item()] + [x.mean().item() for x in runs.values()]
    assert all(a < b for a, b in zip(means, means[1:]))  # ever further into class 1


def test_classifier_guidance_follows_classifier_free_guidance():
    """eps = null + w (cond - null) first, then - s b_t grad log p(y | x_t); a classifier with logits
    (0, c sum x) has gradient +c/2 (y = 1) or -c/2 (y = 0) per element at x = 0."""
    s = make_schedule("cosine", 100)

    def model(x, t, y):  # output = label value, so the arithmetic is visible
        return y.to(x.dtype).view(-1, 1).expand_as(x).clone()

    class Linear:
        noise_aware, num_classes, schedule = True, 2, s

        def __call__(self, x, t):
            return torch.stack([torch.zeros(len(x), dtype=x.dtype), 2.0 * x.flatten(1).sum(1)], dim=1)

    model.null_label = 10
    steps = list(sample(model, s, torch.zeros(2, 3), steps=2, y=torch.tensor([0, 1]), guidance=3.0,
                        classifier=Linear(), classifier_scale=2.0))
    b_T = s.sqrt_one_minus_alpha_bars[100].item()
    expected = torch.tensor([10 + 3 * (0 - 10) + 2 * b_T, 10 + 3 * (1 - 10) - 2 * b_T])
    assert torch.allclose(steps[0].eps_hat, expected[:, None].expand(2, 3).float(), atol=1e-5)


@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad, torch.enable_grad])
def test_guidance_under_any_grad_mode(mode):
    """The app streams under torch.inference_mode, metrics under no_grad: the classifier's gradient is taken
    all the same, gives the same samples, and no graph leaks out."""
    s = make_schedule("cosine", 100)
    torch.manual_seed(0)
    clf = NoisyClassifier(NoisyClassifierConfig(channels=[8, 16], norm_groups=4, image_size=8, T=100,
                                                class_names=["a", "b", "c"])).eval()
    clf.requires_grad_(False)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    options = dict(method="ddim", steps=5, y=torch.tensor([0, 2]), classifier=clf, classifier_scale=3.0)
    reference = run(sample(lambda x, t, y: torch.zeros_like(x), s, x_T, **options))
    with mode():
        x_T_here, y_here = x_T.clone(), torch.tensor([0, 2])  # inference tensors under inference_mode
        x0 = run(sample(lambda x, t, y: torch.zeros_like(x), s, x_T_here, **{**options, "y": y_here}))
    assert not x0.requires_grad and x0.grad_fn is None
    assert torch.equal(x0, reference)
    assert not torch.equal(reference, run(sample(lambda x, t, y: torch.zeros_like(x), s, x_T, method="ddim", steps=5)))


@pytest.mark.parametrize("kwargs,match", [
    (dict(classifier_scale=1.0), "needs a noise-aware classifier"),
    (dict(classifier="mixture", classifier_scale=-1.0), r"classifier_scale must be a finite number >= 0"),
    (dict(classifier="mixture", classifier_scale=1.0, y=None), "needs class labels y"),
    (dict(classifier="mixture", classifier_scale=1.0, y=torch.tensor([0, 2])), r"must lie in 0\.\.1, got \[0, 2\]"),
    (dict(classifier="reference", classifier_scale=1.0), "got a Classifier, which is not one"),
    (dict(classifier="other schedule", classifier_scale=1.0),
     "trained on x_t of the linear schedule with T = 100; this sampler runs the cosine schedule with T = 100"),
])
def test_bad_classifier_guidance(kwargs, match):
    s = make_schedule("cosine", 100)
    classifiers = {"mixture": MixtureClassifier(s), "other schedule": MixtureClassifier(make_schedule("linear", 100)),
                   "reference": Classifier(ClassifierConfig(class_names=FASHION))}
    kwargs = {"y": torch.tensor([0, 1]), **kwargs}
    kwargs["classifier"] = classifiers.get(kwargs.get("classifier"))
    with pytest.raises(ValueError, match=match):
        sample(mixture_oracle(s), s, torch.zeros(2, 1, dtype=torch.float64), **kwargs)


# ---------------------------------------------------------------------------------- the noise-aware classifier


def test_noisy_classifier_round_trip_and_foreign_files(tmp_path):
    torch.manual_seed(0)
    net = NoisyClassifier(NoisyClassifierConfig(class_names=FASHION, training={"note": "untrained"})).eval()
    path = tmp_path / "noisy.safetensors"
    save_noisy_classifier(path, net)
    loaded = load_noisy_classifier(path)
    x, t = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 10, 500, 1000])
    torch.testing.assert_close(loaded(x, t), net(x, t))
    assert loaded(x, t).shape == (4, 10) and loaded.config == net.config and not loaded.training
    assert loaded.noise_aware and loaded.schedule.name == "cosine" and loaded.schedule.T == 1000
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(loaded(x, torch.tensor(500)), loaded(x, torch.full((4,), 500)))  # shared t
    with pytest.raises(NoisyClassifierError, match="no such"):
        load_noisy_classifier(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(NoisyClassifierError, match="not a safetensors"):
        load_noisy_classifier(tmp_path / "junk.safetensors")
    with pytest.raises(NoisyClassifierError, match=FORMAT):  # the reference classifier is not one
        load_noisy_classifier(PRETRAINED_DIR / "fashion_classifier.safetensors")
    with pytest.raises(ClassifierError, match="not a reference classifier"):  # ... nor this one a reference one
        load_classifier(path)
    with pytest.raises(CheckpointError, match="not a diffusion-explorer checkpoint"):
        read_config(path)


@pytest.mark.parametrize("kwargs,match", [
    (dict(class_names=["one"]), "at least 2 class names"),
    (dict(channels=[12, 24]), "divide by norm_groups=8"),
    (dict(schedule="sigmoid"), "allowed: linear, cosine"),
    (dict(image_size=2), "image_size must be a whole number at least 4"),
])
def test_noisy_classifier_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoisyClassifierConfig(**{"class_names": FASHION, **kwargs})


def test_the_bundled_noisy_classifier_file():
    clf = load_noisy_classifier()
    config = clf.config
    assert DEFAULT_PATH.stat().st_size < 10 * 1024 ** 2
    assert config.class_names == FASHION and (config.schedule, config.T) == ("cosine", 1000)
    assert config.training["command"].startswith("python -m scripts.train_noisy_classifier")
    accuracy = config.training["test_accuracy_by_t"]
    assert sorted(accuracy, key=int) == ["0", "250", "500", "750"]
    assert accuracy["0"] >= accuracy["250"] >= accuracy["500"] >= accuracy["750"] > 0.5  # chance is 0.1
    assert DEFAULT_PATH not in [path for path, _ in list_checkpoints()]


@pytest.fixture(scope="module")
def fashion_test():
    """The 10,000 Fashion-MNIST test images (Debian dataset-fashion-mnist): a failure in CI when missing."""
    try:
        x, y, _ = load_image_tensors("fashion-mnist", train=False)
    except DataUnavailableError as err:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"Fashion-MNIST is needed here: {err}")
    return x, y


def test_the_bundled_noisy_classifier_on_noisy_test_images(fashion_test):
    """At t = 250 (alpha_bar = 0.85 on the cosine schedule) it names most test images' class, as its metadata
    says (which was measured on all 10,000 with other noise); at t = T no signal is left, so it is at chance."""
    x, y = fashion_test[0][:2000], fashion_test[1][:2000]
    clf = load_noisy_classifier()
    g = torch.Generator().manual_seed(123)
    at_250 = noisy_accuracy(clf, x, y, 250, g)
    assert at_250 > 0.75 and at_250 == pytest.approx(clf.config.training["test_accuracy_by_t"]["250"], abs=0.03)
    assert noisy_accuracy(clf, x, y, 1000, g) < 0.2
