"""Procedural videos for tests, the demo, and for proving that training learns.

A video is a textured background that drifts slowly (camera motion) with 1..N
textured shapes (ellipses, rectangles, polygons) moving smoothly over it while
they scale and rotate, occluding each other by depth order. Everything comes
from one ``numpy.random.Generator(seed)``: the same seed gives the same video,
bit for bit, and no global random state is touched.

``render_video`` draws one video (``render_scene`` also returns the objects it drew,
which the referring grammar describes); :class:`SyntheticVideos` is a split
(``"train"`` or ``"val"``) of such videos whose seeds never overlap between
splits; :class:`SyntheticClips` samples training clips from a split.
"""
from __future__ import annotations

import colorsys
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from .clips import ArrayVideo, ClipConfig, ClipDataset, clip_config

# Seed of the video the demo of ``tools/infer.py --demo`` shows.
DEMO_SEED = 2020

# Video i of a split is rendered from seed SPLIT_SEED_BASE[split] + i: the
# ranges of the two splits (10^7 videos each) are disjoint, and DEMO_SEED is
# in neither.
SPLIT_SEED_BASE = {"train": 10_000_000, "val": 20_000_000}
MAX_VIDEOS_PER_SPLIT = 10_000_000

SHAPES = ("ellipse", "rectangle", "polygon")  # outline kinds (the grammar's shape words)
_TEXTURES = ("stripes", "checker", "noise")


def split_seed(split: str, index: int) -> int:
    """The render seed of video ``index`` of ``split`` ("train" or "val")."""
    if split not in SPLIT_SEED_BASE:
        raise ValueError(f"unknown synthetic split {split!r}; expected one of {sorted(SPLIT_SEED_BASE)}")
    if not 0 <= index < MAX_VIDEOS_PER_SPLIT:
        raise IndexError(f"synthetic video index {index} outside 0..{MAX_VIDEOS_PER_SPLIT - 1}")
    return SPLIT_SEED_BASE[split] + int(index)


