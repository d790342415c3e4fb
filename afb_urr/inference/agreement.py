"""How far a reduced precision moves the segmentation: the share of pixels whose label
agrees with fp32, and the change of J against the true labels.

``compare_precisions(make_segmenter, videos)`` runs every video once in fp32 and once
in each other precision, from the first frame's true labels, and scores frames 1..
(``tools/benchmark.py --compare-precision`` is the front end).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..evaluation.metrics import j_measure
from .segmenter import Segmenter

# Targets of the reduced precisions against fp32.
MIN_AGREEMENT = 0.995
MAX_J_CHANGE = 0.005


@dataclasses.dataclass
class Agreement:
    """One precision against fp32 over some videos (frames 1.. of each)."""
    precision: str
    pixels: int = 0         # pixels compared
    agreeing: int = 0       # of which the label equals fp32's
    j_fp32: float = 0.0     # mean J of fp32 (frames x objects)
    j: float = 0.0          # mean J of this precision
    per_video: list = dataclasses.field(default_factory=list)  # (agreement, J sum change, J count) per video

    @property
    def agreement(self) -> float:
        return self.agreeing / self.pixels if self.pixels else float("nan")

    @property
    def j_change(self) -> float:
        return self.j - self.j_fp32

    @property
    def within_targets(self) -> bool:
        return self.agreement >= MIN_AGREEMENT and abs(self.j_change) <= MAX_J_CHANGE


def segment_labels(seg: Segmenter, frames, first_labels: np.ndarray) -> list[np.ndarray]:
    """Label maps of every frame (the first is the given one), the last frame not memorised."""
    n = len(frames)
    return [seg.step(frames[t], first_labels if t == 0 else None, memorize=t < n - 1).labels
            for t in range(n)]


def _j_scores(truth: np.ndarray, labels: Sequence[np.ndarray]) -> list[float]:
    """J of every object (the ids in the first true frame) on frames 1..: a flat list."""
    objects = [int(o) for o in np.unique(truth[0]) if o != 0]
    return [float(j_measure(truth[t] == o, labels[t] == o)) for t in range(1, len(truth)) for o in objects]


def compare_precisions(make_segmenter: Callable[[str], Segmenter], videos: Iterable,
                       precisions: Sequence[str] = ("bf16", "fp16"),
                       on_video: Callable[[int], None] | None = None) -> list[Agreement]:
    """``make_segmenter(precision)`` -> a fresh Segmenter; ``videos``: (frames T x H x W x 3
    uint8, true labels T x H x W). Returns one :class:`Agreement` per precision."""
    results = {p: Agreement(p) for p in precisions}
    j_ref: list[float] = []
    j_low: dict[str, list[float]] = {p: [] for p in precisions}
    for i, (frames, truth) in enumerate(videos):
        truth = np.asarray(truth)
        ref = segment_labels(make_segmenter("fp32"), frames, truth[0])
        mine = _j_scores(truth, ref)
        j_ref.extend(mine)
        for p in precisions:
            got = segment_labels(make_segmenter(p), frames, truth[0])
            pixels = sum(a.size for a in ref[1:])
            agreeing = sum(int(np.count_nonzero(a == b)) for a, b in zip(ref[1:], got[1:]))
            js = _j_scores(truth, got)
            results[p].pixels += pixels
            results[p].agreeing += agreeing
            results[p].per_video.append((agreeing / pixels, float(np.sum(js) - np.sum(mine)), len(js)))
            j_low[p].extend(js)
        if on_video:
            on_video(i)
    for p in precisions:
        results[p].j_fp32 = float(np.mean(j_ref)) if j_ref else float("nan")
        results[p].j = float(np.mean(j_low[p])) if j_low[p] else float("nan")
    return list(results.values())


def _furthest(r: Agreement) -> str:
    """The video that moves J most, and the mean J change without it: one near-tie object,
    whose pixels fp32 itself splits between two labels, can carry a small sample's dJ."""
    if len(r.per_video) < 2:
        return ""
    i = max(range(len(r.per_video)), key=lambda k: abs(r.per_video[k][1]))
    agree, dsum, n = r.per_video[i]
    rest = sum(v[1] for v in r.per_video) - dsum
    count = sum(v[2] for v in r.per_video) - n
    return (f"{r.precision}: furthest video #{i}: {100 * agree:.3f}% agree, dJ {dsum / max(n, 1):+.4f}; "
            f"dJ of the other {len(r.per_video) - 1} videos {rest / max(count, 1):+.4f}")


def format_agreements(rows: Sequence[Agreement]) -> str:
    """A table: precision, pixel agreement, J of fp32, J, dJ, within the targets."""
    lines = [f"{'precision':>12}  {'pixels agree %':>14}  {'J fp32':>7}  {'J':>7}  {'dJ':>8}  targets"]
    for r in rows:
        verdict = "met" if r.within_targets else "NOT met"
        lines.append(f"{r.precision:>12}  {100 * r.agreement:>14.3f}  {r.j_fp32:>7.4f}  {r.j:>7.4f}  "
                     f"{r.j_change:>+8.4f}  {verdict}")
    lines += [line for line in map(_furthest, rows) if line]
    lines.append(f"targets: >= {100 * MIN_AGREEMENT:.1f}% of pixels agree, |dJ| <= {MAX_J_CHANGE}")
    return "\n".join(lines)
