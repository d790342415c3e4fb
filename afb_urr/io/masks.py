"""Label-map PNGs: read palette/grayscale masks, write DAVIS-palette masks.

A label map is an H x W uint8 array: 0 = background, 1..N = objects (DAVIS
annotations also use 255 for "void"). Palette PNGs store these values as
palette indices; the colours are only for display.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .errors import MaskFormatError
from .pngio import read_index_png

_PALETTE: np.ndarray | None = None


def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map: 256 x 3 uint8 RGB.

    Entry i spreads the bits of i over the three channels, most significant
    bit first: bit 0 of i goes to red bit 7, bit 1 to green bit 7, bit 2 to blue
    bit 7, bit 3 to red bit 6, and so on. Index 1 is (128, 0, 0), index 2 is
    (0, 128, 0), index 255 (void) is (224, 224, 192).
    """
    global _PALETTE
    if _PALETTE is None:
        pal = np.zeros((256, 3), dtype=np.uint8)
        for i in range(256):
            c, r, g, b = i, 0, 0, 0
            for j in range(8):
                r |= ((c >> 0) & 1) << (7 - j)
                g |= ((c >> 1) & 1) << (7 - j)
                b |= ((c >> 2) & 1) << (7 - j)
                c >>= 3
            pal[i] = (r, g, b)
        _PALETTE = pal
    return _PALETTE.copy()


def read_mask(path: str) -> np.ndarray:
    """Read a label map PNG -> H x W uint8 labels (0 = background, 1..N = objects).

    Accepted: palette (indexed) images -> their indices; grayscale images
    (8-bit, 16-bit with values <= 255, or 1-bit) -> their values. Colour (RGB)
    images are refused: their colours would have to be guessed back into labels.
    Errors are :class:`InputError` s naming the file (see :func:`read_index_png`).
    """
    arr = read_index_png(path)
    if arr.ndim != 2:
        raise MaskFormatError(f"mask {path} has shape {arr.shape}; expected an H x W label map")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise MaskFormatError(
                f"mask {path} has labels in [{arr.min()}, {arr.max()}]; labels must be in 0..255")
        arr = arr.astype(np.uint8)
    return arr


def write_mask(path: str, labels) -> None:
    """Write an H x W integer label map as a palette PNG with the DAVIS palette.

    Parent folders are created. Labels must be integers in 0..255.
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"write_mask({path}): labels must be H x W, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "biu":
            raise ValueError(f"write_mask({path}): labels must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"write_mask({path}): labels in [{arr.min()}, {arr.max()}] do not fit a palette PNG (0..255)")
        arr = arr.astype(np.uint8)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(arr))  # mode 'L' ...
    img.putpalette(davis_palette().reshape(-1).tolist())  # ... becomes 'P' with the palette
    img.save(path, format="PNG")


VOID = 255


def void_to_background(labels: np.ndarray, binary_255_is_object: bool = False) -> np.ndarray:
    """Map the DAVIS "void" label 255 to background (0), as the DAVIS evaluator does.

    With ``binary_255_is_object``, a mask whose only non-zero label is 255 (a 0/255
    binary mask, as many tools save them) becomes a one-object mask with label 1
    instead of an empty one. Returns a new H x W uint8 array when anything changed.
    """
    labels = np.asarray(labels)
    if not (labels == VOID).any():
        return labels
    present = np.unique(labels)
    if binary_255_is_object and set(present.tolist()) <= {0, VOID}:
        return (labels == VOID).astype(np.uint8)
    out = labels.copy()
    out[out == VOID] = 0
    return out
