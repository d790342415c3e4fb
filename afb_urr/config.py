"""YAML configs -> dataclasses. The one place configs are read.

A config file has sections (``model``, ``inference``, and the training
sections); each maps onto one dataclass below. Unknown sections or keys are
errors that name the offending key, so a typo never silently falls back to a
default.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


@dataclass
class ModelConfig:
    """Network shape: the ResNet trunk of both encoders."""
    backbone: str = "resnet50"


@dataclass
class InferenceConfig:
    """Per-video memory (Adaptive Feature Bank) and read-out settings."""
    budget: int = 300000             # bank entries over all objects (background included)
    update_rate: float = 0.1         # r in the merge: 0.1 DAVIS, 0.05 YouTube-VOS / long videos
    merge_threshold: float = 0.95    # cosine similarity above which a new feature merges
    readout_threshold: float = 1e-3  # attention weight above which a read counts for an entry
    chunk_bytes: int = 256 * 2**20   # most bytes of attention one memory read materialises
    eviction: str = "threshold"      # "threshold" (published LFU loop) or "minimal"
    new_object: str = "reset"        # "reset" (published) or "keep" earlier memory


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    # Extra sections registered by other parts of the package (training, data):
    # name -> dataclass instance.
    extra: dict[str, Any] = field(default_factory=dict)


# Section name -> dataclass type. Training code registers its sections with
# ``register_section`` so that this module stays the one reader.
_SECTIONS: dict[str, type] = {"model": ModelConfig, "inference": InferenceConfig}


def register_section(name: str, cls: type) -> None:
    """Make ``name:`` a valid top-level section parsed into dataclass ``cls``."""
    _SECTIONS[name] = cls


def _build(cls: type, values: dict[str, Any], where: str):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return cls(**values)


def resolve_path(path: str) -> str:
    """Accept a path, or a bare name such as ``davis17`` found in ``configs/``."""
    if os.path.isfile(path):
        return path
    for candidate in (os.path.join(CONFIG_DIR, path), os.path.join(CONFIG_DIR, path + ".yaml")):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"config not found: {path!r} (looked also in {CONFIG_DIR})")


def load_config(path: str | None = None) -> Config:
    """Read a YAML config into a :class:`Config`; ``None`` gives the defaults."""
    cfg = Config()
    if path is None:
        return cfg
    path = resolve_path(path)
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping of sections")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; valid: {sorted(_SECTIONS)}")
    for name, values in raw.items():
        obj = _build(_SECTIONS[name], values, f"{path}: section '{name}'")
        if name == "model":
            cfg.model = obj
        elif name == "inference":
            cfg.inference = obj
        else:
            cfg.extra[name] = obj
    return cfg
