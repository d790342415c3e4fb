"""One entry point from a config section to a training dataset."""
from __future__ import annotations

from ..config import DataConfig, build_section
from .clips import ClipDataset, clip_config
from .davis import DAVISClips
from .static import StaticImageClips
from .synthetic import SyntheticClips
from .youtube_vos import YouTubeVOSClips

DATASETS = ("synthetic", "davis", "youtube_vos", "static")
_SYNTHETIC_KEYS = ("num_videos", "num_frames", "size", "min_objects", "max_objects", "late_object_prob",
                   "cache_size")


def build_dataset(cfg: DataConfig | dict, seed: int = 0) -> ClipDataset:
    """The training dataset a :class:`DataConfig` (or a dict of its fields) describes."""
    if isinstance(cfg, dict):
        cfg = build_section(DataConfig, cfg, "data config")
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