def _colour(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> RGB float32 in [0, 255]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _texture(rng: np.random.Generator, h: int, w: int, hue: float, kind: str) -> np.ndarray:
    """A two-colour texture image, H x W x 3 uint8, around ``hue``.

    ``kind``: "stripes" (a rotated sine grating), "checker" (a rotated
    checkerboard) or "noise" (smooth random blobs). Both colours share the hue
    family so that objects and background stay distinguishable by colour.
    """
    c0 = _colour(hue + rng.uniform(-0.04, 0.04), rng.uniform(0.5, 1.0), rng.uniform(0.35, 0.6))
    c1 = _colour(hue + rng.uniform(-0.08, 0.08), rng.uniform(0.3, 0.9), rng.uniform(0.7, 1.0))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        cell = max(2, int(min(h, w) * rng.uniform(0.08, 0.2)))
        low = rng.random((h // cell + 3, w // cell + 3)).astype(np.float32)
        t = cv2.resize(low, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell:cell + h, cell:cell + w]
        t = np.clip((t - 0.5) * 2.5 + 0.5, 0.0, 1.0)
    else:
        angle = rng.uniform(0, math.pi)
        period = max(3.0, min(h, w) * rng.uniform(0.08, 0.25))
        u = xx * math.cos(angle) + yy * math.sin(angle)
        if kind == "stripes":
            t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
        else:  # checker
            v = -xx * math.sin(angle) + yy * math.cos(angle)
            t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    t = t[..., None]
    img = c0 * (1.0 - t) + c1 * t
    img += rng.normal(0.0, 6.0, size=(h, w, 1)).astype(np.float32)  # fine grain: gives local detail
    return np.clip(img, 0, 255).astype(np.uint8)


def _outline(rng: np.random.Generator, radius: float) -> tuple[str, np.ndarray]:
    """A random shape's outline: (kind, V x 2 float vertices around the origin), |v| <= radius."""
    kind = SHAPES[rng.integers(len(SHAPES))]
    if kind == "ellipse":
        a, b = radius, radius * rng.uniform(0.5, 1.0)
        th = np.linspace(0, 2 * math.pi, 36, endpoint=False)
        pts = np.stack([a * np.cos(th), b * np.sin(th)], 1)
    elif kind == "rectangle":
        a = radius / math.sqrt(2) * rng.uniform(0.9, 1.0)
        b = a * rng.uniform(0.45, 1.0)
        pts = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
    else:  # star-convex polygon with 5..8 vertices
        n = int(rng.integers(5, 9))
        th = np.sort(rng.uniform(0, 2 * math.pi, n))
        r = radius * rng.uniform(0.55, 1.0, n)
        pts = np.stack([r * np.cos(th), r * np.sin(th)], 1)
    return kind, pts.astype(np.float64)


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold positions into [lo, hi] as if bouncing off the borders (triangle wave)."""
    span = max(hi - lo, 1e-6)
    u = np.mod(x - lo, 2 * span)
    return lo + np.where(u > span, 2 * span - u, u)


@dataclass
class _Object:
    verts: np.ndarray      # V x 2 outline around the origin, pixels at scale 1
    texture: np.ndarray    # S x S x 3 uint8, centred on the origin
    centre: np.ndarray     # T x 2 (x, y) per frame
    scale: np.ndarray      # T
    angle: np.ndarray      # T, radians
    first: int             # first frame the object is in
    kind: str = ""         # outline kind: "ellipse" / "rectangle" / "polygon"
    hue: float = 0.0       # texture hue in [0, 1)


def _make_object(rng: np.random.Generator, t: np.ndarray, h: int, w: int, hue: float) -> _Object:
    """Shape, texture and a smooth trajectory (bouncing inside the frame) for one object."""
    side = min(h, w)
    radius = side * rng.uniform(0.12, 0.22)
    kind, verts = _outline(rng, radius)
    half = int(math.ceil(radius * 1.3)) + 2
    texture = _texture(rng, 2 * half + 1, 2 * half + 1, hue, _TEXTURES[rng.integers(len(_TEXTURES))])

    amp = rng.uniform(0.05, 0.18)
    scale = 1.0 + amp * np.sin(rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * math.pi))
    angle = rng.uniform(0, 2 * math.pi) + math.radians(rng.uniform(-3.0, 3.0)) * t

    # The centre stays inside the frame, half an object radius from the border,
    # so at least a good part of every object is in view.
    margin = 0.5 * radius * float(scale.max())
    lo = np.array([margin, margin])
    hi = np.array([w - 1 - margin, h - 1 - margin])
    start = lo + rng.random(2) * (hi - lo)
    speed = side * rng.uniform(0.008, 0.03)
    heading = rng.uniform(0, 2 * math.pi)
    wobble = side * rng.uniform(0.0, 0.04)
    wfreq = rng.uniform(0.1, 0.3)
    wphase = rng.uniform(0, 2 * math.pi, 2)
    raw = (start[None] + speed * t[:, None] * np.array([math.cos(heading), math.sin(heading)])[None]
           + wobble * np.sin(wfreq * t[:, None] + wphase[None]))
    centre = np.stack([_reflect(raw[:, 0], lo[0], hi[0]), _reflect(raw[:, 1], lo[1], hi[1])], 1)
    return _Object(verts, texture, centre, scale, angle, 0, kind, hue % 1.0)


def _draw(obj: _Object, i: int, h: int, w: int):
    """Rasterise object ``obj`` at frame ``i`` -> (y0, x0, mask bh x bw bool, pixels bh x bw x 3) or None."""
    s, a = float(obj.scale[i]), float(obj.angle[i])
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = obj.centre[i]
    pts = obj.verts @ rot.T + c
    x0 = max(int(math.floor(pts[:, 0].min())), 0)
    y0 = max(int(math.floor(pts[:, 1].min())), 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + 1, w)
    y1 = min(int(math.ceil(pts[:, 1].max())) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    bw, bh = x1 - x0, y1 - y0
    mask = np.zeros((bh, bw), np.uint8)
    local = np.round((pts - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [local], 1, lineType=cv2.LINE_8, shift=4)
    # texture pixel (u, v), centred at `half`, maps to rot @ ((u, v) - half) + c - (x0, y0)
    half = (obj.texture.shape[0] - 1) / 2.0
    m = np.zeros((2, 3))
    m[:, :2] = rot
    m[:, 2] = c - [x0, y0] - rot @ np.array([half, half])
    pix = cv2.warpAffine(obj.texture, m, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return y0, x0, mask.astype(bool), pix


def _render_args(num_frames: int, size, num_objects: int, first_frames) -> tuple[int, int, list[int]]:
    """Checked (H, W, first frame of each object) of a :func:`render_video` call."""
    h, w = (int(size[0]), int(size[1]))
    if num_frames < 1:
        raise ValueError(f"render_video: num_frames must be >= 1, got {num_frames}")
    if h < 16 or w < 16:
        raise ValueError(f"render_video: size must be at least 16 x 16, got {tuple(size)}")
    if not 0 <= num_objects <= 20:
        raise ValueError(f"render_video: num_objects must be in 0..20, got {num_objects}")
    if first_frames is None:
        first_frames = [0] * num_objects
    first_frames = [int(f) for f in first_frames]
    if len(first_frames) != num_objects:
        raise ValueError(f"render_video: first_frames has {len(first_frames)} entries for {num_objects} objects")
    if any(f < 0 for f in first_frames):
        raise ValueError(f"render_video: first_frames must be >= 0, got {first_frames}")

    return h, w, first_frames


def _compose(base: np.ndarray, drawn: dict, order: list[int], num_objects: int):
    """Paint the drawn objects back to front over ``base`` -> (frame, labels, order); an object
    left mostly hidden is brought to the front (for good) and the frame painted again."""
    h, w = base.shape[:2]
    for _ in range(num_objects + 1):
        frame, label = base.copy(), np.zeros((h, w), np.uint8)
        for k in order:
            if k not in drawn:
                continue
            y0, x0, m, pix = drawn[k]
            bh, bw = m.shape
            frame[y0:y0 + bh, x0:x0 + bw][m] = pix[m]
            label[y0:y0 + bh, x0:x0 + bw][m] = k + 1
        hidden = [k for k in order if k in drawn and _mostly_hidden(label, drawn[k], k + 1)]
        if not hidden:
            break
        order = [k for k in order if k != hidden[0]] + [hidden[0]]  # bring it to the front
    return frame, label, order


def render_video(seed: int, num_frames: int = 30, size: tuple[int, int] = (240, 432), num_objects: int = 2,
                 first_frames: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render one procedural video: (frames, masks) of :func:`render_scene`."""
    frames, masks, _ = render_scene(seed, num_frames, size, num_objects, first_frames)
    return frames, masks


def render_scene(seed: int, num_frames: int = 30, size: tuple[int, int] = (240, 432), num_objects: int = 2,
                 first_frames: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, list[_Object]]:
    """Render one procedural video.

    Args:
        seed: the only source of randomness (``numpy.random.Generator(seed)``).
        num_frames: T.
        size: (H, W).
        num_objects: N, the objects get labels 1..N.
        first_frames: ``first_frames[i]`` is the frame where object i+1 enters
            (its mask is all zero before it); default: every object from frame 0.

    Returns:
        frames: T x H x W x 3 uint8 RGB; masks: T x H x W uint8 labels 0..N;
        objects: the N objects as drawn (outline kind, hue, texture, trajectory),
        what the referring grammar describes without rendering again.
        The label of a pixel is the front-most object covering it. An object
        that becomes almost hidden behind others is brought to the front (and
        stays there), so every object that has entered stays visible.
    """
    h, w, first_frames = _render_args(num_frames, size, num_objects, first_frames)
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames, dtype=np.float64)

    # Background: a larger texture panned slowly (at most `margin` pixels in total).
    bg_hue = rng.random()
    margin = int(math.ceil(0.08 * max(h, w))) + 1
    background = _texture(rng, h + 2 * margin, w + 2 * margin, bg_hue, _TEXTURES[rng.integers(len(_TEXTURES))])
    drift = rng.uniform(-1, 1, 2) * margin * 0.9
    frac = t / max(num_frames - 1, 1)

    # Object hues spread around the colour circle away from the background's.
    objects = []
    for k in range(num_objects):
        hue = bg_hue + (k + 1) / (num_objects + 1) + rng.uniform(-0.05, 0.05)
        obj = _make_object(rng, t, h, w, hue)
        obj.first = first_frames[k]
        objects.append(obj)
    order = [int(k) for k in rng.permutation(num_objects)]  # back to front

    frames = np.empty((num_frames, h, w, 3), np.uint8)
    masks = np.zeros((num_frames, h, w), np.uint8)
    for i in range(num_frames):
        shift = np.array([[1.0, 0.0, -(margin + drift[0] * frac[i])], [0.0, 1.0, -(margin + drift[1] * frac[i])]])
        base = cv2.warpAffine(background, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        drawn = {k: _draw(objects[k], i, h, w) for k in range(num_objects) if objects[k].first <= i}
        drawn = {k: d for k, d in drawn.items() if d is not None}
        frames[i], masks[i], order = _compose(base, drawn, order, num_objects)
    return frames, masks, objects


def _mostly_hidden(label: np.ndarray, drawn, lab: int) -> bool:
    """True when less than a quarter of an object's drawn pixels keep its label."""
    y0, x0, m, _ = drawn
    bh, bw = m.shape
    area = int(m.sum())
    if area == 0:
        return False
    visible = int((label[y0:y0 + bh, x0:x0 + bw][m] == lab).sum())
    return visible < max(4, area // 4)


@dataclass
class SyntheticVideo:
    """One rendered video of a split: frames T x H x W x 3 uint8, masks T x H x W uint8."""
    name: str
    seed: int
    frames: np.ndarray
    masks: np.ndarray
    num_objects: int
    first_frames: list[int]
    objects: list[_Object] = field(default_factory=list, repr=False)  # as render_scene drew them


class SyntheticVideos:
    """A split of procedural videos: ``videos[i]`` renders (and caches) video i.

    Video i of split s uses seed ``split_seed(s, i)``; train and val never share
    a seed. The number of objects (``min_objects``..``max_objects``) and, with
    ``late_object_prob`` > 0, late entry frames of objects 2.. are drawn from the
    same seed, so a video is fully determined by (split, i) and the arguments.
    """

    def __init__(self, split: str = "train", num_videos: int = 100, num_frames: int = 30,
                 size: tuple[int, int] = (240, 432), min_objects: int = 1, max_objects: int = 3,
                 late_object_prob: float = 0.0, cache_size: int = 32):
        split_seed(split, 0)  # validates the split name
        if num_videos < 1 or num_videos > MAX_VIDEOS_PER_SPLIT:
            raise ValueError(f"SyntheticVideos: num_videos must be in 1..{MAX_VIDEOS_PER_SPLIT}, got {num_videos}")
        if not 1 <= min_objects <= max_objects:
            raise ValueError(f"SyntheticVideos: need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
        if not 0.0 <= late_object_prob <= 1.0:
            raise ValueError(f"SyntheticVideos: late_object_prob must be in [0, 1], got {late_object_prob}")
        self.split = split
        self.num_videos = int(num_videos)
        self.num_frames = int(num_frames)
        self.size = (int(size[0]), int(size[1]))
        self.min_objects = int(min_objects)
        self.max_objects = int(max_objects)
        self.late_object_prob = float(late_object_prob)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[int, SyntheticVideo] = OrderedDict()

    def __len__(self) -> int:
        return self.num_videos

    def seed(self, index: int) -> int:
        return split_seed(self.split, index)

    def spec(self, index: int) -> tuple[int, list[int]]:
        """(number of objects, first frame of each object) of video ``index``."""
        rng = np.random.default_rng([self.seed(index), 1])
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        first = [0] * n
        for k in range(1, n):  # object 1 is always there at frame 0
            if self.num_frames > 2 and rng.random() < self.late_object_prob:
                first[k] = int(rng.integers(1, max(2, self.num_frames // 2)))
        return n, first

    def __getitem__(self, index: int) -> SyntheticVideo:
        if not 0 <= index < self.num_videos:
            raise IndexError(f"synthetic {self.split} video {index} out of range 0..{self.num_videos - 1}")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        n, first = self.spec(index)
        seed = self.seed(index)
        frames, masks, objects = render_scene(seed, self.num_frames, self.size, n, first)
        video = SyntheticVideo(f"{self.split}_{index:05d}", seed, frames, masks, n, first, objects)
        if self.cache_size > 0:
            self._cache[index] = video
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return video


class SyntheticClips(ClipDataset):
    """Training clips from a :class:`SyntheticVideos` split.

    Args:
        split, num_videos, num_frames, size, min_objects, max_objects,
        late_object_prob, cache_size: as :class:`SyntheticVideos`.
        cfg: clip sampling; default ``clip_config("synthetic", crop_size=size)``.
        seed, repeat: see :class:`ClipDataset`.
    """

    def __init__(self, split: str = "train", num_videos: int = 100, num_frames: int = 30,
                 size: tuple[int, int] = (240, 432), min_objects: int = 1, max_objects: int = 3,
                 cfg: ClipConfig | None = None, seed: int = 0, repeat: int = 1,
                 late_object_prob: float = 0.0, cache_size: int = 32):
        self.videos = SyntheticVideos(split, num_videos, num_frames, size, min_objects, max_objects,
                                      late_object_prob, cache_size)
        super().__init__(cfg or clip_config("synthetic", crop_size=tuple(size)), seed, repeat)

    def num_videos(self) -> int:
        return len(self.videos)

    def video(self, v: int) -> ArrayVideo:
        sv = self.videos[v]
        return ArrayVideo(sv.name, sv.frames, sv.masks)
