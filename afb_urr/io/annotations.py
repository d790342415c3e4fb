"""Annotations given as files: a folder of label PNGs named after frames, checked up front.

A user annotates any subset of frames: ``<folder>/<frame name>.png``, where a
frame name is a frame file's stem, or for a video file its index (``00012.png``
or ``12.png``). :func:`read_mask_folder` matches every PNG to a frame and reads
each once before any frame is segmented, so a bad mask fails at once with a
one-line error naming the file, not after minutes of work. A mask a pixel or
two off the frame size (a common off-by-one of annotation tools) is an error
unless resizing is allowed (nearest-neighbour); a mask of another size is
always an error. The void label 255 becomes background.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .errors import InputError
from .frames import IMAGE_EXTENSIONS, natural_key
from .masks import read_mask, void_to_background

SIZE_SLACK = 2  # pixels per side a mask may be off and still be resized on request


def _size(hw) -> str:
    return f"{hw[0]}x{hw[1]}"


def load_mask(path: str, frame_size: tuple[int, int], resize: bool = False,
              binary_255_is_object: bool = False) -> np.ndarray:
    """Read the label PNG ``path`` at ``frame_size`` (H, W) -> H x W uint8, void mapped to 0.

    A mask within ``SIZE_SLACK`` pixels of the frame size is resized
    (nearest-neighbour) when ``resize`` is set, otherwise refused; any other size
    is always refused. ``binary_255_is_object`` reads a 0/255 mask as object 1.
    """
    labels = void_to_background(read_mask(path), binary_255_is_object)
    h, w = int(frame_size[0]), int(frame_size[1])
    if labels.shape == (h, w):
        return labels
    near = abs(labels.shape[0] - h) <= SIZE_SLACK and abs(labels.shape[1] - w) <= SIZE_SLACK
    if not near:
        raise InputError(f"mask {path} is {_size(labels.shape)} but the frames are {h}x{w}; "
                         f"a mask must have the frames' size")
    if not resize:
        raise InputError(f"mask {path} is {_size(labels.shape)} but the frames are {h}x{w}; "
                         f"fix the mask or allow nearest-neighbour resizing (--resize-masks)")
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def number_index(frame_names: Sequence[str]) -> dict[int, str]:
    """Numeric frame names by their number (names that share a number are left out)."""
    index: dict[int, str] = {}
    clashes = set()
    for name in frame_names:
        if name.isdigit():
            n = int(name)
            if n in index:
                clashes.add(n)
            index[n] = name
    return {n: name for n, name in index.items() if n not in clashes}


def find_masks(folder: str, frame_names: Sequence[str]) -> dict[str, str]:
    """``{frame name: path}`` for the PNGs of ``folder``, in frame order.

    Errors (one line, naming the file): a PNG that names no frame, two PNGs for
    one frame, a mask saved in another image format, a folder with no PNG.
    Files that are not images, and subfolders, are not masks and are skipped.
    """
    if not os.path.isdir(folder):
        raise InputError(f"mask folder not found: {folder}")
    frame_names = list(frame_names)
    known, by_number = set(frame_names), number_index(frame_names)
    found: dict[str, str] = {}
    for f in sorted(os.listdir(folder), key=natural_key):
        path = os.path.join(folder, f)
        stem, ext = os.path.splitext(f)
        if not os.path.isfile(path) or ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if ext.lower() != ".png":
            raise InputError(f"mask {path} is not a PNG; masks must be lossless PNG label maps")
        # the same name, or for a number the frame numbered alike (12.png for frame 00012)
        name = stem if stem in known else by_number.get(int(stem)) if stem.isdigit() else None
        if name is None:
            shown = f"{frame_names[0]} .. {frame_names[-1]}" if frame_names else "none"
            raise InputError(f"mask {path} names no frame of the video (frames: {shown})")
        if name in found:
            raise InputError(f"masks {found[name]} and {path} are both for frame {name}; give one")
        found[name] = path
    if not found:
        raise InputError(f"no PNG masks in {folder}")
    order = {n: i for i, n in enumerate(frame_names)}
    return dict(sorted(found.items(), key=lambda kv: order[kv[0]]))


@dataclass
class MaskFolder:
    """Checked annotations of one video: where they are and which objects each holds.

    paths: frame name -> PNG path, in frame order; object_ids: frame name ->
    the ids in that mask, ascending; ``read(name)`` -> H x W uint8 at the frame size.
    """
    paths: dict[str, str]
    object_ids: dict[str, tuple[int, ...]]
    frame_size: tuple[int, int]
    resize: bool = False
    binary_255_is_object: bool = False

    def read(self, name: str) -> np.ndarray:
        return load_mask(self.paths[name], self.frame_size, self.resize, self.binary_255_is_object)

    def first_frames(self) -> dict[int, str]:
        """Object id -> the first annotated frame that holds it."""
        first: dict[int, str] = {}
        for name, ids in self.object_ids.items():
            for i in ids:
                first.setdefault(i, name)
        return first


def check_masks(paths: dict[str, str], frame_size: tuple[int, int], resize: bool = False,
                max_objects: int | None = None, binary_255_is_object: bool = False) -> MaskFolder:
    """Read every mask of ``paths`` once: readable, a label map, the frame size, objects.

    A mask with no object, or one that brings the video past ``max_objects``
    objects in all, is an error naming the file. ``binary_255_is_object``: see
    :func:`load_mask` (for a single mask given by the user).
    """
    object_ids: dict[str, tuple[int, ...]] = {}
    seen: set[int] = set()
    for name, path in paths.items():
        ids = tuple(int(i) for i in np.unique(load_mask(path, frame_size, resize, binary_255_is_object))
                    if i)
        if not ids:
            raise InputError(f"mask {path} holds no object (only 0 and the void label 255)")
        seen.update(ids)
        if max_objects is not None and len(seen) > max_objects:
            raise InputError(f"mask {path} brings the video to {len(seen)} objects "
                             f"({', '.join(map(str, sorted(seen)))}); at most {max_objects} fit")
        object_ids[name] = ids
    return MaskFolder(dict(paths), object_ids, (int(frame_size[0]), int(frame_size[1])), resize,
                      binary_255_is_object)


def read_mask_folder(folder: str, frame_names: Sequence[str], frame_size: tuple[int, int],
                     resize: bool = False, max_objects: int | None = None) -> MaskFolder:
    """Match the PNGs of ``folder`` to ``frame_names`` and check each (see :func:`check_masks`)."""
    return check_masks(find_masks(folder, frame_names), frame_size, resize, max_objects)
