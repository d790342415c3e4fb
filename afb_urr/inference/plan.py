"""Which annotation decides an object at a frame: the rule behind ``VideoSession.propagate``.

For one object with annotated frames a_0 < a_1 < ... (a removal counts: it
annotates the object as absent), the object at frame t is decided by:
- t annotated: that annotation;
- "forward": the latest annotation before t (none: the object is absent);
- "backward": the earliest annotation after t (none: absent);
- "both": the nearest annotation; at equal distance the earlier one.
Each annotation a decides a run of frames next to it on one side: the frames
a propagation started at a in that direction must reach.
"""
from __future__ import annotations

from bisect import bisect_right

DIRECTIONS = ("forward", "backward", "both")


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def governor(anchors: list[int], t: int, direction: str) -> int | None:
    """The annotated frame (from sorted ``anchors``) that decides the object at frame t, or None."""
    i = bisect_right(anchors, t)
    prev = anchors[i - 1] if i else None
    if prev == t:
        return t
    nxt = anchors[i] if i < len(anchors) else None
    if direction == "forward":
        return prev
    if direction == "backward":
        return nxt
    if prev is None or nxt is None:
        return nxt if prev is None else prev
    return prev if t - prev <= nxt - t else nxt


def governed_spans(anchors: list[int], num_frames: int, direction: str) -> list[tuple[int, int, int]]:
    """``(anchor, lo, hi)``: the frames lo..hi (inclusive, anchor excluded) decided by ``anchor``.

    Agrees with :func:`governor` frame by frame; empty spans are left out.
    """
    spans = []
    for i, a in enumerate(anchors):
        prev = anchors[i - 1] if i else None
        nxt = anchors[i + 1] if i + 1 < len(anchors) else None
        if direction in ("forward", "both"):
            hi = num_frames - 1 if nxt is None else nxt - 1
            if direction == "both" and nxt is not None:
                hi = (a + nxt) // 2  # ties go to the earlier annotation
            if hi > a:
                spans.append((a, a + 1, hi))
        if direction in ("backward", "both"):
            lo = 0 if prev is None else prev + 1
            if direction == "both" and prev is not None:
                lo = (prev + a) // 2 + 1
            if lo < a:
                spans.append((a, lo, a - 1))
    return spans


def clip_span(span: tuple[int, int, int], start: int, end: int) -> int | None:
    """The farthest frame of ``span`` a run from its anchor must reach for frames start..end.

    Forward spans (lo > anchor) return the highest frame needed, backward
    spans the lowest; None when the span misses start..end.
    """
    a, lo, hi = span
    lo, hi = max(lo, start), min(hi, end)
    if lo > hi:
        return None
    return hi if lo > a else lo

