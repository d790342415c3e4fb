"""The training step on one clip: the published forward and its loss.

Frame 0 is memorised with its ground-truth one-hot masks into a fresh feature
bank (no bank updates during training); frames 1..T-1 are segmented in one
batch against it; loss = cross-entropy + ``uncertainty_weight`` x the
uncertainty loss (:mod:`afb_urr.training.loss`).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from ..bank import FeatureBank
from ..model import AFBURR
from .loss import vos_loss


class ClipStep(nn.Module):
    """The published training forward of one clip, as a module so DDP can wrap it.

    forward(frames T x 3 x H x W in [0,1], masks T x K x H x W one-hot) ->
    (logits, s), each (T-1) x K x H x W: frame 0 memorised with its truth,
    frames 1..T-1 segmented in one batch against a bank holding only frame 0.
    """

    def __init__(self, model: AFBURR, budget: int = 10_000_000):
        super().__init__()
        self.model = model
        self.budget = budget

    def forward(self, frames: torch.Tensor, masks: torch.Tensor):
        keys, values = self.model.memorize(frames[:1], masks[0])
        bank = FeatureBank(masks.shape[1], budget=self.budget)
        bank.init(keys, values, 0)
        return self.model.segment(frames[1:], bank, count_readout=False, return_probs=True)


def check_clip(sample: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a dataset sample; returns (frames T x 3 x H x W, masks T x K x H x W),
    K = num_objects + 1."""
    for key in ("frames", "masks", "num_objects"):
        if key not in sample:
            raise KeyError(f"training sample lacks {key!r} (has {sorted(sample)})")
    frames, masks = sample["frames"], sample["masks"]
    n = int(sample["num_objects"])
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"sample frames must be T x 3 x H x W, got {tuple(frames.shape)}")
    if masks.dim() != 4 or masks.shape[0] != frames.shape[0] or masks.shape[2:] != frames.shape[2:]:
        raise ValueError(f"sample masks must be T x K x H x W matching frames {tuple(frames.shape)}, "
                         f"got {tuple(masks.shape)}")
    if frames.shape[0] < 2:
        raise ValueError(f"a training clip needs >= 2 frames, got {frames.shape[0]}")
    if not 1 <= n < masks.shape[1]:
        raise ValueError(f"num_objects {n} does not fit masks with K = {masks.shape[1]} channels")
    return frames.float(), masks[:, :n + 1].float()


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` ("none", "bf16", "fp16") on ``device``: None
    (fp32) for "none" and off CUDA."""
    if amp == "none" or device.type != "cuda":
        return None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def clip_loss(net: nn.Module, sample: dict, device: torch.device, dtype: torch.dtype | None = None,
              uncertainty_weight: float = 0.5):
    """Loss of one clip through ``net`` (a :class:`ClipStep`, possibly DDP-wrapped), with
    autocast to ``dtype`` on CUDA when given: (loss, cross-entropy, uncertainty loss),
    scalars (with graph when gradients are enabled)."""
    frames, masks = check_clip(sample)
    frames = frames.to(device, non_blocking=True)
    masks = masks.to(device, non_blocking=True)
    with nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype):
        logits, s = net(frames, masks)
    return vos_loss(logits, s, masks[1:], uncertainty_weight)
