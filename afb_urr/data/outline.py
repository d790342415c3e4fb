"""Dense outline frames: procedural frames and, per pixel, the outline kind of the object there.

Outline pretraining (:mod:`afb_urr.training.outline`) teaches a trunk what the
grammar's shape words ("the ellipse", "the smallest polygon") turn on before it
learns sentences: each pixel is background (0) or the outline kind of the object
drawn there (1 + its index in :data:`OUTLINE_KINDS`).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import synthetic as syn

OUTLINE_KINDS = syn.SHAPES  # class k + 1; 0 = background


def outline_classes(labels: np.ndarray, objects) -> np.ndarray:
    """Label map H x W (object k + 1 = ``objects[k]``, as ``render_scene`` draws them) -> class map H x W."""
    lut = np.zeros(256, np.uint8)
    for k, obj in enumerate(objects):
        lut[k + 1] = 1 + OUTLINE_KINDS.index(obj.kind)
    return lut[labels]


def outline_frame(video: syn.SyntheticVideo, t: int, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame ``t`` of ``video`` squashed to ``size`` (h, w): (h x w x 3 uint8 frame, PIL bilinear as
    :func:`afb_urr.referring.preprocess`; h x w uint8 classes; h x w uint8 object labels, nearest)."""
    h, w = (int(v) for v in size)
    labels = np.asarray(Image.fromarray(video.masks[t]).resize((w, h), Image.NEAREST))
    frame = np.asarray(Image.fromarray(video.frames[t]).resize((w, h), Image.BILINEAR))
    return frame, outline_classes(labels, video.objects), labels


def outline_split(split: str, num_videos: int, num_frames: int, video_size, min_objects: int, max_objects: int,
                  cache_size: int = 64) -> syn.SyntheticVideos:
    """The procedural videos outline pretraining draws frames from."""
    return syn.SyntheticVideos(split, num_videos, num_frames, video_size, min_objects, max_objects,
                               cache_size=cache_size)
