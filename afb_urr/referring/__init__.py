"""Text -> mask: LAVT referring segmentation (Swin + PWAM + gates + decoder + BERT).

``LAVT`` is the published ``lavt_one`` network; ``load_referring_model`` reads the
released ``lavt_one`` and ``lavt`` files; ``WordPieceTokenizer`` encodes an
expression as published; ``mask_from_text`` turns sentences into a label map.
Names are imported lazily so that the tokenizer does not load transformers.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "LAVT": "afb_urr.referring.network",
    "count_parameters": "afb_urr.referring.network",
    "NUM_TOKENS": "afb_urr.referring.network",
    "load_referring_model": "afb_urr.referring.loading",
    "save_referring_model": "afb_urr.referring.loading",
    "ReferringCheckpointError": "afb_urr.referring.loading",
    "WordPieceTokenizer": "afb_urr.referring.tokenizer",
    "load_tokenizer": "afb_urr.referring.tokenizer",
    "VocabularyError": "afb_urr.referring.tokenizer",
    "mask_from_text": "afb_urr.referring.prompt",
    "TextMasks": "afb_urr.referring.prompt",
    "preprocess": "afb_urr.referring.prompt",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'afb_urr.referring' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
