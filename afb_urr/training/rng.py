"""Randomness and exact-resume state.

A resumed run continues bit for bit as the uninterrupted one would have:
augmentation is a function of (seed, epoch, index) (:class:`SeededClips`),
the data order comes from a resumable sampler
(:class:`afb_urr.training.distributed.ResumableSampler`), and the
checkpoint carries every global generator's state (:func:`rng_state`) beside
the step, batch, optimiser, scheduler and scaler. :func:`read_resumable` and
:func:`resume_warnings` check a checkpoint before it is resumed.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checkpoint import CheckpointError, read_state_dict
from ..config import Config

# Train settings that may change on resume without changing the optimisation.
RESUME_FREE = {"output_dir", "max_steps", "epochs", "num_workers", "checkpoint_steps", "log_every",
               "save_every"}


class SeededClips(Dataset):
    """Makes a dataset's random augmentation a function of (seed, epoch, index).

    Each ``__getitem__`` seeds Python's, NumPy's and torch's global generators
    from (seed, epoch, index) and restores them afterwards, so clips do not
    depend on worker count or on where a run was resumed. ``set_epoch`` is
    passed on to the dataset when it has one (``afb_urr.data`` datasets seed
    their own generator from (seed, epoch, index)).
    """

    def __init__(self, inner: Dataset, seed: int = 0):
        self.inner = inner
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        s = (self.seed * 1_000_003 + (self.epoch + 7) * 999_983 + index * 7919) % (2**32)
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)
            return self.inner[index]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global generator's state, as tensors and plain values (weights_only-loadable)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                       int(np_state[2]), int(np_state[3]), float(np_state[4]))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the generators from :func:`rng_state`'s dict (CUDA's when present and available)."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_dict(cfg: Config) -> dict:
    """The run's config as plain data, stored in checkpoints (compared on resume)."""
    return cfg.as_dict()


def read_resumable(path: str) -> dict:
    """The checkpoint dict at ``path``; CheckpointError when it lacks what a resume needs."""
    _, ckpt = read_state_dict(path)
    for key in ("step", "batch", "scheduler", "optimizer"):
        if ckpt.get(key) is None:
            raise CheckpointError(f"{path} cannot be resumed: it has no {key!r} "
                                  "(not written by this trainer); use --init to start from it")
    return ckpt


def resume_warnings(ckpt: dict, path: str, train: dict, world_size: int, batches_per_epoch: int) -> list[str]:
    """Why resuming ``ckpt`` with these settings (``train``: the train section as a dict)
    will not continue exactly as the run that wrote it: one message each."""
    out = []
    if ckpt.get("world_size", 1) != world_size:
        out.append(f"warning: {path} was written by {ckpt.get('world_size')} processes, resuming "
                   f"with {world_size}: the data order differs from an uninterrupted run")
    if ckpt.get("batches_per_epoch") not in (None, batches_per_epoch):
        out.append("warning: the training set size changed since the checkpoint was written")
    old = (ckpt.get("config") or {}).get("train") or {}
    changed = sorted(k for k in train if k in old and old[k] != train[k] and k not in RESUME_FREE)
    if changed:
        out.append("warning: resuming with train settings that differ from the checkpoint's: "
                   + ", ".join(f"{k} {old[k]!r} -> {train[k]!r}" for k in changed))
    return out
