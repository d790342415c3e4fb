"""Reading index PNGs (palette or 8-bit grey) as label maps, fast.

``np.array(Image.open(path))`` spends as long converting the decoded image
to an array as it does inflating it. Most mask PNGs (DAVIS ground truth,
Pillow-written palette PNGs) are 8-bit, non-interlaced and unfiltered, so
their pixel rows are the inflated IDAT stream minus one filter byte per row:
those are read straight from the stream, everything else goes through Pillow.
Both paths give the same array.
"""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
from PIL import Image

from .errors import MaskFormatError, MissingInputError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow modes whose array holds label indices.
INDEX_MODES = ("P", "L", "I", "I;16", "I;16B", "I;16L", "1")
# Modes whose first channel is the label index (the second is alpha).
ALPHA_MODES = ("LA", "PA")


def _read_fast(data: bytes) -> np.ndarray | None:
    """Label map of an 8-bit palette / grey PNG without row filters, else None."""
    if not data.startswith(_SIGNATURE):
        return None
    pos = len(_SIGNATURE)
    header = None
    chunks = []
    n = len(data)
    while pos + 8 <= n:
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body_end = pos + 8 + length
        if body_end + 4 > n:
            return None
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:body_end])
        elif kind == b"IDAT":
            chunks.append(data[pos + 8:body_end])
        elif kind == b"IEND":
            break
        pos = body_end + 4
    if header is None or not chunks:
        return None
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (0, 3) or interlace != 0 or width == 0 or height == 0:
        return None
    row = width + 1
    try:
        raw = zlib.decompress(b"".join(chunks), 15, row * height)
    except zlib.error:
        return None
    if len(raw) != row * height:
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, row)
    if rows[:, 0].any():  # some row uses a filter: let Pillow undo it
        return None
    return np.ascontiguousarray(rows[:, 1:])


def _read_pillow(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode not in INDEX_MODES + ALPHA_MODES:
                kind = "a colour" if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV") else "not an index"
                raise MaskFormatError(
                    f"{path}: image mode {mode} is {kind} image; a label map must be a palette "
                    f"(indexed) PNG or a grayscale PNG whose values are object ids "
                    f"(0 = background, 1..N = objects)")
            arr = np.array(im)
    except MaskFormatError:
        raise
    except Exception as err:  # truncated or not an image: name the file
        raise MaskFormatError(f"cannot read mask {path}: {err}") from err
    if mode in ALPHA_MODES:
        arr = arr[..., 0]
    return arr.astype(np.uint8) if mode == "1" else arr


def read_index_png(path: str) -> np.ndarray:
    """Label map (H, W) of an index PNG (palette or grey, 8 or 16 bit), values as stored.

    Raises :class:`MissingInputError` (a FileNotFoundError) naming a missing
    file and :class:`MaskFormatError` naming a file that is not a
    single-channel index image (e.g. an RGB PNG); both are InputErrors.
    """
    if os.path.isdir(path):
        raise MaskFormatError(f"mask is a folder, expected a PNG label map: {path}")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise MissingInputError(f"mask not found: {path}") from None
    fast = _read_fast(data)
    return fast if fast is not None else _read_pillow(path)
