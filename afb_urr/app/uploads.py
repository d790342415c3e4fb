"""Request bodies: video uploads streamed to disk under a size limit, mask uploads decoded and checked."""
from __future__ import annotations

import os
import uuid

import numpy as np

from ..io import InputError, read_mask, void_to_background
from .errors import AppError, TooLarge, Unsupported
from .store import MAX_OBJECTS
from .videos import VIDEO_EXTENSIONS

UPLOAD_EXTENSIONS = VIDEO_EXTENSIONS + (".zip",)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_upload_name(filename: str) -> str:
    """The upload's extension (lower case) if it is a video or a zip; else 415."""
    ext = os.path.splitext(filename or "")[1].lower()
    if ext not in UPLOAD_EXTENSIONS:
        raise Unsupported(f"cannot take {filename!r}: upload a video ({', '.join(VIDEO_EXTENSIONS)}) "
                          f"or a .zip of frames")
    return ext


async def receive_file(request, folder: str, ext: str, limit: int) -> str:
    """Stream the request body into a new file under ``folder``; 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared)} bytes; the limit is {limit} bytes")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"upload-{uuid.uuid4().hex}{ext}")
    size = 0
    try:
        with open(path, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the upload exceeds the limit of {limit} bytes")
                f.write(chunk)
        if size == 0:
            raise AppError("the upload is empty")
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise
    return path


def decode_mask(body: bytes, content_type: str, size: tuple[int, int], folder: str) -> np.ndarray:
    """An uploaded label map -> H x W uint8 labels at the video's ``size``.

    ``image/png``: a palette or grayscale label PNG (255 = void = background; a
    0/255 mask is object 1). ``application/octet-stream``: H*W raw uint8 labels,
    row by row. Anything else, a corrupt PNG, another size, or labels above
    254 is a one-line 4xx error.
    """
    h, w = size
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/octet-stream":
        if len(body) != h * w:
            raise AppError(f"raw mask has {len(body)} bytes; frames are {h}x{w} = {h * w} pixels")
        labels = np.frombuffer(body, np.uint8).reshape(h, w).copy()
    elif kind == "image/png":
        if not body.startswith(PNG_SIGNATURE):
            raise AppError("the mask is not a PNG file")
        labels = _read_png(body, folder)
    else:
        raise Unsupported(f"mask content type {kind or 'missing'!r}: send image/png "
                          f"or application/octet-stream")
    if labels.shape != (h, w):
        raise AppError(f"mask is {labels.shape[0]}x{labels.shape[1]} but the frames are {h}x{w}")
    top = int(labels.max()) if labels.size else 0
    if top > MAX_OBJECTS:
        raise AppError(f"mask has label {top}; labels must be 0 (background) .. {MAX_OBJECTS}")
    return labels


def _read_png(body: bytes, folder: str) -> np.ndarray:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"mask-{uuid.uuid4().hex}.png")
    try:
        with open(path, "wb") as f:
            f.write(body)
        return void_to_background(read_mask(path), binary_255_is_object=True)
    except InputError as e:
        raise AppError(str(e).replace(path, "the uploaded mask")) from None
    finally:
        os.remove(path)
