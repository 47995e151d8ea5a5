"""Datasets: Fashion-MNIST / MNIST / CIFAR-10 through torchvision, folders of images, and 2D toy distributions.

Images come out as float tensors CHW in [-1, 1], x = 2 * (pixel / 255) - 1, with an int label. Label -1 means
"no class" (a flat folder of images, an unlabelled toy); trainers map it to the nets' null label.

Fashion-MNIST works offline from the Debian package `dataset-fashion-mnist` (four IDX .gz files under
/usr/share/datasets/fashion-mnist, or $FASHION_MNIST_DIR): Debian recompressed them, so torchvision would not
accept the .gz files, but decompressed into `<root>/FashionMNIST/raw/` they are the originals and torchvision's
`FashionMNIST(root)` treats the dataset as present. The default root is $EXPLORER_DATA or
~/.cache/diffusion-explorer/data.

2D toys are generated in torch from a seed, centred and scaled per coordinate to mean 0 and standard deviation
about 1 (the scale of the N(0, I) prior). `toy_mixture` approximates each toy by a fine Gaussian mixture in the
same coordinates; it is meant for drawing the marginals q(x_t) (a Gaussian mixture convolved with Gaussian noise
stays one), not as the exact data density.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
from pathlib import Path

import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from explorer import checks

IMAGE_DATASETS = ("fashion-mnist", "mnist", "cifar10")
TOY_DATASETS = ("two-moons", "swiss-roll", "8-gaussians", "checkerboard", "blobs")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_FOLDER_DEFAULT_SIZE = 32
_FOLDER_DEFAULT_CHANNELS = 3

_BUILTIN = {
    "fashion-mnist": {
        "image_size": 28,
        "channels": 1,
        "class_names": [
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ],
    },
    "mnist": {"image_size": 28, "channels": 1, "class_names": [str(d) for d in range(10)]},
    "cifar10": {
        "image_size": 32,
        "channels": 3,
        "class_names": [
            "airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck",
        ],
    },
}


class DataUnavailableError(ValueError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


def _folder_path(name: str) -> Path | None:
    """PATH of a "folder:PATH" name, None for a built-in name; ValueError for anything else."""
    if name.startswith("folder:") and len(name) > len("folder:"):
        return Path(name[len("folder:"):]).expanduser()
    if name in _BUILTIN:
        return None
    raise ValueError(f"unknown image dataset {name!r}; allowed: {', '.join(IMAGE_DATASETS)}, folder:PATH")


def _default_root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("EXPLORER_DATA") or "~/.cache/diffusion-explorer/data").expanduser()


def _check_size(image_size: int | None, channels: int | None) -> None:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _class_dirs(path: Path) -> list[str]:
    """Sorted names of the visible subfolders of `path` that hold at least one image (at any depth)."""
    return sorted(
        d.name
        for d in path.iterdir()
        if d.is_dir() and not d.name.startswith(".")
        and any(f.is_file() and _is_image(f.name) for f in d.rglob("*"))
    )


def dataset_info(name: str, image_size: int | None = None, channels: int | None = None) -> dict:
    """Metadata of an image dataset: dict(image_size, channels, class_names, num_classes).

    `image_size` / `channels` override the native values as `load_image_dataset` would. A folder's classes are its
    subfolders holding images (sorted names); a flat folder has none (num_classes 0, labels -1).
    """
    _check_size(image_size, channels)
    path = _folder_path(name)
    if path is None:
        native = _BUILTIN[name]
        class_names = list(native["class_names"])
        size, chans = native["image_size"], native["channels"]
    else:
        if not path.is_dir():
            raise DataUnavailableError(f"image folder {str(path)!r} (dataset {name!r}) does not exist or is no folder")
        class_names = _class_dirs(path)
        size, chans = _FOLDER_DEFAULT_SIZE, _FOLDER_DEFAULT_CHANNELS
    return {
        "image_size": image_size or size,
        "channels": channels or chans,
        "class_names": class_names,
        "num_classes": len(class_names),
    }


# ---------------------------------------------------------------------------------------------- image transforms


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]: x = 2 * (pixel / 255) - 1."""
    return 2 * (pixels.to(torch.float32) / 255) - 1


