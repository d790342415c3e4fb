"""DAVIS-2017 training clips.

Layout (``root``):
``JPEGImages/480p/<seq>/00000.jpg ...``, ``Annotations/480p/<seq>/00000.png ...``
(palette PNGs, read as indices; 255 = void becomes background) and
``ImageSets/2017/{train,val}.txt`` (one sequence name per line).
"""
from __future__ import annotations

import os
from typing import Sequence

from ..io import IMAGE_EXTENSIONS, InputError, davis_list, require_dir
from .clips import ClipConfig, ClipDataset, clip_config
from .files import FileVideo, ListedVideos, list_stems


def davis_sequence(root: str, seq: str, resolution: str = "480p") -> FileVideo:
    """The frames and masks of one DAVIS sequence; every frame must have its mask."""
    img_dir = require_dir(os.path.join(root, "JPEGImages", resolution, seq), f"DAVIS frames of {seq!r}")
    ann_dir = require_dir(os.path.join(root, "Annotations", resolution, seq), f"DAVIS annotations of {seq!r}")
    frames = list_stems(img_dir, IMAGE_EXTENSIONS)
    masks = list_stems(ann_dir, (".png",))
    if not frames:
        raise InputError(f"no frames (.jpg) in {img_dir}")
    missing = [s for s in frames if s not in masks]
    if missing:
        raise InputError(f"DAVIS sequence {seq!r}: {len(missing)} frame(s) without an annotation in {ann_dir}, "
                         f"first: {missing[0]}.png")
    stems = list(frames)
    return FileVideo(seq, [frames[s] for s in stems], [masks[s] for s in stems])


class DAVISClips(ListedVideos, ClipDataset):
    """Training clips from DAVIS-2017 (published stage 1 / fine-tuning data).

    Args:
        root: the DAVIS folder (holding JPEGImages/, Annotations/, ImageSets/).
        split: an ImageSets/<year>/<split>.txt list ("train", "val").
        cfg: clip sampling; default ``clip_config("davis")`` (published).
        seed, repeat: see :class:`ClipDataset`.
        resolution: "480p" or "Full-Resolution".
        sequences: explicit sequence names instead of the split list.
    """

    def __init__(self, root: str, split: str = "train", cfg: ClipConfig | None = None, seed: int = 0,
                 repeat: int = 1, resolution: str = "480p", year: str = "2017",
                 sequences: Sequence[str] | None = None):
        super().__init__(cfg or clip_config("davis"), seed, repeat)
        require_dir(root, "DAVIS root")
        if sequences is None:
            sequences = davis_list(root, split, year)
        self.root = root
        self.videos = [davis_sequence(root, s, resolution) for s in sequences]
        if not self.videos:
            raise InputError(f"no DAVIS sequences given under {root}")
