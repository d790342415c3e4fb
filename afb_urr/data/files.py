"""Videos stored as image files: listing, lazy frame/mask reading, datasets listing them.

Frames decode with ``afb_urr.io.read_image`` and label maps with
``afb_urr.io.read_mask`` (palette PNGs read as indices), so a corrupt file
raises an ``InputError`` (a ValueError) that names it.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..io import InputError, natural_key, read_image, read_mask


def list_stems(folder: str, extensions: Sequence[str]) -> dict[str, str]:
    """Files of ``folder`` with one of ``extensions`` (case-insensitive): stem -> path, naturally sorted."""
    found = {}
    for name in os.listdir(folder):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions and not name.startswith("."):
            if stem in found:
                raise InputError(f"two files with the stem {stem!r} in {folder}: "
                                 f"{os.path.basename(found[stem])} and {name}")
            found[stem] = os.path.join(folder, name)
    return {s: found[s] for s in sorted(found, key=natural_key)}


class FileVideo:
    """A video as parallel lists of frame and mask files, read lazily.

    ``start`` lists the frames known (e.g. from YouTube-VOS meta.json) to hold
    an object; None means unknown.
    """

    def __init__(self, name: str, frame_paths: Sequence[str], mask_paths: Sequence[str],
                 start: Sequence[int] | None = None):
        if len(frame_paths) != len(mask_paths) or not frame_paths:
            raise ValueError(f"video {name!r}: need as many frames as masks (>= 1), "
                             f"got {len(frame_paths)} and {len(mask_paths)}")
        self.name = name
        self.frame_paths = list(frame_paths)
        self.mask_paths = list(mask_paths)
        self.num_frames = len(self.frame_paths)
        self._start = None if start is None else list(start)

    def frame(self, j: int) -> np.ndarray:
        return read_image(self.frame_paths[j])

    def mask(self, j: int) -> np.ndarray:
        return read_mask(self.mask_paths[j])

    def start_frames(self):
        return self._start


class ListedVideos:
    """``num_videos`` / ``video`` of a clip dataset that holds its videos in ``self.videos``."""
    videos: list

    def num_videos(self) -> int:
        return len(self.videos)

    def video(self, v: int):
        return self.videos[v]