def _adapt_pixels(pixels: torch.Tensor, image_size: int, channels: int) -> torch.Tensor:
    """Resize (shorter side, antialiased) + centre-crop uint8 [..., C, H, W] to image_size and convert grey <-> RGB.

    Grey from RGB is the ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B, rounded (as PIL's "L").
    """
    if pixels.shape[-2:] != (image_size, image_size):
        pixels = TF.center_crop(TF.resize(pixels, image_size, antialias=True), image_size)
    if pixels.shape[-3] == 1 and channels == 3:
        pixels = pixels.expand(*pixels.shape[:-3], 3, *pixels.shape[-2:])
    elif pixels.shape[-3] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        pixels = (pixels.to(torch.float32) * weights).sum(-3, keepdim=True).round().to(torch.uint8)
    return pixels


def _builtin_transform(image: Image.Image, image_size: int, channels: int) -> torch.Tensor:
    """Per-item transform of the torchvision datasets: PIL -> uint8 CHW -> adapted -> [-1, 1]."""
    return to_model_range(_adapt_pixels(TF.pil_to_tensor(image), image_size, channels))


def _load_image(path: str, mode: str) -> Image.Image:
    """Open an image file and convert it to PIL mode "L" (grey) or "RGB"."""
    with Image.open(path) as img:
        return img.convert(mode)


# ------------------------------------------------------------------------------------------ torchvision datasets


def _install_debian_fashion_mnist(source: Path, raw: Path) -> None:
    """Decompress the Debian .gz files into torchvision's raw folder, skipping files already there."""
    raw.mkdir(parents=True, exist_ok=True)
    for stem in _MNIST_FILES:
        target = raw / stem
        if target.is_file():
            continue
        partial = raw / f"{stem}.partial"
        with gzip.open(source / f"{stem}.gz", "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        partial.replace(target)  # atomic: an interrupted run never leaves a truncated file under the real name


def _torchvision_dataset(name: str, root: Path, train: bool, transform) -> Dataset:
    """Build the torchvision dataset `name` under `root`, offline when possible, else downloading it."""
    try:
        if name == "fashion-mnist":
            source = Path(os.environ.get("FASHION_MNIST_DIR") or DEBIAN_FASHION_MNIST_DIR)
            if all((source / f"{stem}.gz").is_file() for stem in _MNIST_FILES):
                _install_debian_fashion_mnist(source, root / "FashionMNIST" / "raw")
                return torchvision.datasets.FashionMNIST(root, train=train, transform=transform, download=False)
            return torchvision.datasets.FashionMNIST(root, train=train, transform=transform, download=True)
        if name == "mnist":
            return torchvision.datasets.MNIST(root, train=train, transform=transform, download=True)
        return torchvision.datasets.CIFAR10(root, train=train, transform=transform, download=True)
    except Exception as error:  # network, disk and format errors alike: the user needs the same advice
        raise DataUnavailableError(_unavailable_message(name, root, error)) from error


def _unavailable_message(name: str, root: Path, error: Exception) -> str:
    cause = f"{type(error).__name__}: {error}".strip()
    if name == "fashion-mnist":
        return (
            f"Fashion-MNIST is not available ({cause}). Get it one of these ways:\n"
            "  - sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; or set FASHION_MNIST_DIR to a folder "
            "holding the four *-ubyte.gz files)\n"
            f"  - run once with internet access so torchvision downloads it into {root}\n"
            "  - or use your own images: --dataset folder:PATH"
        )
    where = root / "MNIST" / "raw" if name == "mnist" else root / "cifar-10-batches-py"
    return (
        f"{name} is not available ({cause}). It needs internet access once so torchvision can download it into "
        f"{root}, or place the torchvision files at {where}; or use your own images: --dataset folder:PATH"
    )


# ------------------------------------------------------------------------------------------------ image folders


class FlatImageFolder(Dataset):
    """Every image file (png/jpg/jpeg/bmp/webp) directly in a folder, unconditional: labels are -1."""

    def __init__(self, root: Path, loader, transform):
        self.files = sorted(str(f) for f in root.iterdir() if f.is_file() and _is_image(f.name))
        self.loader = loader
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.loader(self.files[index])), -1


