"""Uploaded images, opened safely: `load_upload` reads any file a visitor sends as a float image in [-1, 1] or
raises UserInputError with a message meant for them.

Importing this module sets Pillow's bomb limit `MAX_PIXELS` for the process and turns `DecompressionBombWarning`
into an error.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from explorer import checks
from explorer.app.options import UserInputError

MAX_PIXELS = 40_000_000  # larger uploads are refused before decoding; Pillow refuses twice this at open
MIN_SIDE = 8  # smaller images have no spectrum worth showing
MAX_SIDE = 512  # the largest resolution an upload is resized to
MODES = ("grey", "colour")

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Any Pillow mode to L (mode "grey") or RGB (mode "colour"); transparency is flattened onto white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit grey: stretch to 8 bits
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        im = Image.fromarray(np.round((a - lo) / (hi - lo or 1.0) * 255).astype(np.uint8))
    if "A" in im.getbands() or "a" in im.getbands() or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    im = im.convert("RGB")
    return im.convert("L") if mode == "grey" else im


def load_upload(path: str | os.PathLike, size: int, mode: str = "grey") -> torch.Tensor:
    """Open an uploaded file as a (C, size, size) float32 image in [-1, 1], C = 1 (grey) or 3 (colour).

    Any format and mode Pillow reads (CMYK, palette, RGBA, 16-bit, ...) is converted; the first frame of an
    animation is used; EXIF rotation is applied; the largest centred square is cropped and resized to size.
    Raises UserInputError, with a message for the visitor, for a non-image, a damaged file, an image smaller
    than MIN_SIDE or larger than MAX_PIXELS (decompression bombs included).
    """
    checks.choice("colour", mode, MODES)
    size, name = checks.whole("resolution", size, MIN_SIDE, MAX_SIDE, " pixels"), Path(path).name
    limit = f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels; please upload a smaller image."
    try:
        im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserInputError(f"{name} is too large: {limit}") from None
    except Exception as exc:  # Pillow raises many types for files it cannot identify
        raise UserInputError(f"{name} is not an image this app can read ({type(exc).__name__}); "
                             "please upload a PNG, JPEG, WebP, GIF, BMP or TIFF file.") from None
    with im:
        w, h = im.size
        if w * h > MAX_PIXELS:  # Pillow only warns up to 2 * MAX_PIXELS when the warning filter is reset
            raise UserInputError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.1f} megapixels); {limit}")
        if min(w, h) < MIN_SIDE:
            raise UserInputError(f"{name} is only {w}x{h} pixels; it needs at least {MIN_SIDE} pixels on each side.")
        try:
            im.draft("RGB" if mode == "colour" else "L", (size, size))  # JPEG: decode at a reduced scale
            im.load()
        except Exception as exc:  # truncated or corrupt data surfaces only while decoding
            raise UserInputError(f"{name} could not be decoded ({type(exc).__name__}); "
                                 "the file may be damaged.") from None
        try:
            im = _to_mode(ImageOps.exif_transpose(im), mode)
        except ValueError:
            raise UserInputError(f"{name} uses the {im.mode} colour mode, which cannot be converted; "
                                 "please save it as RGB or greyscale.") from None
    w, h = im.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)  # centred square
    im = im.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    a = np.asarray(im, dtype=np.float32)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (H, W) or (H, W, C) -> (C, H, W)
    return torch.from_numpy(a / 127.5 - 1.0)
