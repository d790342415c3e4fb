"""Referring samples: (frame, object mask, expression) drawn from the procedural videos.

The grammar (:mod:`.referring`) says what can be said of an object in a
frame; this module draws training and evaluation samples from it, per object
(as the videos come) or balanced over the kinds of description.
"""
from __future__ import annotations

import numpy as np

from ..config import REFERRING_SAMPLINGS
from . import synthetic as syn
from .clips import NoObjectError
from .referring import (DESCRIPTION_PARTS, STATIC_ATTRIBUTES, STYLES, Replayed, contrastive, described,
                        replayed, without_kinds)


class ReferringSamples:
    """(frame, object mask, expression) samples over a split of procedural videos.

    Over the videos of ``split`` (seeds of "train" and "val" never overlap), in
    the ``style`` templates ("train" or "heldout"), from the
    ``part`` of the descriptions ("all", "train", "heldout"; see
    :func:`description_part`), over every frame or only frame 0 (``frames="first"``).
    ``sampling="object"``: item i is a frame of video i, an object of it that
    has an unambiguous expression, one of its expressions. ``sampling="kind"``: a kind of
    description (:func:`description_kind`) uniformly among those the
    split offers, then one (video, frame, object, expression) of that kind over
    the whole split (:meth:`pool`), so item i need not come from video i; rare
    kinds ("the smallest ellipse": two ellipses in view) come up as often as
    common ones ("the ellipse" alone in view). The choice depends only on
    (seed, epoch, i). ``contrast_share``: that share of the items is instead one
    (video, frame, object, expression) of the split whose colour/shape word changes the
    answer (:meth:`contrast_pool`: "the smallest ellipse" when a smaller polygon is in
    view), so that filtering before comparing is not left to rare samples.
    Returns ``{"image": H x W x 3 uint8, "mask": H x W bool, "expression": str,
    "video": name, "index": its index in the split, "frame": t, "label": k}``.
    """

    def __init__(self, split: str = "train", num_videos: int = 100, style: str = "train",
                 attributes=STATIC_ATTRIBUTES, frames: str = "all", num_frames: int = 30,
                 size: tuple[int, int] = (240, 432), min_objects: int = 1, max_objects: int = 3, seed: int = 0,
                 cache_size: int = 32, part: str = "all", heldout_fraction: float = 0.2, sampling: str = "object",
                 contrast_share: float = 0.0):
        if style not in STYLES:
            raise ValueError(f"template style must be one of {sorted(STYLES)}, got {style!r}")
        if frames not in ("all", "first"):
            raise ValueError(f"frames must be 'all' or 'first', got {frames!r}")
        if sampling not in REFERRING_SAMPLINGS:
            raise ValueError(f"referring sampling must be one of {REFERRING_SAMPLINGS}, got {sampling!r}")
        if not 0.0 <= contrast_share <= 1.0:
            raise ValueError(f"referring contrast share must be in [0, 1], got {contrast_share}")
        self.videos = syn.SyntheticVideos(split, num_videos, num_frames, size, min_objects, max_objects,
                                          cache_size=cache_size)
        if part not in DESCRIPTION_PARTS:
            raise ValueError(f"description part must be one of {DESCRIPTION_PARTS}, got {part!r}")
        self.style, self.attributes, self.frames, self.sampling = style, tuple(attributes), frames, sampling
        self.part, self.heldout_fraction = part, float(heldout_fraction)
        self.contrast_share = float(contrast_share)
        self.seed, self.epoch = int(seed), 0
        self._found: dict[tuple[int, int], dict[int, list[tuple[str, str]]]] = {}  # (index, t) -> described
        self._pool: dict[str, list[tuple[int, int, int, str]]] | None = None
        self._contrast: list[tuple[int, int, int, str]] | None = None

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def replay(self, index: int) -> list[Replayed]:
        """The objects of video ``index`` as its rendering drew them."""
        return replayed(self.videos[index].objects)

    def described(self, index: int, t: int) -> dict[int, list[tuple[str, str]]]:
        """label -> (expression, kind) pairs of video ``index`` at frame ``t`` (computed once)."""
        if (index, t) not in self._found:
            video = self.videos[index]
            self._found[(index, t)] = described(video.masks[t], replayed(video.objects), t, self.style,
                                                self.attributes, self.part, self.heldout_fraction)
        return self._found[(index, t)]

    def expressions(self, index: int, t: int) -> dict[int, list[str]]:
        """label -> unambiguous expressions of video ``index`` at frame ``t``."""
        return without_kinds(self.described(index, t))

    def _by_object(self, index: int, rng) -> tuple[int, int, str]:
        order = [0] if self.frames == "first" else rng.permutation(self.videos.num_frames).tolist()
        for t in order:
            found = self.described(index, t)
            if found:
                label = sorted(found)[rng.integers(len(found))]
                return t, label, found[label][rng.integers(len(found[label]))][0]
        raise NoObjectError(f"{self.videos[index].name}: no object with an unambiguous {self.style} "
                            f"expression in frames {order[:5]}{'...' if len(order) > 5 else ''}")

    def _frames(self):
        return [0] if self.frames == "first" else range(self.videos.num_frames)

    def pool(self) -> dict[str, list[tuple[int, int, int, str]]]:
        """kind -> every (video, frame, label, expression) of that kind in the split (built once:
        renders and describes every video)."""
        if self._pool is None:
            pool: dict[str, list[tuple[int, int, int, str]]] = {}
            for index in range(len(self.videos)):
                for t in self._frames():
                    for label, pairs in sorted(self.described(index, t).items()):
                        for text, kind in pairs:
                            pool.setdefault(kind, []).append((index, t, label, text))
            self._pool = pool
        return self._pool

    def contrast_pool(self) -> list[tuple[int, int, int, str]]:
        """Every (video, frame, label, expression) of the split whose filter word changes the
        answer (:func:`afb_urr.data.referring.contrastive`; built once)."""
        if self._contrast is None:
            self._contrast = []
            for index in range(len(self.videos)):
                video = self.videos[index]
                for t in self._frames():
                    found = contrastive(video.masks[t], replayed(video.objects), t, self.style, self.attributes,
                                        self.part, self.heldout_fraction)
                    self._contrast += [(index, t, label, text) for label, texts in found.items() for text in texts]
        return self._contrast

    def _by_kind(self, rng) -> tuple[int, int, int, str] | None:
        pool = self.pool()
        if not pool:
            return None
        choices = pool[sorted(pool)[rng.integers(len(pool))]]
        return choices[rng.integers(len(choices))]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        contrast = self.contrast_pool() if self.contrast_share and rng.random() < self.contrast_share else []
        if contrast:
            index, t, label, text = contrast[rng.integers(len(contrast))]
        elif self.sampling == "kind":
            drawn = self._by_kind(rng)
            if drawn is None:
                raise NoObjectError(f"no video of the {self.videos.split!r} split has an unambiguous "
                                    f"{self.style} expression")
            index, t, label, text = drawn
        else:
            t, label, text = self._by_object(index, rng)
        video = self.videos[index]
        return {"image": video.frames[t], "mask": video.masks[t] == label, "expression": text,
                "video": video.name, "index": int(index), "frame": int(t), "label": int(label)}
