"""Extract the app's gallery: the first Fashion-MNIST test image of each class, as 28x28 greyscale PNGs.

    python scripts/extract_gallery.py [--src /usr/share/datasets/fashion-mnist] [--out explorer/app/assets/gallery]

Reads the IDX files directly (gzipped or not), so it needs neither torchvision nor a download. Files are named
`<label>_<class name>.png` (spaces as underscores) so that sorting them gives the class order; the app reads
the class name back from the file name.
"""
from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dims as big-endian uint32, then uint8 data)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(src: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (src / name).exists():
            return src / name
    raise FileNotFoundError(f"neither {stem} nor {stem}.gz in {src}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "explorer/app/assets/gallery")
    args = parser.parse_args()
    images = read_idx(find(args.src, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.src, "t10k-labels-idx1-ubyte"))
    args.out.mkdir(parents=True, exist_ok=True)
    for label, name in enumerate(CLASSES):
        index = int(np.flatnonzero(labels == label)[0])
        slug = name.replace("/", "-").replace(" ", "_")
        Image.fromarray(images[index]).save(args.out / f"{label}_{slug}.png", optimize=True)


if __name__ == "__main__":
    main()
