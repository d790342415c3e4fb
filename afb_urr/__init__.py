"""afb-urr: video object segmentation with an Adaptive Feature Bank and
Uncertain-Region Refinement (AFB-URR, NeurIPS 2020).

The top-level names are imported lazily, so that light submodules
(``afb_urr.evaluation``, ``afb_urr.io``) do not pay for loading torch models.
The README's Architecture section maps the package; ``afb_urr.inference``
holds everything that runs a model over videos (``build_segmenter``).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AFBURR": "afb_urr.model",
    "FeatureBank": "afb_urr.bank",
    "Segmenter": "afb_urr.inference.segmenter",
    "StepResult": "afb_urr.inference.segmenter",
    "build_segmenter": "afb_urr.inference.build",
    "load_model": "afb_urr.checkpoint",
    "save_checkpoint": "afb_urr.checkpoint",
    "load_config": "afb_urr.config",
    "InferenceConfig": "afb_urr.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'afb_urr' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
