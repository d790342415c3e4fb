"""Static images as training clips (published stage 0, pre-training).

Layout (each ``root``): ``<root>/JPEGImages/<stem>.jpg`` (any common image
format) and ``<root>/Annotations/<stem>.png``, the instance label map of the
image with the same stem (palette or grayscale PNG; a 0/255 binary mask, as
saliency datasets ship them, counts as one object). A clip is the image
repeated clip_len times; every frame after the first is colour-jittered and
warped by its own random affine, so the network sees motion without a video.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..io import IMAGE_EXTENSIONS, InputError, read_image, read_mask, require_dir, void_to_background
from .clips import ClipConfig, ClipDataset, clip_config
from .files import ListedVideos, list_stems


class StaticImage:
    """One image with its label map, seen as a one-frame video."""
    num_frames = 1

    def __init__(self, name: str, image_path: str, mask_path: str):
        self.name, self.image_path, self.mask_path = name, image_path, mask_path

    def frame(self, j: int) -> np.ndarray:
        return read_image(self.image_path)

    def mask(self, j: int) -> np.ndarray:
        return void_to_background(read_mask(self.mask_path), binary_255_is_object=True)

    def start_frames(self):
        return None


class StaticImageClips(ListedVideos, ClipDataset):
    """Training clips made from single images by random affine warps.

    Args:
        roots: one folder or several, each with ``image_dir`` and ``mask_dir``.
        cfg: clip sampling; default ``clip_config("static")`` (published).
        seed, repeat: see :class:`ClipDataset`.
        image_dir, mask_dir: sub-folder names of the images and label PNGs.
        allow_unlabelled: skip images without a label PNG instead of refusing them.
    """

    def __init__(self, roots: str | Sequence[str], cfg: ClipConfig | None = None, seed: int = 0,
                 repeat: int = 1, image_dir: str = "JPEGImages", mask_dir: str = "Annotations",
                 allow_unlabelled: bool = False):
        super().__init__(cfg or clip_config("static"), seed, repeat)
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.videos: list[StaticImage] = []
        for root in roots:
            root = os.fspath(root)
            img_dir = require_dir(os.path.join(root, image_dir), "static images")
            ann_dir = require_dir(os.path.join(root, mask_dir), "static image labels")
            images = list_stems(img_dir, IMAGE_EXTENSIONS)
            masks = list_stems(ann_dir, (".png",))
            missing = [s for s in images if s not in masks]
            if missing and not allow_unlabelled:
                raise InputError(f"{len(missing)} image(s) in {img_dir} have no label PNG of the same stem in "
                                 f"{ann_dir}, first: {os.path.basename(images[missing[0]])}")
            tag = os.path.basename(os.path.normpath(root))
            self.videos += [StaticImage(f"{tag}/{s}", images[s], masks[s]) for s in images if s in masks]
        if not self.videos:
            raise InputError(f"no labelled images found under {list(map(os.fspath, roots))}")
