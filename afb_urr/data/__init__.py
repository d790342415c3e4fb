"""Training data: DAVIS-2017, YouTube-VOS, static images and procedural videos as clips.

Every dataset returns the same clip sample (see :mod:`afb_urr.data.clips`):
``{"frames": T x 3 x H x W float [0, 1], "masks": T x K x H x W one-hot
(background first), "num_objects": K - 1, "info": {...}}``.
"""
from .clips import (ArrayVideo, ClipConfig, ClipDataset, NoObjectError, choose_frames, clip_config, collate_clip,
                    sample_clip)
from .davis import DAVISClips, davis_sequence
from .factory import DATASETS, DataConfig, build_dataset
from .files import FileVideo
from .referring_samples import ReferringSamples
from .static import StaticImageClips
from .synthetic import DEMO_SEED, SyntheticClips, SyntheticVideo, SyntheticVideos, render_video, split_seed
from .youtube_vos import YouTubeVOSClips, read_meta

__all__ = [
    "ClipConfig", "clip_config", "ClipDataset", "sample_clip", "choose_frames", "collate_clip", "NoObjectError",
    "ArrayVideo", "FileVideo",
    "DAVISClips", "davis_sequence", "YouTubeVOSClips", "read_meta", "StaticImageClips",
    "SyntheticClips", "SyntheticVideos", "SyntheticVideo", "render_video", "split_seed", "DEMO_SEED",
    "DataConfig", "build_dataset", "DATASETS", "ReferringSamples",
]
