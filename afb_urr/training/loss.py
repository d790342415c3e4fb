"""Training losses as published: AFB-URR's cross-entropy over objects + 0.5 x uncertainty
loss; LAVT's class-weighted 2-class cross-entropy (with an optional soft-IoU term, not
published, for the light referring model)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model.decoder import uncertainty_map


def uncertainty_loss(probs: torch.Tensor) -> torch.Tensor:
    """Mean over frames of ||U||_2 / sqrt(HW).

    probs: B x K x H x W per-object probabilities s (un-clamped, from
    ``segment(..., return_probs=True)``). U is computed from softmax over the
    objects of s (published quirk: a softmax of probabilities).
    """
    if probs.dim() != 4:
        raise ValueError(f"probs must be B x K x H x W, got shape {tuple(probs.shape)}")
    if probs.shape[1] < 2:
        raise ValueError(f"the uncertainty loss needs K >= 2 objects (background included), "
                         f"got K = {probs.shape[1]}")
    b, _, h, w = probs.shape
    u = uncertainty_map(F.softmax(probs, dim=1))  # B x 1 x H x W
    return (u.reshape(b, -1).norm(dim=1) / math.sqrt(h * w)).mean()


def vos_loss(logits: torch.Tensor, probs: torch.Tensor, masks: torch.Tensor,
             uncertainty_weight: float = 0.5):
    """Published training loss of one clip.

    logits: B x K x H x W (log(s/(1-s)) from ``segment``); probs: B x K x H x W
    (s); masks: B x K x H x W one-hot ground truth (background first) or
    B x H x W integer labels 0..K-1.
    Returns (loss, cross-entropy, uncertainty loss), scalars.
    """
    if masks.dim() == 4:
        if masks.shape != logits.shape:
            raise ValueError(f"one-hot masks {tuple(masks.shape)} do not match logits "
                             f"{tuple(logits.shape)}")
        target = masks.argmax(dim=1)
    elif masks.dim() == 3:
        target = masks.long()
    else:
        raise ValueError(f"masks must be B x K x H x W one-hot or B x H x W labels, "
                         f"got shape {tuple(masks.shape)}")
    ce = F.cross_entropy(logits.float(), target)
    unc = uncertainty_loss(probs.float())
    return ce + uncertainty_weight * unc, ce, unc


def referring_loss(logits: torch.Tensor, masks: torch.Tensor, class_weights=(0.9, 1.1)) -> torch.Tensor:
    """LAVT's loss: 2-class cross-entropy at the input size, weighted mean with
    weights 0.9 (background) / 1.1 (object) as published.

    logits: B x 2 x H x W; masks: B x H x W (0 background, 1 object).
    """
    if logits.dim() != 4 or logits.shape[1] != 2:
        raise ValueError(f"referring logits must be B x 2 x H x W, got {tuple(logits.shape)}")
    if masks.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"referring masks {tuple(masks.shape)} do not match logits {tuple(logits.shape)}")
    weight = torch.tensor([float(w) for w in class_weights], device=logits.device)
    return F.cross_entropy(logits.float(), masks.long(), weight=weight)


def soft_iou_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean over samples of 1 - soft IoU (Jaccard) of the object probability with the mask.

    logits: B x 2 x H x W; masks: B x H x W (0/1). p = softmax(logits)[:, 1];
    IoU = sum(p m) / sum(p + m - p m), 1 for a sample whose p and m are both empty.
    Unlike per-pixel cross-entropy it scores a sample as a whole, as mean IoU does: a
    mask split between two candidate objects costs more than committing to one.
    """
    p = F.softmax(logits.float(), dim=1)[:, 1].flatten(1)
    m = masks.float().flatten(1)
    inter = (p * m).sum(1)
    union = (p + m - p * m).sum(1)
    return (1.0 - (inter + 1e-6) / (union + 1e-6)).mean()
