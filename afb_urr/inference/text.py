"""Objects from sentences: a referring model's masks become annotations to propagate.

:func:`text_objects` runs :func:`afb_urr.referring.mask_from_text` on one frame
and numbers the objects after the ones a video already has; :func:`add_text`
gives them to a :class:`VideoSession` at frame t (``VideoSession.add_text``);
:func:`load_referring` loads a referring model with its vocabulary (the CLI's
``--text`` and the app's text box).
An expression that finds nothing gets no object and is reported (a warning
from ``mask_from_text``, and ``None`` in ``ids``); when none finds anything
nothing is added and a ValueError names each expression and why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..referring import TextMasks, mask_from_text

MAX_OBJECT_ID = 254  # the Segmenter's largest object id


@dataclass
class TextObjects:
    """Objects made from expressions at one frame.

    ids: the object id of each expression, None for one that found nothing;
    labels: H x W uint8 label map holding those ids; masks: the referring result
    (expression i -> label i + 1, per-expression confidence, reasons for misses).
    """
    ids: list[int | None]
    labels: np.ndarray
    masks: TextMasks


def load_referring(weights: str, vocab: str | None, device):
    """(model in eval mode on ``device``, tokenizer), with one-line errors for a missing file,
    an AFB-URR checkpoint, or a missing / mismatched vocabulary."""
    from ..referring import load_referring_model, load_tokenizer
    from ..referring.loading import vocab_file_for
    from ..referring.prompt import check_vocabulary

    if not weights:
        raise ValueError("--referring-weights is required with --text: a LAVT checkpoint")
    if vocab is None:
        beside = vocab_file_for(weights)
        if not os.path.isfile(beside):
            raise ValueError(f"--vocab is required: no vocabulary beside {weights} ({beside}); give the "
                             "vocab.txt of the model's BERT (bert-base-uncased for released LAVT files)")
        vocab = beside
    tokenizer = load_tokenizer(vocab)
    model = load_referring_model(weights, device)
    check_vocabulary(model, tokenizer)
    return model, tokenizer


def text_objects(model, tokenizer, frame: np.ndarray, expressions, first_id: int = 1) -> TextObjects:
    """Expression i -> object ``first_id + i`` on ``frame`` (H x W x 3 uint8 RGB)."""
    if isinstance(expressions, str):
        expressions = [expressions]
    expressions = list(expressions)
    if first_id < 1 or first_id + len(expressions) - 1 > MAX_OBJECT_ID:
        raise ValueError(f"{len(expressions)} new objects from id {first_id} exceed the largest object id "
                         f"{MAX_OBJECT_ID}")
    masks = mask_from_text(model, tokenizer, frame, expressions)
    if len(masks.missing) == len(expressions):
        raise ValueError("no object found for any expression: " + "; ".join(
            f"{expressions[k]!r}: {masks.reasons[k]}" for k in masks.missing))
    labels = np.where(masks.labels > 0, masks.labels.astype(np.int64) + first_id - 1, 0).astype(np.uint8)
    ids = [None if k in masks.missing else first_id + k for k in range(len(expressions))]
    return TextObjects(ids, labels, masks)


def add_text(session, t: int, expressions, model, tokenizer) -> TextObjects:
    """Give ``session`` one new object per expression found at frame t (ids after its objects)."""
    t = session._check_t(t)
    first = max(session.objects, default=0) + 1
    found = text_objects(model, tokenizer, session.frames[t], expressions, first)
    session.add_mask(t, found.labels)
    return found
