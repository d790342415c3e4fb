"""Sentences -> a first-frame label map, with the published pre/post-processing.

Pre-processing (test-time path the published scores were measured with): the
RGB frame is squashed to 480 x 480 (PIL bilinear, antialiased when shrinking),
scaled to [0, 1] and normalised with the ImageNet mean/std. Post-processing:
the 2-class logits at 480 x 480 decide object vs background (logit1 > logit0),
then the label map goes back to the frame's size by nearest neighbour.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .tokenizer import VocabularyError

INPUT_SIZE = 480
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_frame(frame) -> np.ndarray:
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame must be an H x W x 3 uint8 RGB array, got {desc}")
    return frame


def preprocess(frame, size: int = INPUT_SIZE) -> torch.Tensor:
    """H x W x 3 uint8 RGB (or a PIL image) -> (1, 3, size, size) float32, ImageNet-normalised."""
    img = Image.fromarray(_check_frame(frame)).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return ((x - mean) / std)[None]


def check_vocabulary(model, tokenizer) -> None:
    """The tokenizer's vocabulary must have exactly as many entries as the model's word embeddings."""
    expected = model.text_encoder.config.vocab_size
    if tokenizer.vocab_size != expected:
        raise VocabularyError(f"{tokenizer.source}: vocabulary has {tokenizer.vocab_size} tokens but the referring "
                              f"model expects {expected}: use the vocab.txt that came with its BERT")


@torch.no_grad()
def referring_logits(model, tokenizer, frame, expressions: list[str], size: int = INPUT_SIZE,
                     batch_size: int = 4) -> torch.Tensor:
    """(K, 2, size, size) logits of each expression on the squashed frame (model as it is: use eval mode)."""
    check_vocabulary(model, tokenizer)
    ids, mask = tokenizer(list(expressions))
    device = next(model.parameters()).device
    image = preprocess(frame, size).to(device)
    out = []
    for i in range(0, len(ids), batch_size):
        b_ids, b_mask = ids[i:i + batch_size].to(device), mask[i:i + batch_size].to(device)
        out.append(model(image.expand(len(b_ids), -1, -1, -1), b_ids, b_mask).float().cpu())
    return torch.cat(out)


@dataclass
class TextMasks:
    """Result of :func:`mask_from_text`.

    labels: H x W uint8, expression i (0-based) -> label i + 1, 0 background.
    confidence: per expression, the mean object probability over its final pixels (0 if none).
    missing: indices of expressions that got no pixel (also warned about).
    reasons: for each missing index, why ("found nothing", "outscored everywhere" by a more
        confident expression, or "lost in the resize to the frame").
    """
    labels: np.ndarray
    confidence: list[float]
    missing: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def labels_from_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 2, h, w) -> (labels (h, w) long in 0..K, margin (K, h, w)).

    A pixel belongs to expression k when logit1 > logit0; where several claim it,
    the largest margin logit1 - logit0 (= the most confident) wins.
    """
    margin = logits[:, 1] - logits[:, 0]
    best, winner = margin.max(dim=0)
    return torch.where(best > 0, winner + 1, torch.zeros_like(winner)), margin


def mask_from_text(model, tokenizer, frame, expressions, size: int = INPUT_SIZE, batch_size: int = 4) -> TextMasks:
    """Label map of ``frame`` (H x W x 3 uint8 RGB) from referring expressions (expression i -> object i + 1)."""
    if isinstance(expressions, str):
        expressions = [expressions]
    expressions = list(expressions)
    if not 1 <= len(expressions) <= 255:
        raise ValueError(f"mask_from_text needs 1..255 expressions, got {len(expressions)}")
    frame = _check_frame(frame)
    logits = referring_logits(model, tokenizer, frame, expressions, size, batch_size)
    small, margin = labels_from_logits(logits)
    h, w = frame.shape[:2]
    labels = F.interpolate(small[None, None].float(), size=(h, w), mode="nearest")[0, 0].to(torch.uint8).numpy()
    prob = torch.sigmoid(margin)  # softmax over 2 classes = sigmoid of the margin
    confidence, missing, reasons = [], [], {}
    for k in range(len(expressions)):
        own = small == k + 1
        confidence.append(float(prob[k][own].mean()) if own.any() else 0.0)
        if not (labels == k + 1).any():
            missing.append(k)
            reasons[k] = ("lost in the resize to the frame" if bool(own.any()) else
                          "outscored everywhere" if bool((margin[k] > 0).any()) else "found nothing")
    if missing:
        warnings.warn("; ".join(f"expression {k} {expressions[k]!r}: {reasons[k]}" for k in missing), stacklevel=2)
    return TextMasks(labels, confidence, missing, reasons)
