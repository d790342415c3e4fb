"""Where a segmentation is unsure: per-frame scores, per-object confidence, frames to annotate.

The per-pixel map is :attr:`StepResult.uncertainty`, U = exp(1 - p1 / p2)
with p1, p2 the two largest object probabilities (near 1 where two objects
tie). The frame score is the plain one: the sum of U over the frame divided
by the foreground area, so a few unsure pixels around a small object count
as much as many around a large one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ObjectStat:
    """One object in one frame: mean probability over its pixels (1.0 where given) and pixel count."""
    confidence: float
    area: int


def frame_score(uncertainty: np.ndarray, labels: np.ndarray) -> float:
    """sum(U) / foreground pixels (at least 1): uncertainty H x W in [0,1], labels H x W."""
    if uncertainty.shape != labels.shape:
        raise ValueError(f"uncertainty {uncertainty.shape} and labels {labels.shape} differ in shape")
    area = int(np.count_nonzero(labels))
    return float(uncertainty.sum(dtype=np.float64)) / max(area, 1)


def object_stats(labels: np.ndarray, confidence: np.ndarray) -> dict[int, ObjectStat]:
    """Per object id in ``labels``: mean of ``confidence`` (H x W in [0,1]) over its pixels, and area."""
    ids, inverse, counts = np.unique(labels.ravel(), return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=confidence.ravel().astype(np.float64), minlength=len(ids))
    return {int(i): ObjectStat(float(s / c), int(c)) for i, s, c in zip(ids, sums, counts) if i != 0}


def suggest_frames(scores: dict[int, float], k: int, exclude=(), min_gap: int = 0) -> list[int]:
    """The ``k`` highest-scoring frames not in ``exclude``, best first.

    ``min_gap`` > 0 skips frames within that many frames of one already
    chosen, so that one hard passage does not take every suggestion.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    skip = set(exclude)
    chosen: list[int] = []
    for t in sorted(scores, key=lambda f: (-scores[f], f)):
        if len(chosen) >= k:
            break
        if t in skip or any(abs(t - c) <= min_gap for c in chosen if min_gap > 0):
            continue
        chosen.append(t)
    return chosen
