"""YouTube-VOS (2018 / 2019) training clips.

Layout (``root``): ``<split>/JPEGImages/<video>/<frame>.jpg``,
``<split>/Annotations/<video>/<frame>.png`` (palette PNGs) and
``<split>/meta.json``: ``{"videos": {<video>: {"objects": {<id>: {"category": ...,
"frames": [<frame>, ...]}}}}}``. The meta file lists the videos and, per
object, the frames it is in. Objects may first appear after the first frame:
a clip always starts at a frame that meta.json says holds an object (and
whose mask confirms it).
"""
from __future__ import annotations

import os
from typing import Sequence

from ..io import IMAGE_EXTENSIONS, InputError, read_meta, require_dir
from .clips import ClipConfig, ClipDataset, clip_config
from .files import FileVideo, ListedVideos, list_stems


def youtube_vos_video(split_dir: str, vid: str, objects: dict[str, list[str]]) -> FileVideo:
    """One training video: frames that have both an image and an annotation, and the clip starts from meta."""
    img_dir = require_dir(os.path.join(split_dir, "JPEGImages", vid), f"YouTube-VOS frames of {vid!r}")
    ann_dir = require_dir(os.path.join(split_dir, "Annotations", vid), f"YouTube-VOS annotations of {vid!r}")
    frames = list_stems(img_dir, IMAGE_EXTENSIONS)
    masks = list_stems(ann_dir, (".png",))
    stems = [s for s in frames if s in masks]
    if not stems:
        raise InputError(f"YouTube-VOS video {vid!r}: no frame has both an image in {img_dir} "
                         f"and an annotation in {ann_dir}")
    index = {s: j for j, s in enumerate(stems)}
    start = sorted({index[s] for fl in objects.values() for s in fl if s in index})
    return FileVideo(vid, [frames[s] for s in stems], [masks[s] for s in stems], start=start)


class YouTubeVOSClips(ListedVideos, ClipDataset):
    """Training clips from YouTube-VOS 2018 / 2019 (published stage 2 data).

    Args:
        root: the dataset folder holding ``<split>/`` (or the split folder itself,
            recognised by its meta.json).
        split: "train" (the only split with every annotation).
        cfg: clip sampling; default ``clip_config("youtube_vos")`` (published).
        seed, repeat: see :class:`ClipDataset`.
        videos: a subset of the meta file's videos.
    """

    def __init__(self, root: str, split: str = "train", cfg: ClipConfig | None = None, seed: int = 0,
                 repeat: int = 1, videos: Sequence[str] | None = None):
        super().__init__(cfg or clip_config("youtube_vos"), seed, repeat)
        require_dir(root, "YouTube-VOS root")
        split_dir = root if os.path.isfile(os.path.join(root, "meta.json")) else os.path.join(root, split)
        require_dir(split_dir, f"YouTube-VOS {split}")
        meta = read_meta(os.path.join(split_dir, "meta.json"))
        names = list(meta) if videos is None else list(videos)
        unknown = [v for v in names if v not in meta]
        if unknown:
            raise InputError(f"video(s) not in {os.path.join(split_dir, 'meta.json')}: {unknown[:5]}")
        self.root = split_dir
        self.videos = [youtube_vos_video(split_dir, v, meta[v]) for v in names]
        if not self.videos:
            raise InputError(f"no videos listed in {os.path.join(split_dir, 'meta.json')}")
