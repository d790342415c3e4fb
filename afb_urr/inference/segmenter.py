"""Segmenter: one video's inference state and the per-frame ``step``.

Owns the feature bank, the frame index and the list of object ids. It keeps
no frame: per-video memory is the bank, bounded by its budget.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from ..bank import FeatureBank
from ..config import EVICTION_MODES, NEW_OBJECT_MODES, InferenceConfig
from ..model import AFBURR
from ..model.decoder import uncertainty_map
from .runtime import autocast, compute_dtype, inference_copy

_FORCE = 1000.0
# Format of Segmenter.state_dict(); bump when its contents change meaning.
SNAPSHOT_FORMAT = "afb_urr.segmenter"
SNAPSHOT_VERSION = 1
_BANK_SETTINGS = ("budget", "update_rate", "merge_threshold", "eviction", "readout_threshold",
                  "score_max", "chunk_bytes")
_BANK_TENSORS = ("keys", "values", "inserted_at", "scores")


@dataclass
class StepResult:
    """Output of one :meth:`Segmenter.step`.

    labels: H x W uint8 numpy label map (original object ids).
    probs: K x H x W float tensor, background first, on the compute device.
    object_ids: label id of each of the K rows of ``probs`` (0 first).
    frame_index: index of this frame in the video.
    uncertainty: H x W float32 numpy map in [0, 1]: the URR's uncertainty
        formula U = exp(1 - top1 / (top2 + 1e-8)) applied to this frame's
        prediction (``probs``, the K probabilities normalised over objects),
        at frame size. Near 1 where two objects tie, near 0 where one wins
        clearly; 0 on a frame given by its mask. (The decoder's internal URR
        map is the same formula on the rough, pre-refinement probabilities at
        1/2 resolution after the published softmax-of-probabilities, which
        keeps it above exp(1 - e) ~ 0.18 everywhere: useless as a score.)
    """
    labels: np.ndarray
    probs: torch.Tensor
    object_ids: list[int]
    frame_index: int
    uncertainty: np.ndarray | None = None


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
            frame where an object appears; "keep": old objects keep their memory),
            ``precision`` ("fp32", "bf16", "fp16": autocast dtype of the encoders and
            the decoder, and the bank's dtype), ``compile`` (torch.compile the
            encoders and the decoder) and ``fold_batchnorm`` (default on).
        device: where to compute; default: the model's device.
        channels_last: run the convolutions in channels-last memory format
            (about 1.5-2x faster on CPU; same results up to float rounding).
            Default: on for CPU devices.

    ``model`` is not changed: the Segmenter computes with ``net``, an inference copy
    (BatchNorm folded, on ``device``, channels-last, compiled as configured; see
    :mod:`afb_urr.inference.runtime`), shared with other Segmenters of the same model.
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
        self.dtype = compute_dtype(self.config.precision)
        self.device = torch.device(device) if device is not None else model.device
        self.model = model
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        self.net = inference_copy(model, self.device, self.channels_last, self.config.fold_batchnorm,
                                  self.config.compile)
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
        unc = uncertainty_map(probs.unsqueeze(0))[0, 0].float().cpu().numpy()
        return StepResult(labels=labels, probs=probs, object_ids=list(ids), frame_index=t,
                          uncertainty=unc)

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
        with autocast(self.device, self.config.precision):
            keys, values = self.net.memorize(x, probs)
        keys, values = keys.to(self.dtype), values.to(self.dtype)
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
        with autocast(self.device, self.config.precision):
            logits, counts = self.net.segment(x, self.bank, count_readout=True)
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

    # ------------------------------------------------------------- snapshots
    def _model_signature(self) -> dict:
        """What a snapshot must match: trunk, feature sizes and a digest of the key head."""
        w = self.model.keyval_r4.Key.weight.detach().float().cpu().contiguous()
        digest = hashlib.sha1(w.numpy().tobytes()).hexdigest()[:16]
        return {"backbone": self.model.backbone, "key_dim": self.model.key_dim,
                "value_dim": self.model.value_dim, "weights": digest}

    def state_dict(self, video: str | None = None) -> dict:
        """The whole per-video state as CPU tensors and plain values (``torch.save``-able).

        Holds the bank (keys, values, insertion frames, read-out scores,
        evicted counts, settings), object ids, frame index, frame size,
        ``new_object``, a format version, the model's signature and ``video``,
        an identifier the caller chooses (e.g. path, frame count and size) that
        :meth:`load_state_dict` checks.
        """
        bank = self.bank
        return {
            "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "video": video,
            "model": self._model_signature(),
            "object_ids": list(self.object_ids), "frame_index": int(self.frame_index),
            "size": list(self.size) if self.size is not None else None,
            "new_object": self.new_object,
            "bank": {**{k: getattr(bank, k) for k in _BANK_SETTINGS},
                     **{k: [x.detach().cpu().clone() for x in getattr(bank, k)] for k in _BANK_TENSORS},
                     "evicted": list(bank.evicted)},
        }

    def _check_snapshot(self, state, video: str | None) -> None:
        """One-line ValueError when ``state`` is not a usable snapshot for this model and video."""
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError("not a Segmenter snapshot (no 'format': 'afb_urr.segmenter' entry)")
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {state.get('version')!r} is not supported "
                             f"(this version reads {SNAPSHOT_VERSION})")
        if video is not None and state.get("video") != video:
            raise ValueError(f"snapshot is of video {state.get('video')!r}, not {video!r}")
        mine = self._model_signature()
        if state.get("model") != mine:
            raise ValueError(f"snapshot was made with another model ({state.get('model')}), "
                             f"this one is {mine}")
        missing = [k for k in ("object_ids", "frame_index", "size", "new_object", "bank")
                   if k not in state]
        missing += [f"bank.{k}" for k in _BANK_SETTINGS + _BANK_TENSORS + ("evicted",)
                    if k not in state.get("bank", {})]
        if missing:
            raise ValueError(f"snapshot is incomplete: missing {', '.join(missing)}")
        bank, k = state["bank"], len(state["object_ids"])
        lengths = [len(bank[name]) for name in _BANK_TENSORS + ("evicted",)]
        if state["frame_index"] >= 0 and any(n != k for n in lengths):
            raise ValueError(f"snapshot is inconsistent: {k} object ids but bank lists of "
                             f"lengths {lengths}")

    def load_state_dict(self, state: dict, video: str | None = None) -> None:
        """Continue the video a :meth:`state_dict` snapshot was taken of.

        ``video``, when given, must equal the identifier the snapshot was saved
        with. A bad snapshot raises ValueError and leaves this Segmenter unchanged.
        """
        self._check_snapshot(state, video)
        src = state["bank"]
        if src["eviction"] not in EVICTION_MODES or state["new_object"] not in NEW_OBJECT_MODES:
            raise ValueError(f"snapshot has unknown settings: eviction {src['eviction']!r}, "
                             f"new_object {state['new_object']!r}")
        bank = FeatureBank(max(1, len(state["object_ids"])),
                           **{k: src[k] for k in _BANK_SETTINGS})
        for name in _BANK_TENSORS:
            dtype = self.dtype if name in ("keys", "values") else None
            setattr(bank, name, [x.to(self.device, dtype).clone() for x in src[name]])
        bank.evicted = list(src["evicted"])
        self.bank = bank
        self.object_ids = [int(i) for i in state["object_ids"]]
        self.frame_index = int(state["frame_index"])
        self.size = tuple(state["size"]) if state["size"] is not None else None
        self.new_object = state["new_object"]
