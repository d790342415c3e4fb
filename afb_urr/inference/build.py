"""The one factory from weights, config and device to a :class:`Segmenter`.

``build_segmenter`` is what every caller uses (the CLI, the benchmarks, the
training validation, user code); ``segmenter_factory`` is the same assembly
for callers that need a fresh Segmenter per video (the dataset protocols):
the model is loaded once, on the first call.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from ..checkpoint import load_model
from ..config import Config, InferenceConfig, ModelConfig, load_config
from ..model import AFBURR
from .segmenter import Segmenter

# The sections an inference caller reads from a config file (training sections are skipped).
INFERENCE_SECTIONS = ("model", "inference")


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` as a torch.device, or the default: cuda if available, else cpu.

    Raises ValueError naming the device when it is not a device or not usable here.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device {str(name)!r} is not a torch device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name}: CUDA is not available on this machine; use cpu")
    return device


def _sections(config) -> tuple[ModelConfig, InferenceConfig]:
    """The model and inference sections of ``config``: None (defaults), a path or name
    in ``configs/``, a :class:`Config`, or an :class:`InferenceConfig`."""
    if config is None or isinstance(config, str):
        config = load_config(config, sections=INFERENCE_SECTIONS)
    if isinstance(config, Config):
        return config.model, config.inference
    if isinstance(config, InferenceConfig):
        return ModelConfig(), config
    raise TypeError(f"config must be a path, a Config or an InferenceConfig, got {type(config).__name__}")


def segmenter_factory(weights: str | nn.Module | None = None, config=None, device=None,
                      **overrides) -> Callable[[], Segmenter]:
    """A callable returning a fresh :class:`Segmenter` per call, all sharing one model.

    weights: a checkpoint path (published format; loaded on the first call), an
        :class:`AFBURR` to use as it is, or None for a randomly initialised
        network of the config's backbone.
    config: see :func:`build_segmenter`. device: see :func:`resolve_device`.
    overrides: :class:`InferenceConfig` fields (``None`` values ignored) and
        ``channels_last``.
    The config, the device and the checkpoint's existence are checked now.
    """
    model_cfg, inference = _sections(config)
    inference = inference.replace(**{k: v for k, v in overrides.items() if k != "channels_last"})
    channels_last = overrides.get("channels_last")
    device = resolve_device(device)
    if isinstance(weights, str) and not os.path.isfile(weights):
        raise ValueError(f"checkpoint not found: {weights}")
    model: list[nn.Module] = [] if weights is None or isinstance(weights, str) else [weights]

    def factory() -> Segmenter:
        if not model:
            model.append(load_model(weights, device=device) if weights is not None
                         else AFBURR(model_cfg.backbone).eval())
        return Segmenter(model[0], inference, device=device, channels_last=channels_last)
    return factory


def build_segmenter(weights: str | nn.Module | None = None, config=None, device=None,
                    **overrides) -> Segmenter:
    """A :class:`Segmenter` ready for a video.

    weights: checkpoint path, an :class:`AFBURR`, or None (random network of
        the config's backbone, e.g. for benchmarks).
    config: None (defaults), a YAML path or a name in ``configs/`` (its
        ``model`` and ``inference`` sections are read, others skipped), a
        :class:`Config` or an :class:`InferenceConfig`.
    device: e.g. "cpu", "cuda:1"; default cuda when available, else cpu.
    overrides: :class:`InferenceConfig` fields, e.g. ``budget=5000``
        (``None`` values are ignored), and ``channels_last``.
    """
    return segmenter_factory(weights, config, device, **overrides)()
