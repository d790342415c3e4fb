"""Segmenter: one video's inference state and the per-frame ``step``.

Owns the feature bank, the frame index and the list of object ids. It keeps
no frame: per-video memory is the bank, bounded by its budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..bank import FeatureBank
from ..config import EVICTION_MODES, NEW_OBJECT_MODES, InferenceConfig
from ..model import AFBURR

_FORCE = 1000.0


@dataclass
class StepResult:
    """Output of one :meth:`Segmenter.step`.

    labels: H x W uint8 numpy label map (original object ids).
    probs: K x H x W float tensor, background first, on the compute device.
    object_ids: label id of each of the K rows of ``probs`` (0 first).
    frame_index: index of this frame in the video.
    """
    labels: np.ndarray
    probs: torch.Tensor
    object_ids: list[int]
    frame_index: int


def _as_frame(frame, device) -> torch.Tensor:
    """HxWx3 uint8 RGB array or 3xHxW float tensor in [0,1] -> 1x3xHxW float on device."""
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be an HxWx3 uint8 RGB array, got shape {frame.shape} "
                             f"dtype {frame.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)
        return (t.float() / 255.0).unsqueeze(0)
    if torch.is_tensor(frame):
        if not frame.is_floating_point() or frame.dim() != 3 or frame.shape[0] != 3:
            raise ValueError(f"frame tensor must be 3xHxW float in [0,1], got shape "
                             f"{tuple(frame.shape)} dtype {frame.dtype}")
        lo, hi = float(frame.min()), float(frame.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"frame tensor values must lie in [0,1], got [{lo:.3g}, {hi:.3g}]")
        return frame.to(device=device, dtype=torch.float32).unsqueeze(0)
    raise TypeError(f"frame must be a numpy array or a torch tensor, got {type(frame).__name__}")


def _as_mask(mask, size) -> np.ndarray:
    """Validate an HxW integer label map (0 = background) -> int64 numpy."""
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy array or a torch tensor, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be an HxW label map, got shape {mask.shape}")
    if tuple(mask.shape) != tuple(size):
        raise ValueError(f"mask size {mask.shape[0]}x{mask.shape[1]} does not match the frame "
                         f"size {size[0]}x{size[1]}")
    if mask.dtype == np.bool_ or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"mask must hold integer labels (0 = background), got dtype {mask.dtype}")
    m = mask.astype(np.int64)
    lo, hi = int(m.min()), int(m.max())
    if lo < 0:
        raise ValueError(f"mask has negative label {lo}; labels must be 0 (background) .. 254")
    if hi == 255:
        raise ValueError("mask has label 255 (the DAVIS 'void' label); map void pixels to 0 "
                         "(background) before passing the mask")
    if hi > 254:
        raise ValueError(f"mask has label {hi}; labels must be 0 (background) .. 254")
    return m


class Segmenter:
    """Streaming semi-supervised VOS over one video.

    Args:
        model: an :class:`AFBURR` network (moved to ``device`` and put in eval mode).
        config: an :class:`InferenceConfig` (default: its defaults): bank budget,
            update rate, merge and read-out thresholds, chunk size, eviction and
            ``new_object`` ("reset", published: the whole bank restarts from the
            frame where an object appears; "keep": old objects keep their memory).
        device: where to compute; default: the model's device.
        channels_last: run the convolutions in channels-last memory format
            (about 1.5-2x faster on CPU; same results up to float rounding).
            Default: on for CPU devices.
        **overrides: fields of ``config`` to change, e.g. ``budget=2000``
            (``None`` values are ignored).
    """

    def __init__(self, model: AFBURR, config: InferenceConfig | None = None, device=None,
                 channels_last: bool | None = None, **overrides):
        self.config = (config or InferenceConfig()).replace(**overrides)
        if self.config.new_object not in NEW_OBJECT_MODES:
            raise ValueError(f"new_object must be one of {NEW_OBJECT_MODES}, got {self.config.new_object!r}")
        if self.config.eviction not in EVICTION_MODES:
            raise ValueError(f"eviction must be one of {EVICTION_MODES}, got {self.config.eviction!r}")
        self.device = torch.device(device) if device is not None else model.device
        self.model = model.to(self.device).eval()
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.new_object = self.config.new_object
        self.bank = FeatureBank(1, self.config)
        self.object_ids: list[int] = [0]
        self.frame_index = -1
        self.size: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, model: AFBURR, cfg: InferenceConfig, device=None, **overrides) -> "Segmenter":
        """``Segmenter(model, cfg, device, **overrides)``."""
        return cls(model, cfg, device=device, **overrides)

    @property
    def num_objects(self) -> int:
        """K: objects including background."""
        return len(self.object_ids)

    def reset(self) -> None:
        """Forget the video: the next step starts a new one (and needs a mask)."""
        self.bank.init(torch.zeros(1, 1, 0), torch.zeros(1, 1, 0), 0)
        self.object_ids = [0]
        self.frame_index = -1
        self.size = None

    def _features_per_frame(self, size) -> int:
        return -(-size[0] // 16) * -(-size[1] // 16)

    @torch.inference_mode()
    def step(self, frame, mask=None, memorize: bool = True) -> StepResult:
        """Segment the next frame.

        frame: H x W x 3 uint8 RGB array, or 3 x H x W float tensor in [0,1].
        mask: optional H x W integer label map (0 = background, ids 1..254).
            Required on the first call. On later calls the objects whose ids
            are new start at this frame with the given mask (ids already
            tracked are ignored, as in the published protocol).
        memorize: put this frame into the bank (pass False for the last frame
            of a video; the published protocol skips it).
        Bad input raises ValueError/TypeError and leaves the state unchanged.
        """
        x, labels_in, new_ids = self._check_input(frame, mask)
        t = self.frame_index + 1
        probs, ids = self._predict(x, labels_in, new_ids)
        if memorize or new_ids:
            self._memorize(x, probs, new_ids, t)
        self.object_ids = ids
        self.frame_index = t
        self.size = tuple(x.shape[-2:])
        lut = torch.tensor(ids, dtype=torch.uint8, device=self.device)
        labels = lut[probs.argmax(dim=0)].cpu().numpy()
        return StepResult(labels=labels, probs=probs, object_ids=list(ids), frame_index=t)

    def _check_input(self, frame, mask):
        """Validate a step's input against the video so far (nothing changes here).

        Returns (frame 1 x 3 x H x W on the device, label map H x W int64 or None,
        the ids of the objects that start at this frame).
        """
        x = _as_frame(frame, self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        size = tuple(x.shape[-2:])
        if self.size is not None and size != self.size:
            raise ValueError(f"frame size changed mid-video: {size[0]}x{size[1]}, the video is "
                             f"{self.size[0]}x{self.size[1]} (call reset() to start a new video)")
        labels_in = _as_mask(mask, size) if mask is not None else None
        if self.frame_index < 0 and labels_in is None:
            raise ValueError("the first frame of a video needs a mask (H x W label map)")
        new_ids = []
        if labels_in is not None:
            present = [int(v) for v in np.unique(labels_in) if v != 0]
            new_ids = [v for v in present if v not in self.object_ids]
            if self.frame_index < 0 and not new_ids:
                raise ValueError("the first mask has no object (all pixels are background)")
        if new_ids:
            self.bank.check_fits(self._features_per_frame(size), self.num_objects + len(new_ids))
        return x, labels_in, new_ids

    def _predict(self, x: torch.Tensor, labels_in, new_ids: list[int]):
        """(probabilities K x H x W over the objects, background first; their ids): the
        given mask on the first frame, else the network's read of the bank (new objects forced)."""
        if self.frame_index < 0:
            ids = [0] + new_ids
            onehot = torch.from_numpy(labels_in).to(self.device)
            return (onehot.unsqueeze(0) == torch.tensor(ids, device=self.device).view(-1, 1, 1)).float(), ids
        logits = self._segment(x)
        ids = list(self.object_ids)
        if new_ids:
            logits = self._force_new_objects(logits, labels_in, new_ids)
            ids = ids + new_ids
        return torch.softmax(logits, dim=0), ids

    def _memorize(self, x: torch.Tensor, probs: torch.Tensor, new_ids: list[int], t: int) -> None:
        """Put frame ``t`` with its probabilities into the bank (restart it on a first frame,
        or when objects start here and ``new_object`` is "reset")."""
        keys, values = self.model.memorize(x, probs)
        if self.frame_index < 0 or (new_ids and self.new_object == "reset"):
            self.bank.init(keys, values, t)
        elif new_ids:
            k_old = self.num_objects
            self.bank.absorb(keys[:k_old], values[:k_old], t)
            self.bank.add_objects(keys[k_old:], values[k_old:], t)
        else:
            self.bank.absorb(keys, values, t)

    def _segment(self, x: torch.Tensor) -> torch.Tensor:
        """Logits K x H x W of frame ``x`` (1 x 3 x H x W); the read-out counts go into the bank."""
        logits, counts = self.model.segment(x, self.bank, count_readout=True)
        for i, c in enumerate(counts):
            self.bank.add_readout(i, c)
        return logits[0]

    def _force_new_objects(self, logits: torch.Tensor, labels: np.ndarray, new_ids) -> torch.Tensor:
        """Published protocol for objects that start at this frame: their logits are
        +1000 inside their mask and -1000 elsewhere; other objects -1000 inside it.

        logits: K x H x W -> (K + len(new_ids)) x H x W.
        """
        lab = torch.from_numpy(labels).to(self.device)
        new = torch.stack([torch.where(lab == obj, _FORCE, -_FORCE) for obj in new_ids]).to(logits.dtype)
        union = torch.isin(lab, torch.tensor(new_ids, device=self.device))
        return torch.cat([logits.masked_fill(union, -_FORCE), new], dim=0)