class _ClassFolder(torchvision.datasets.ImageFolder):
    """torchvision ImageFolder whose classes are only the visible subfolders holding images."""

    def find_classes(self, directory):
        classes = _class_dirs(Path(directory))
        return classes, {c: i for i, c in enumerate(classes)}


def _folder_dataset(path: Path, info: dict) -> Dataset:
    size, mode = info["image_size"], "L" if info["channels"] == 1 else "RGB"
    transform = transforms.Compose([
        transforms.Resize(size),
        transforms.CenterCrop(size),
        transforms.PILToTensor(),
        to_model_range,
    ])
    loader = functools.partial(_load_image, mode=mode)
    if info["class_names"]:
        return _ClassFolder(str(path), transform=transform, loader=loader, is_valid_file=_is_image)
    dataset = FlatImageFolder(path, loader, transform)
    if not len(dataset):
        raise DataUnavailableError(
            f"image folder {str(path)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}), directly or in subfolders"
        )
    return dataset


# ------------------------------------------------------------------------------------------------- public loaders


def load_image_dataset(
    name: str,
    train: bool = True,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> Dataset:
    """Dataset of (x, y): x float32 CHW in [-1, 1], y an int label (-1 = no class); `.info` = dataset_info(...).

    `name` is one of IMAGE_DATASETS or "folder:PATH" (class subfolders -> ImageFolder, else a flat folder of
    unlabelled images, resized + centre-cropped to image_size, default 32, grey if channels == 1 else RGB, default
    RGB). `train` picks the split of the built-in datasets (folders have one). Built-in datasets keep their native
    size and channels unless told otherwise. Raises DataUnavailableError when the data cannot be had.
    """
    info = dataset_info(name, image_size, channels)
    path = _folder_path(name)
    if path is None:
        transform = functools.partial(_builtin_transform, image_size=info["image_size"], channels=info["channels"])
        dataset = _torchvision_dataset(name, _default_root(root), train, transform)
    else:
        dataset = _folder_dataset(path, info)
    dataset.info = info
    return dataset


def load_image_tensors(
    name: str,
    train: bool = True,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The whole dataset in memory: (x float32 [N, C, H, W] in [-1, 1], y int64 [N], info dict).

    Same values as iterating `load_image_dataset(...)`; the torchvision datasets are converted from their in-memory
    uint8 arrays at once, folders are read image by image.
    """
    dataset = load_image_dataset(name, train, root, image_size, channels)
    info = dataset.info
    if isinstance(dataset, (torchvision.datasets.MNIST, torchvision.datasets.CIFAR10)):
        pixels = torch.as_tensor(dataset.data)
        pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)  # (N, C, H, W)
        x = to_model_range(_adapt_pixels(pixels, info["image_size"], info["channels"]))
        y = torch.as_tensor(dataset.targets, dtype=torch.int64)
        return x, y, info
    items = [dataset[i] for i in range(len(dataset))]
    x = torch.stack([item[0] for item in items])
    y = torch.tensor([item[1] for item in items], dtype=torch.int64)
    return x, y, info


# ------------------------------------------------------------------------------------------------------ 2D toys
# Each toy is defined in raw coordinates by a sampler and a Gaussian-mixture approximation; both are standardised
# with the mixture's mean and standard deviation per coordinate (closed form), so the data have mean ~0, std ~1.

_MOON_NOISE = 0.1
_SWISS_NOISE = 0.5
_GAUSS8_STD = 0.1
_BLOB_MEANS = ((-1.0, 0.9), (1.0, 1.1), (0.1, 0.1), (-1.1, -0.9), (1.2, -0.6), (0.2, -1.5))
_BLOB_STDS = (0.25, 0.2, 0.3, 0.2, 0.15, 0.25)
_CHECKER_GRID = 10  # Gaussians per side of each checkerboard square in the mixture


def _uniform(k: int) -> torch.Tensor:
    """Equal mixture weights 1/k, float64."""
    return torch.full((k,), 1 / k, dtype=torch.float64)


def _moons_raw(n: int, g) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn make_moons: upper (cos a, sin a) and lower (1 - cos a, 1/2 - sin a), a ~ U[0, pi], plus noise."""
    y = torch.randint(0, 2, (n,), generator=g)
    a = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([a.cos(), a.sin()], dim=1)
    lower = torch.stack([1 - a.cos(), 0.5 - a.sin()], dim=1)
    x = torch.where(y[:, None] == 0, upper, lower) + _MOON_NOISE * torch.randn(n, 2, generator=g)
    return x, y


def _moons_mixture(k: int = 64):
    a = math.pi * (torch.arange(k, dtype=torch.float64) + 0.5) / k  # midpoints along each moon
    upper = torch.stack([a.cos(), a.sin()], dim=1)
    lower = torch.stack([1 - a.cos(), 0.5 - a.sin()], dim=1)
    means = torch.cat([upper, lower])
    return means, torch.full((2 * k,), _MOON_NOISE, dtype=torch.float64), _uniform(2 * k)


def _swiss_curve(u: torch.Tensor) -> torch.Tensor:
    """sklearn make_swiss_roll seen from above: t (cos t, sin t) with t = 1.5 pi (1 + 2u)."""
    t = 1.5 * math.pi * (1 + 2 * u)
    return torch.stack([t * t.cos(), t * t.sin()], dim=1)


def _swiss_raw(n: int, g):
    x = _swiss_curve(torch.rand(n, generator=g)) + _SWISS_NOISE * torch.randn(n, 2, generator=g)
    return x, torch.full((n,), -1)


def _swiss_mixture(k: int = 256):
    means = _swiss_curve((torch.arange(k, dtype=torch.float64) + 0.5) / k)
    return means, torch.full((k,), _SWISS_NOISE, dtype=torch.float64), _uniform(k)


def _gauss8_mixture():
    a = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    means = torch.stack([a.cos(), a.sin()], dim=1)  # unit circle
    return means, torch.full((8,), _GAUSS8_STD, dtype=torch.float64), _uniform(8)


def _blobs_mixture():
    means = torch.tensor(_BLOB_MEANS, dtype=torch.float64)
    return means, torch.tensor(_BLOB_STDS, dtype=torch.float64), _uniform(len(_BLOB_MEANS))


def _sample_mixture(mixture, n: int, g):
    """Draw n points from a mixture (means [K, 2], stds [K], weights [K]); the label is the component index."""
    means, stds, weights = (t.to(torch.float32) for t in mixture)
    k = torch.multinomial(weights, n, replacement=True, generator=g)
    return means[k] + stds[k, None] * torch.randn(n, 2, generator=g), k


def _checker_raw(n: int, g):
    """FFJORD's checkerboard: 8 unit squares of a 4 x 4 board on [-2, 2]^2, uniform inside."""
    x1 = 4 * torch.rand(n, generator=g) - 2
    x2 = torch.rand(n, generator=g) - 2 * torch.randint(0, 2, (n,), generator=g) + torch.floor(x1) % 2
    return torch.stack([x1, x2], dim=1), torch.full((n,), -1)


def _checker_mixture():
    """Each square as a grid of m x m Gaussians of std h/2 (h = 1/m): flat to ~1% inside, edges blurred by h/2."""
    m = _CHECKER_GRID
    corners = [(c, r + c % 2) for c in range(-2, 2) for r in (0, -2)]  # lower-left corners, as in _checker_raw
    offsets = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    grid = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).reshape(-1, 2)
    means = torch.cat([grid + torch.tensor(c, dtype=torch.float64) for c in corners])
    k = means.shape[0]
    return means, torch.full((k,), 0.5 / m, dtype=torch.float64), _uniform(k)


def _gauss8_raw(n: int, g):
    return _sample_mixture(_gauss8_mixture(), n, g)[0], torch.full((n,), -1)


def _blobs_raw(n: int, g):
    return _sample_mixture(_blobs_mixture(), n, g)  # the label is the blob


# name -> (raw sampler (n, generator) -> (x, y), raw mixture () -> (means, stds [K], weights), class names)
_TOYS = {
    "two-moons": (_moons_raw, _moons_mixture, ["upper moon", "lower moon"]),
    "swiss-roll": (_swiss_raw, _swiss_mixture, []),
    "8-gaussians": (_gauss8_raw, _gauss8_mixture, []),
    "checkerboard": (_checker_raw, _checker_mixture, []),
    "blobs": (_blobs_raw, _blobs_mixture, [f"blob {i}" for i in range(len(_BLOB_MEANS))]),
}


def _toy(name: str):
    if name not in _TOYS:
        raise ValueError(f"unknown toy dataset {name!r}; allowed: {', '.join(TOY_DATASETS)}")
    return _TOYS[name]


@functools.lru_cache(maxsize=None)
def _standardisation(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per coordinate of the toy's raw mixture: sum w mu, sqrt(sum w (sigma^2 + mu^2) - mean^2)."""
    means, stds, weights = _toy(name)[1]()
    mean = weights @ means
    var = weights @ (stds[:, None] ** 2 + means**2) - mean**2
    return mean, var.sqrt()


TOY_CLIP = 3.0  # every toy lies within about 2.3 of 0: samplers may clip x0_hat to [-TOY_CLIP, TOY_CLIP]


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")


def toy_info(name: str) -> dict:
    """dict(num_classes, class_names) of a toy; unlabelled toys have 0 classes and labels -1."""
    class_names = list(_toy(name)[2])
    return {"num_classes": len(class_names), "class_names": class_names}


def sample_toy(name: str, n: int, generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of a toy: (x float32 [n, 2], mean ~0 and std ~1 per coordinate; y int64 [n]).

    Labels: two-moons 0 (upper) / 1 (lower), blobs 0..5 (its cluster), the others -1 (no class). Deterministic given
    a torch.Generator or an int seed (CPU generator).
    """
    sampler = _toy(name)[0]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    x, y = sampler(n, _as_generator(generator))
    mean, std = _standardisation(name)
    return ((x - mean) / std).to(torch.float32), y.to(torch.int64)


def sample_toy_class(name: str, n: int, label: int | None, generator: torch.Generator | int | None = None
                     ) -> torch.Tensor:
    """n points of a toy (float32 [n, 2], `sample_toy` coordinates) of class `label` only, or of all its classes
    for None: draws of 2n points are made until n of that class have come, and the first n kept."""
    gen = _as_generator(generator)
    if label is None:
        return sample_toy(name, n, generator=gen)[0]
    classes = toy_info(name)["num_classes"]
    if not classes:
        raise ValueError(f"{name} has no classes, got label {label!r}")
    label = checks.whole("label", label, 0, classes - 1, f" (the classes of {name})")
    parts, have = [], 0
    while have < n:
        x, y = sample_toy(name, 2 * n, generator=gen)
        parts.append(x[y == label])
        have += len(parts[-1])
    return torch.cat(parts)[:n] if parts else torch.zeros(0, 2)


def toy_mixture(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian-mixture approximation of a toy in `sample_toy` coordinates: (means [K, 2], stds [K, 2], weights [K]).

    float64; weights sum to 1; component j is N(means[j], diag(stds[j]^2)). Exact for 8-gaussians and blobs, a fine
    approximation of the others (points along the curves with the curve noise; small Gaussians tiling the
    checkerboard's squares). For contours of q(x_t) only, where x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps
    makes component j N(sqrt(alpha_bar) mean_j, alpha_bar std_j^2 + 1 - alpha_bar).
    """
    means, stds, weights = _toy(name)[1]()
    mean, std = _standardisation(name)
    return (means - mean) / std, stds[:, None] / std, weights.to(torch.float64)
