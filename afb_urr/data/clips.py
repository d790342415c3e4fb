"""Training clips: frame choice, object choice, and the clip sample every dataset returns.

Every training dataset returns the same sample (one clip; batch size is one
clip because the number of objects varies):

- ``"frames"``: T x 3 x H x W float32 in [0, 1] (RGB);
- ``"masks"``: T x K x H x W float32 one-hot, K = num_objects + 1, background
  first; every pixel belongs to exactly one of the K channels;
- ``"num_objects"``: int, K - 1, 1 <= K - 1 <= ``max_objects``;
- ``"info"``: dict with ``name`` (video), ``frames`` (frame indices in the
  video, in clip order), ``object_ids`` (the video's label of clip object
  1..K-1), ``index`` (dataset index), ``epoch``, ``flip``.

Sampling as published (AFB-URR training code): ``clip_len`` frames drawn from
the whole video in random order (not temporal order); the first clip frame
must show an object; at most ``max_objects`` objects of that first frame are
kept, in random order; frames after the first get a random affine warp at
full resolution and colour jitter; each frame gets its own random resized
crop, retried until some background remains (and, for the first frame, until
an object remains). Colour jitter is applied after the crop, where it is
cheaper (its contrast term uses the mean grey level of the crop). A horizontal flip applies to the whole clip. With
``ordered=True`` the clip is temporally ordered with gaps of 1..``max_gap``
frames instead.

All randomness comes from one ``numpy.random.Generator`` passed in: a dataset
derives it from (seed, epoch, index), so ``dataset[i]`` is reproducible, in
any worker, for exact resume. The augmentation itself (jitter, affine warp,
crops) lives in :mod:`afb_urr.data.augment`.
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
from torchvision import tv_tensors

from ..io import void_to_background
from .augment import affine, choose_crop, crop_image, crop_mask, jitter


class NoObjectError(ValueError):
    """A video has no frame with an object to start a clip from (after the tries allowed)."""


class VideoSource(Protocol):
    """What the clip sampler needs from a video.

    ``frame(j)`` -> H x W x 3 uint8 RGB; ``mask(j)`` -> H x W uint8 labels
    (0 background, 255 void); ``start_frames()`` -> indices of frames known to
    contain an object, or None when unknown (every frame is then tried).
    """
    name: str
    num_frames: int

    def frame(self, j: int) -> np.ndarray: ...

    def mask(self, j: int) -> np.ndarray: ...

    def start_frames(self) -> Sequence[int] | None: ...


def _pair(v, name: str) -> tuple:
    if isinstance(v, (int, float)):
        return (v, v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"ClipConfig.{name}: expected one number or two, got {v}")
    return v


@dataclass
class ClipConfig:
    """How clips are drawn and augmented. Defaults: DAVIS-2017 as published.

    Presets for the other datasets: :func:`clip_config`.
    """
    clip_len: int = 3                        # frames per clip (published runs used up to 6)
    max_objects: int = 3                     # objects kept per clip (chosen among the first frame's)
    crop_size: tuple[int, int] = (400, 400)  # (H, W) of the output
    # Crop window: its short side is `scale` x the image's short side, its
    # aspect ratio `ratio` x the output's. The window is clipped to the image.
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.95, 1.05)
    crop_tries: int = 10                     # crops tried until background (and an object) remain
    same_crop: bool = False                  # one crop window for the whole clip (published: one per frame)
    min_object_pixels: int = 1               # an object keeps its place in the clip with this many first-frame pixels
    min_background: float = 0.0              # background fraction a crop must exceed
    ordered: bool = False                    # temporally ordered clips (published: random order)
    # With ordered: consecutive clip frames are 1..max_gap apart. A list gives
    # one value per epoch, the last one holding after it (a curriculum of
    # growing gaps, as STM-style training grows the frame skip).
    max_gap: int | tuple[int, ...] = 5
    augment: bool = True                     # False: no jitter, affine or flip (crops stay)
    flip_prob: float = 0.3
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02
    affine_degrees: float = 15.0
    affine_translate: float = 0.1            # fraction of width / height
    affine_scale: tuple[float, float] = (0.95, 1.05)
    affine_shear: float = 10.0               # degrees, along x
    start_tries: int = 20                    # first frames tried before a video counts as empty

    def __post_init__(self):
        self.crop_size = tuple(int(v) for v in _pair(self.crop_size, "crop_size"))
        self.crop_scale = tuple(float(v) for v in _pair(self.crop_scale, "crop_scale"))
        self.crop_ratio = tuple(float(v) for v in _pair(self.crop_ratio, "crop_ratio"))
        self.affine_scale = tuple(float(v) for v in _pair(self.affine_scale, "affine_scale"))
        if isinstance(self.max_gap, (list, tuple)):
            if not self.max_gap:
                raise ValueError("ClipConfig: max_gap must be an int or a non-empty list of ints, got []")
            self.max_gap = tuple(self.max_gap)
        gaps = self.max_gap if isinstance(self.max_gap, tuple) else (self.max_gap,)
        checks = [
            (self.clip_len >= 1, f"clip_len must be >= 1, got {self.clip_len}"),
            (self.max_objects >= 1, f"max_objects must be >= 1, got {self.max_objects}"),
            (min(self.crop_size) >= 1, f"crop_size must be positive, got {self.crop_size}"),
            (0 < self.crop_scale[0] <= self.crop_scale[1], f"crop_scale must be 0 < lo <= hi, got {self.crop_scale}"),
            (0 < self.crop_ratio[0] <= self.crop_ratio[1], f"crop_ratio must be 0 < lo <= hi, got {self.crop_ratio}"),
            (self.crop_tries >= 1, f"crop_tries must be >= 1, got {self.crop_tries}"),
            (all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in gaps),
             f"max_gap must be an int >= 1 or a list of them (one per epoch), got {self.max_gap}"),
            (0.0 <= self.flip_prob <= 1.0, f"flip_prob must be in [0, 1], got {self.flip_prob}"),
            (0.0 <= self.min_background < 1.0, f"min_background must be in [0, 1), got {self.min_background}"),
            (0.0 <= self.hue <= 0.5, f"hue must be in [0, 0.5], got {self.hue}"),
            (self.start_tries >= 1, f"start_tries must be >= 1, got {self.start_tries}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"ClipConfig: {msg}")

    def at_epoch(self, epoch: int) -> "ClipConfig":
        """This config with the scalar ``max_gap`` of ``epoch`` (itself when max_gap is an int)."""
        if not isinstance(self.max_gap, tuple):
            return self
        return dataclasses.replace(self, max_gap=self.max_gap[min(int(epoch), len(self.max_gap) - 1)])


# Published settings per training set (crop scale and augmentation differ).
_PRESETS = {
    "davis": {},
    "youtube_vos": {"crop_scale": (0.3, 0.5)},
    "static": {"hue": 0.03, "affine_degrees": 20.0, "affine_scale": (0.9, 1.1), "crop_ratio": (0.75, 1.333)},
    "synthetic": {},
}


def clip_config(preset: str = "davis", **overrides) -> ClipConfig:
    """A :class:`ClipConfig` for ``preset`` ("davis", "youtube_vos", "static", "synthetic") with overrides."""
    if preset not in _PRESETS:
        raise ValueError(f"unknown clip preset {preset!r}; expected one of {sorted(_PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ClipConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown ClipConfig key(s) {unknown}; valid keys: {sorted(fields)}")
    return ClipConfig(**{**_PRESETS[preset], **overrides})


# ----------------------------------------------------------------- frame choice

def choose_frames(num_frames: int, first: int, cfg: ClipConfig, rng: np.random.Generator) -> list[int]:
    """Frame indices of a clip starting at ``first``.

    Random order (default): the other clip_len - 1 frames are distinct frames
    of the video other than ``first`` in random order; a video shorter than
    the clip repeats random frames. Ordered: each next frame is 1..max_gap
    after the previous one, drawn so that the clip fits in the video when it
    can; at the end of a too-short video the last frame repeats.
    """
    n, need = num_frames, cfg.clip_len - 1
    if not cfg.ordered:
        others = [j for j in rng.permutation(n).tolist() if j != first][:need]
        if len(others) < need:
            others += rng.integers(0, n, size=need - len(others)).tolist()
        return [first] + others
    out, cur = [first], first
    for k in range(need):
        remaining = need - k - 1           # frames still to place after this one
        room = (n - 1 - cur) - remaining   # largest step that leaves 1 frame per remaining step
        hi = min(cfg.max_gap, room)
        cur = cur + int(rng.integers(1, hi + 1)) if hi >= 1 else min(cur + 1, n - 1)
        out.append(cur)
    return out


def _start_candidates(video: VideoSource, cfg: ClipConfig) -> list[int]:
    known = video.start_frames()
    cands = list(range(video.num_frames)) if known is None else [int(j) for j in known]
    if cfg.ordered and cfg.clip_len > 1:
        fit = [j for j in cands if j + cfg.clip_len - 1 <= video.num_frames - 1]
        if fit:  # prefer starts from which a whole clip with gaps >= 1 fits
            return fit
    return cands


def _first_frame(video: VideoSource, cfg: ClipConfig, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
    """Draw a first frame that shows an object -> (index, its labels, object ids present)."""
    cands = _start_candidates(video, cfg)
    for _ in range(cfg.start_tries):
        if not cands:
            break
        j = cands.pop(int(rng.integers(len(cands))))
        labels = void_to_background(video.mask(j))
        ids = np.unique(labels)
        ids = ids[ids != 0]
        if ids.size:
            return j, labels, ids
    raise NoObjectError(f"video {video.name!r}: no object found in the frames tried as clip start")


def _keep_visible(masks: torch.Tensor, n_chosen: int, cfg: ClipConfig, name: str, first: int):
    """Drop the objects too small in the cropped first frame and renumber the rest 1..N.

    masks: T x H x W labels 0..n_chosen -> (T x H x W relabelled, kept old labels).
    """
    counts = torch.bincount(masks[0].reshape(-1), minlength=n_chosen + 1)
    keep = [k for k in range(1, n_chosen + 1) if counts[k].item() >= cfg.min_object_pixels]
    if not keep:  # the whole-frame fallback can still lose a tiny object in the resize
        keep = [int(torch.argmax(counts[1:]).item()) + 1] if counts[1:].sum() > 0 else []
    if not keep:
        raise NoObjectError(f"video {name!r}: the objects of frame {first} vanish at crop size {cfg.crop_size}")
    relabel = torch.zeros(n_chosen + 1, dtype=torch.long)
    relabel[torch.tensor(keep)] = torch.arange(1, len(keep) + 1)
    return relabel[masks], keep


def sample_clip(video: VideoSource, cfg: ClipConfig, rng: np.random.Generator) -> dict:
    """Draw one training clip from ``video`` (the sample format of the module docstring).

    Raises :class:`NoObjectError` when no tried first frame shows an object.
    """
    first, labels0, present = _first_frame(video, cfg, rng)
    frame_ids = choose_frames(video.num_frames, first, cfg, rng)
    chosen = rng.permutation(present)[:cfg.max_objects]
    lut = np.zeros(256, np.uint8)
    lut[chosen] = np.arange(1, len(chosen) + 1, dtype=np.uint8)

    flip = bool(cfg.augment and rng.random() < cfg.flip_prob)
    out_frames, out_masks = [], []
    box = None
    for i, j in enumerate(frame_ids):
        lab = labels0 if j == first and i == 0 else void_to_background(video.mask(j))
        rgb = video.frame(j)
        if rgb.shape[:2] != lab.shape:
            raise ValueError(f"video {video.name!r} frame {j}: image is {rgb.shape[1]}x{rgb.shape[0]} "
                             f"but its mask is {lab.shape[1]}x{lab.shape[0]} (W x H)")
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(lut[lab])[None])
        if cfg.augment and i > 0:
            img, mask = affine(img, mask, cfg, rng)
        if box is None or not cfg.same_crop:
            box = choose_crop(mask, i == 0, cfg, rng)
        ci = crop_image(img, box, cfg.crop_size)
        if cfg.augment and i > 0:  # on the (smaller) crop
            ci = jitter(ci, cfg, rng).clamp_(0.0, 1.0)
        out_frames.append(ci)
        out_masks.append(crop_mask(mask, box, cfg.crop_size).as_subclass(torch.Tensor)[0])

    frames = torch.stack(out_frames)          # T x 3 x H x W float in [0, 1]
    masks = torch.stack(out_masks).long()     # T x H x W, labels 0..len(chosen)
    if flip:
        frames, masks = frames.flip(-1), masks.flip(-1)
    masks, keep = _keep_visible(masks, len(chosen), cfg, video.name, first)
    onehot = torch.nn.functional.one_hot(masks, len(keep) + 1).permute(0, 3, 1, 2).float()
    return {
        "frames": frames,
        "masks": onehot,
        "num_objects": len(keep),
        "info": {"name": video.name, "frames": [int(j) for j in frame_ids],
                 "object_ids": [int(chosen[k - 1]) for k in keep], "flip": flip},
    }


def collate_clip(batch: list[dict]) -> dict:
    """DataLoader ``collate_fn`` for batch_size=1: returns the one sample unchanged (no batch dim).

    Clips have different numbers of objects, so they are not stacked; train
    with one clip per step (as published), or use ``batch_size=None``.
    """
    if len(batch) != 1:
        raise ValueError(f"collate_clip: clips have different object counts and are not batched; "
                         f"use batch_size=1 (got a batch of {len(batch)})")
    return batch[0]


# ----------------------------------------------------------------- datasets

class ClipDataset(torch.utils.data.Dataset, abc.ABC):
    """Map-style dataset of training clips over a list of videos.

    ``dataset[i]`` draws a clip from video ``i % num_videos`` with a generator
    seeded by (``seed``, ``epoch``, i): the same triple gives the same clip in
    any process or worker. Call :meth:`set_epoch` before each epoch (with
    DataLoader workers, before creating the epoch's iterator and without
    ``persistent_workers``, so the workers see it). ``repeat`` visits every
    video that many times per epoch. A video in which no first frame with an
    object is found is replaced by another, randomly drawn one.
    """

    max_video_tries = 10

    def __init__(self, cfg: ClipConfig, seed: int = 0, repeat: int = 1):
        if repeat < 1:
            raise ValueError(f"{type(self).__name__}: repeat must be >= 1, got {repeat}")
        self.cfg = cfg
        self.seed = int(seed)
        self.epoch = 0
        self._epoch_cfg = cfg.at_epoch(0)  # cfg with this epoch's scalar max_gap
        self.repeat = int(repeat)

    # Subclasses: the videos.
    @abc.abstractmethod
    def num_videos(self) -> int:
        """Number of distinct videos."""

    @abc.abstractmethod
    def video(self, v: int) -> VideoSource:
        """Video ``v`` (0 <= v < num_videos())."""

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._epoch_cfg = self.cfg.at_epoch(self.epoch)

    def __len__(self) -> int:
        return self.num_videos() * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"{type(self).__name__}: index {index} out of range 0..{len(self) - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        cfg = self._epoch_cfg
        v = index % self.num_videos()
        tried = []
        for _ in range(self.max_video_tries):
            video = self.video(v)
            try:
                sample = sample_clip(video, cfg, rng)
            except NoObjectError:
                tried.append(video.name)
                v = int(rng.integers(self.num_videos()))
                continue
            sample["info"].update(index=int(index), epoch=self.epoch)
            return sample
        raise NoObjectError(f"{type(self).__name__}: no clip with an object found for index {index}; "
                            f"videos tried: {tried}")


class ArrayVideo:
    """A video held in memory: frames T x H x W x 3 uint8, masks T x H x W uint8."""

    def __init__(self, name: str, frames: np.ndarray, masks: np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or masks.shape != frames.shape[:3]:
            raise ValueError(f"video {name!r}: frames must be T x H x W x 3 and masks T x H x W, "
                             f"got {frames.shape} and {masks.shape}")
        self.name, self.frames, self.masks = name, frames, masks
        self.num_frames = int(frames.shape[0])

    def frame(self, j: int) -> np.ndarray:
        return self.frames[j]

    def mask(self, j: int) -> np.ndarray:
        return self.masks[j]

    def start_frames(self):
        return [j for j in range(self.num_frames) if self.masks[j].any()]
