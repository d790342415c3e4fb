"""Shared by the measurement tools: held-out synthetic videos segmented with a checkpoint,
scored per frame by J against their known masks.

A video is rendered once (T x H x W x 3 frames and T x H x W labels in memory:
78 MB for 1000 frames of 120x216) and segmented from its first frame's truth.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation.metrics import j_measure
from ..inference import StepResult

DEMO_SIZE = "120x216"  # the size the demo weights were trained at


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--weights (default: the demo checkpoint), --device, --threads, --no-progress."""
    p.add_argument("--weights", metavar="CKPT",
                   help="checkpoint (default: the demo weights weights/demo_synthetic_resnet18.pth)")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (the machine may be shared)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def demo_weights_or(weights: str | None) -> str:
    """``weights``, or the committed demo checkpoint (a one-line error when it is missing)."""
    from ..inference import demo
    path = weights or demo.demo_weights()
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint not found: {path}" + ("" if weights else
                         f"; train the demo weights with `{demo.TRAIN_DEMO_HINT}`"))
    return path


def frame_j(truth: np.ndarray, labels: np.ndarray, objects: list[int]) -> float:
    """Mean J over ``objects`` of one frame (H x W label maps)."""
    return float(np.mean([j_measure(truth == o, labels == o) for o in objects]))


def segment_scored(make_segmenter: Callable, frames: np.ndarray, truth: np.ndarray,
                   progress: bool = False, desc: str = "video") -> Iterator[tuple[int, StepResult, float]]:
    """Segment ``frames`` (T x H x W x 3 uint8) from ``truth[0]``; yield ``(t, result, J)``
    for t >= 1, J the mean over the objects of the first frame (the last frame is not
    memorised, as in the published protocol)."""
    objects = [int(v) for v in np.unique(truth[0]) if v != 0]
    seg = make_segmenter()
    n = len(frames)
    for t in tqdm(range(n), desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        with torch.inference_mode():
            r = seg.step(frames[t], truth[0] if t == 0 else None, memorize=t < n - 1)
        if t > 0:
            yield t, r, frame_j(truth[t], r.labels, objects)
