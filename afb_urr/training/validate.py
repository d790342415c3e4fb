"""J&F of a model on held-out videos, segmented the way ``tools/infer.py`` does
(``Segmenter``: first-frame truth, bank updates on, the last frame not memorised).

Scores follow the DAVIS semi-supervised protocol: frames other than the
first and the last are scored; per object J and F are averaged over frames,
then over the objects of all videos; J&F is the mean of the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import InferenceConfig
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
    has_f: bool = True

    def __str__(self) -> str:
        return f"J&F {self.JF:.4f} (J {self.J:.4f}, F {self.F:.4f}, {len(self.per_video)} videos)"


def _metrics():
    """afb_urr.evaluation's per-sequence J and F, or None when that module is absent."""
    try:
        from ..evaluation.metrics import sequence_scores
    except ImportError:
        return None
    return sequence_scores


def _j_only(gt: np.ndarray, res: np.ndarray, num_objects: int):
    """J (IoU) per object and frame: (N, T); 1 where both masks are empty."""
    out = np.empty((num_objects, gt.shape[0]))
    for k in range(num_objects):
        g, r = gt == k + 1, res == k + 1
        inter = np.logical_and(g, r).sum(axis=(1, 2))
        union = np.logical_or(g, r).sum(axis=(1, 2))
        out[k] = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return out


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


@torch.no_grad()
def segment_video(model, frames, first_labels: np.ndarray, inference: InferenceConfig | None = None,
                  device=None) -> np.ndarray:
    """Segment a video from its first-frame label map: T x H x W uint8 labels (frame 0 = truth)."""
    seg = Segmenter.from_config(model, inference or InferenceConfig(), device=device)
    frames = _as_uint8_frames(frames)
    out = np.empty(frames.shape[:3], dtype=np.uint8)
    n = len(frames)
    for t in range(n):
        r = seg.step(frames[t], first_labels if t == 0 else None, memorize=t < n - 1)
        out[t] = r.labels
    return out


def evaluate(model, videos, inference: InferenceConfig | None = None, device=None,
             progress: bool = False) -> Scores:
    """J&F of ``model`` over ``videos``: an iterable of (frames, labels) with frames
    T x H x W x 3 uint8 (or T x 3 x H x W float in [0,1]) and labels T x H x W
    (0 = background) or T x K x H x W one-hot.

    The model is put in eval mode (the caller restores training mode). F needs
    ``afb_urr.evaluation``; without it ``F`` is NaN, ``JF`` equals J and
    ``has_f`` is False.
    """
    sequence_scores = _metrics()
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
        gt, res = labels[scored], pred[scored].astype(np.int64)
        if sequence_scores is not None:
            j, f = sequence_scores(gt, res, n_obj, workers=1)
        else:
            j, f = _j_only(gt, res, n_obj), np.full((n_obj, gt.shape[0]), np.nan)
        jm, fm = j.mean(axis=1), f.mean(axis=1)
        js.extend(jm.tolist())
        fs.extend(fm.tolist())
        per_video.append((float(jm.mean()), float(fm.mean())))
        counts.append(n_obj)
    if not js:
        raise ValueError("no validation videos")
    j_mean = float(np.mean(js))
    if sequence_scores is None:
        return Scores(J=j_mean, F=float("nan"), JF=j_mean, per_video=per_video, num_objects=counts,
                      has_f=False)
    f_mean = float(np.mean(fs))
    return Scores(J=j_mean, F=f_mean, JF=(j_mean + f_mean) / 2, per_video=per_video, num_objects=counts)
