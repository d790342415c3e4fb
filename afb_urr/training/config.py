"""The training sections of a config (``train:``, ``data:``, ``val:``).

Their schema lives with every other section in :mod:`afb_urr.config`; this
module names them for training code.
"""
from __future__ import annotations

from ..config import AMP_MODES, LR_SCHEDULES, Config, DataConfig, TrainConfig, ValConfig, load_config

__all__ = ["AMP_MODES", "LR_SCHEDULES", "DataConfig", "TrainConfig", "ValConfig", "train_sections",
           "load_train_config"]


def train_sections(cfg: Config) -> tuple[TrainConfig, DataConfig, ValConfig]:
    """The ``train``, ``data`` and ``val`` sections of ``cfg``."""
    return cfg.train, cfg.data, cfg.val


def load_train_config(path: str) -> Config:
    """:func:`afb_urr.config.load_config` of a training config (every section)."""
    return load_config(path)
