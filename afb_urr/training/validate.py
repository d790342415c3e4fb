"""J&F of a model on held-out videos, segmented the way ``tools/infer.py`` does
(``Segmenter``: first-frame truth, bank updates on, the last frame not memorised).

Scores follow the DAVIS semi-supervised protocol: frames other than the
first and the last are scored; per object J and F are averaged over frames,
then over the objects of all videos; J&F is the mean of the two.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import torch
from torch import nn

from ..config import InferenceConfig
from ..evaluation.metrics import sequence_scores
from ..inference.segmenter import Segmenter


@dataclass
class Scores:
    """Mean J, F and J&F over the objects of all videos, with the per-video means
    (J, F) and each video's number of objects."""
    J: float
    F: float
    JF: float
    per_video: list[tuple[float, float]] = field(default_factory=list)
    num_objects: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"J&F {self.JF:.4f} (J {self.J:.4f}, F {self.F:.4f}, {len(self.per_video)} videos)"


def _as_uint8_frames(frames) -> np.ndarray:
    """T x H x W x 3 uint8, or T x 3 x H x W float in [0,1] (tensor or array) -> T x H x W x 3 uint8."""
    if torch.is_tensor(frames):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"video frames must be T x H x W x 3 or T x 3 x H x W, got {frames.shape}")
    if frames.dtype != np.uint8:
        if frames.shape[1] == 3 and frames.shape[-1] != 3:
            frames = frames.transpose(0, 2, 3, 1)
        frames = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    if frames.shape[-1] != 3:
        raise ValueError(f"video frames must have 3 colour channels, got shape {frames.shape}")
    return np.ascontiguousarray(frames)


def _as_labels(labels) -> np.ndarray:
    """T x H x W integer label maps, or T x K x H x W one-hot -> T x H x W int64."""
    if torch.is_tensor(labels):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim == 4:
        labels = labels.argmax(axis=1)
    if labels.ndim != 3:
        raise ValueError(f"video labels must be T x H x W (or T x K x H x W one-hot), got {labels.shape}")
    return labels.astype(np.int64)


@contextmanager
def model_kept(model: nn.Module):
    """Put ``model`` back as it was on exit: each module's train/eval mode and each
    parameter's and buffer's memory layout (strides; the values are unchanged).

    A :class:`Segmenter` puts its model in eval mode and, on CPU, in channels-last
    layout. A training model validated mid-run must not keep that layout: it
    would then train with other convolution kernels (other rounding, other
    speed) than before, and than a run resumed from a checkpoint.
    """
    modes = [(m, m.training) for m in model.modules()]
    strides = {name: t.stride() for name, t in chain(model.named_parameters(), model.named_buffers())}
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for name, t in chain(model.named_parameters(), model.named_buffers()):
            if name in strides and t.stride() != strides[name]:
                t.data = torch.empty_strided(t.shape, strides[name], dtype=t.dtype,
                                             device=t.device).copy_(t.data)


@torch.no_grad()
def segment_video(model, frames, first_labels: np.ndarray, inference: InferenceConfig | None = None,
                  device=None) -> np.ndarray:
    """Segment a video from its first-frame label map: T x H x W uint8 labels (frame 0 =
    truth). ``model`` is left as it was (mode and memory layout; see :func:`model_kept`)."""
    frames = _as_uint8_frames(frames)
    out = np.empty(frames.shape[:3], dtype=np.uint8)
    n = len(frames)
    with model_kept(model):
        seg = Segmenter.from_config(model, inference or InferenceConfig(), device=device)
        for t in range(n):
            r = seg.step(frames[t], first_labels if t == 0 else None, memorize=t < n - 1)
            out[t] = r.labels
    return out


def evaluate(model, videos, inference: InferenceConfig | None = None, device=None,
             progress: bool = False) -> Scores:
    """J&F of ``model`` over ``videos``: an iterable of (frames, labels) with frames
    T x H x W x 3 uint8 (or T x 3 x H x W float in [0,1]) and labels T x H x W
    (0 = background) or T x K x H x W one-hot. ``model`` is left as it was.
    """
    per_video, counts, js, fs = [], [], [], []
    items = list(videos)
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc="validate", leave=False)
    for frames, labels in items:
        labels = _as_labels(labels)
        n_obj = int(labels[0].max())
        if n_obj < 1:
            raise ValueError("a validation video has no object in its first frame")
        pred = segment_video(model, frames, labels[0], inference, device)
        scored = slice(1, len(labels) - 1) if len(labels) > 2 else slice(1, len(labels))
        j, f = sequence_scores(labels[scored], pred[scored].astype(np.int64), n_obj, workers=1)
        jm, fm = j.mean(axis=1), f.mean(axis=1)
        js.extend(jm.tolist())
        fs.extend(fm.tolist())
        per_video.append((float(jm.mean()), float(fm.mean())))
        counts.append(n_obj)
    if not js:
        raise ValueError("no validation videos")
    j_mean, f_mean = float(np.mean(js)), float(np.mean(fs))
    return Scores(J=j_mean, F=f_mean, JF=(j_mean + f_mean) / 2, per_video=per_video, num_objects=counts)


def build_val_videos(vc) -> list:
    """The held-out synthetic videos of a ``val`` section (``ValConfig``): [(frames
    T x H x W x 3 uint8, labels T x H x W uint8)]."""
    if vc.videos == 0:
        return []
    from ..data import SyntheticVideos
    split = SyntheticVideos("val", vc.videos, vc.frames, vc.size, vc.min_objects, vc.max_objects,
                            cache_size=0)
    return [(v.frames, v.masks) for v in (split[i] for i in range(vc.videos))]
