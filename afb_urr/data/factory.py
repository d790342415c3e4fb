"""One entry point from a config section to a training dataset."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .clips import ClipDataset, clip_config
from .davis import DAVISClips
from .static import StaticImageClips
from .synthetic import SyntheticClips
from .youtube_vos import YouTubeVOSClips

DATASETS = ("synthetic", "davis", "youtube_vos", "static")
_SYNTHETIC_KEYS = ("num_videos", "num_frames", "size", "min_objects", "max_objects", "late_object_prob",
                   "cache_size")


@dataclass
class DataConfig:
    """A ``data:`` config section.

    dataset: "synthetic", "davis", "youtube_vos" or "static".
    root: dataset folder (a list of folders for "static"); unused for "synthetic".
    split: "train" / "val" (DAVIS ImageSets list, YouTube-VOS split folder,
        synthetic split).
    repeat: visits of each video per epoch.
    clip: :class:`ClipConfig` fields overriding the dataset's published preset
        (e.g. clip_len, crop_size, ordered, max_gap, max_objects).
    synthetic: :class:`SyntheticClips` arguments (num_videos, num_frames, size,
        min_objects, max_objects, late_object_prob, cache_size).
    """
    dataset: str = "synthetic"
    root: Any = None
    split: str = "train"
    repeat: int = 1
    clip: dict = field(default_factory=dict)
    synthetic: dict = field(default_factory=dict)


def build_dataset(cfg: DataConfig | dict, seed: int = 0) -> ClipDataset:
    """The training dataset a :class:`DataConfig` (or a dict of its fields) describes."""
    if isinstance(cfg, dict):
        known = {f.name for f in dataclasses.fields(DataConfig)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"data config: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        cfg = DataConfig(**cfg)
    if cfg.dataset not in DATASETS:
        raise ValueError(f"data config: unknown dataset {cfg.dataset!r}; expected one of {list(DATASETS)}")
    if cfg.dataset != "synthetic" and not cfg.root:
        raise ValueError(f"data config: dataset {cfg.dataset!r} needs a root folder")
    if cfg.dataset == "synthetic":
        unknown = sorted(set(cfg.synthetic) - set(_SYNTHETIC_KEYS))
        if unknown:
            raise ValueError(f"data config: unknown synthetic key(s) {unknown}; valid keys: {list(_SYNTHETIC_KEYS)}")
        size = tuple(cfg.synthetic.get("size", (240, 432)))
        clip = clip_config("synthetic", **{"crop_size": size, **cfg.clip})
        return SyntheticClips(split=cfg.split, cfg=clip, seed=seed, repeat=cfg.repeat,
                              **{**cfg.synthetic, "size": size})
    clip = clip_config(cfg.dataset, **cfg.clip)
    if cfg.dataset == "davis":
        return DAVISClips(cfg.root, cfg.split, clip, seed, cfg.repeat)
    if cfg.dataset == "youtube_vos":
        return YouTubeVOSClips(cfg.root, cfg.split, clip, seed, cfg.repeat)
    return StaticImageClips(cfg.root, clip, seed, cfg.repeat)
