"""Multi-process training setup for ``torchrun``: process group, rank helpers, sampler.

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs
in one process. NCCL is used on CUDA, gloo on CPU.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistInfo:
    """Where this process stands: rank among world_size, local_rank on its node, its device."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistInfo:
    """Initialise the process group when launched by ``torchrun`` and pick the device.

    device: "cpu", "cuda" or None (CUDA when available). With CUDA each process
    uses GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kw = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **kw)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup() -> None:
    """Destroy the process group if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def mean_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """All-reduce mean of a small tensor (for logging the loss of every rank)."""
    if not info.distributed:
        return values
    v = values.detach().clone()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / info.world_size


class ResumableSampler(Sampler[int]):
    """Per-rank shuffled indices, a fresh permutation per epoch, that can start mid-epoch.

    Like ``DistributedSampler`` (seeded by ``seed + epoch``, padded to a multiple
    of the world size, rank r takes every world_size-th index from r), plus
    ``set_epoch(epoch, start)`` that skips this rank's first ``start`` indices
    so a resumed run sees exactly the clips it would have seen.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True):
        if length < 1:
            raise ValueError("the training set is empty")
        self.length = length
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0
        self.per_rank = math.ceil(length / world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def indices(self) -> list[int]:
        """This rank's full index list for the current epoch."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        total = self.per_rank * self.world_size
        while len(order) < total:  # pad by repeating, as DistributedSampler does
            order += order[:total - len(order)]
        return order[self.rank:total:self.world_size]

    def __iter__(self):
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start
