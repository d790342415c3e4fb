"""Training AFB-URR: one clip per step, as published.

step       the training forward and loss of one clip (ClipStep, check_clip, clip_loss)
optim      AdamW parameter groups (lr_scale), schedules (StepLR, MultiStepLR, cosine), warm-up
rng        seeded augmentation (SeededClips), generator state, checks for an exact resume
init       starting weights: load_weights, from-scratch helpers (copy_query_trunk, normalise_decoder)
batchnorm  frozen / train / track BatchNorm, statistics calibration
loss       cross-entropy + uncertainty loss
logs       log.csv, val.csv, TensorBoard, progress bar
validate   J&F on held-out videos during and after training
distributed  torchrun process group, resumable per-rank sampler
config     the train / data / val config sections
loop       Trainer: the loop that puts these together

The names below are imported lazily (``from afb_urr.training import Trainer``).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Trainer": "loop",
    "ClipStep": "step", "check_clip": "step", "clip_loss": "step",
    "param_groups": "optim", "make_scheduler": "optim", "cosine_factor": "optim",
    "SeededClips": "rng", "rng_state": "rng", "set_rng_state": "rng",
    "load_weights": "init", "copy_query_trunk": "init", "normalise_decoder": "init",
    "vos_loss": "loss", "uncertainty_loss": "loss",
    "Scores": "validate", "evaluate": "validate", "build_val_videos": "validate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
