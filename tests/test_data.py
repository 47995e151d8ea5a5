"""Datasets: 2D toys, Fashion-MNIST offline from the Debian files, image folders, error messages."""

import os
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from PIL import Image

from explorer.data import (
    DEBIAN_FASHION_MNIST_DIR,
    TOY_DATASETS,
    DataUnavailableError,
    dataset_info,
    load_image_dataset,
    load_image_tensors,
    sample_toy,
    sample_toy_class,
    toy_info,
    toy_mixture,
)

FASHION_FILES = [f"{split}-{kind}-ubyte.gz" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


# ------------------------------------------------------------------------------------------------------ 2D toys


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_shapes_labels_scale(name):
    x, y = sample_toy(name, 20000, generator=0)
    assert x.shape == (20000, 2) and x.dtype == torch.float32
    assert y.shape == (20000,) and y.dtype == torch.int64
    info = toy_info(name)
    if info["num_classes"]:
        assert set(y.tolist()) == set(range(info["num_classes"]))
        assert len(info["class_names"]) == info["num_classes"]
    else:
        assert set(y.tolist()) == {-1} and info["class_names"] == []
    assert x.mean(0).abs().max() < 0.05
    assert ((x.std(0) - 1).abs() < 0.05).all()


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_is_deterministic(name):
    x1, y1 = sample_toy(name, 100, generator=3)
    x2, y2 = sample_toy(name, 100, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, sample_toy(name, 100, generator=4)[0])


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_mixture(name):
    means, stds, weights = toy_mixture(name)
    k = weights.shape[0]
    assert means.shape == (k, 2) and stds.shape == (k, 2) and (stds > 0).all()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    mean = weights @ means  # the mixture's moments are the standardisation: mean 0, std 1
    var = weights @ (stds**2 + means**2) - mean**2
    torch.testing.assert_close(mean, torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(var, torch.ones(2, dtype=torch.float64))


def test_toy_class_sampling_keeps_one_class_in_draw_order():
    """Class 1 of two moons: n points, all of that class, the first n of that class in the draws of 2n points
    made one after another from the generator; None is the plain sample_toy."""
    x = sample_toy_class("two-moons", 300, 1, generator=5)
    gen = torch.Generator().manual_seed(5)
    kept = []
    while sum(map(len, kept)) < 300:
        xs, ys = sample_toy("two-moons", 600, generator=gen)
        kept.append(xs[ys == 1])
    assert x.shape == (300, 2) and torch.equal(x, torch.cat(kept)[:300])
    blob = sample_toy_class("blobs", 50, 4, generator=0)
    centres = toy_mixture("blobs")[0].float()
    assert (torch.cdist(blob, centres).argmin(1) == 4).all()
    assert torch.equal(sample_toy_class("swiss-roll", 40, None, generator=2), sample_toy("swiss-roll", 40, generator=2)[0])
    with pytest.raises(ValueError, match=r"label must be a whole number from 0 to 1 \(the classes of two-moons\), got 2"):
        sample_toy_class("two-moons", 10, 2)
    with pytest.raises(ValueError, match="swiss-roll has no classes"):
        sample_toy_class("swiss-roll", 10, 0)


def test_toy_unknown_names():
    for call in (lambda: sample_toy("spiral", 10), lambda: toy_info("spiral"), lambda: toy_mixture("spiral")):
        with pytest.raises(ValueError, match="allowed: two-moons"):
            call()


# ------------------------------------------------------------------------------------------------ Fashion-MNIST


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory):
    """A fresh data root; the Debian files must exist (a failure in CI, a skip elsewhere)."""
    source = Path(os.environ.get("FASHION_MNIST_DIR") or DEBIAN_FASHION_MNIST_DIR)
    missing = [f for f in FASHION_FILES if not (source / f).is_file()]
    if missing:
        message = f"Fashion-MNIST files {missing} missing under {source} (sudo apt-get install dataset-fashion-mnist)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tmp_path_factory.mktemp("data")


def test_fashion_mnist_offline(fashion_root, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", _no_download)
    train = load_image_dataset("fashion-mnist", train=True, root=fashion_root)
    test = load_image_dataset("fashion-mnist", train=False, root=fashion_root)
    assert (len(train), len(test)) == (60000, 10000)
    assert (fashion_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    assert x.min() == -1 and x.max() == 1
    assert torch.equal(x[0], 2 * (train.data[0].float() / 255) - 1)
    assert [train[i][1] for i in range(10)] == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert [test[i][1] for i in range(10)] == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train.info == dataset_info("fashion-mnist") == {
        "image_size": 28, "channels": 1, "class_names": FASHION_CLASSES, "num_classes": 10,
    }


def test_fashion_mnist_tensors(fashion_root):
    x, y, info = load_image_tensors("fashion-mnist", train=False, root=fashion_root)
    dataset = load_image_dataset("fashion-mnist", train=False, root=fashion_root)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert x.min() == -1 and x.max() == 1
    assert info["class_names"] == FASHION_CLASSES
    for i in (0, 1, 9999):
        assert torch.equal(x[i], dataset[i][0]) and y[i] == dataset[i][1]


def test_fashion_mnist_resized_rgb(fashion_root):
    x, y, info = load_image_tensors("fashion-mnist", train=False, root=fashion_root, image_size=32, channels=3)
    dataset = load_image_dataset("fashion-mnist", train=False, root=fashion_root, image_size=32, channels=3)
    assert x.shape == (10000, 3, 32, 32) and (info["image_size"], info["channels"]) == (32, 3)
    for i in (0, 5):
        assert torch.equal(x[i], dataset[i][0])


def _no_download(self):
    raise URLError("network blocked by the test")


def test_missing_fashion_mnist_explains_how_to_get_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FASHION_MNIST_DIR", str(empty))
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", _no_download)
    with pytest.raises(DataUnavailableError, match="sudo apt-get install dataset-fashion-mnist") as caught:
        load_image_dataset("fashion-mnist", root=tmp_path / "root")
    assert "folder:PATH" in str(caught.value) and "internet" in str(caught.value)
    assert isinstance(caught.value.__cause__, URLError)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_download_dataset_explains(name, tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", _no_download)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", _no_download)
    with pytest.raises(DataUnavailableError, match="needs internet access once") as caught:
        load_image_tensors(name, root=tmp_path)
    assert isinstance(caught.value, ValueError) and caught.value.__cause__ is not None


# ------------------------------------------------------------------------------------------------ image folders


def _save(path: Path, size, colour, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_flat_folder(tmp_path):
    _save(tmp_path / "a.png", (40, 30), (255, 255, 255))
    _save(tmp_path / "b.jpg", (20, 20), 0, mode="L")
    _save(tmp_path / "c.png", (50, 64), (255, 255, 255, 128), mode="RGBA")
    (tmp_path / "notes.txt").write_text("not an image")
    name = f"folder:{tmp_path}"
    assert dataset_info(name) == {"image_size": 32, "channels": 3, "class_names": [], "num_classes": 0}
    x, y, info = load_image_tensors(name)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [-1, -1, -1]
    assert torch.equal(x[0], torch.ones(3, 32, 32)) and torch.equal(x[1], -torch.ones(3, 32, 32))
    grey = load_image_dataset(name, image_size=16, channels=1)
    assert len(grey) == 3 and grey.info["channels"] == 1
    assert grey[0][0].shape == (1, 16, 16) and torch.equal(grey[0][0], torch.ones(1, 16, 16))


def test_class_folder(tmp_path):
    for cls, colour in (("dogs", (0, 0, 0)), ("cats", (255, 255, 255))):
        for i in range(2):
            _save(tmp_path / cls / f"{i}.png", (24 + 8 * i, 24), colour)
    _save(tmp_path / ".thumbnails" / "t.png", (8, 8), (9, 9, 9))  # hidden: not a class
    (tmp_path / "empty").mkdir()  # no images: not a class
    name = f"folder:{tmp_path}"
    dataset = load_image_dataset(name, image_size=16, channels=1)
    assert dataset.info["class_names"] == ["cats", "dogs"] and dataset.info["num_classes"] == 2
    x, y, _ = load_image_tensors(name, image_size=16, channels=1)
    assert x.shape == (4, 1, 16, 16) and y.tolist() == [0, 0, 1, 1]
    assert (x[:2] == 1).all() and (x[2:] == -1).all()
    rgb = load_image_dataset(name)
    assert rgb[0][0].shape == (3, 32, 32)


def test_folder_missing_or_empty(tmp_path):
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_image_dataset(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(DataUnavailableError, match="holds no images"):
        load_image_dataset(f"folder:{tmp_path}")


def test_unknown_image_dataset():
    for name in ("imagenet", "folder:", "Fashion-MNIST"):
        with pytest.raises(ValueError, match="allowed: fashion-mnist, mnist, cifar10, folder:PATH"):
            load_image_dataset(name)
    with pytest.raises(ValueError, match="channels must be 1"):
        dataset_info("mnist", channels=2)
