"""Many videos over the processes of a ``torchrun`` launch: which process segments which.

``torchrun --nproc_per_node N tools/infer.py --dataset ...`` (or ``--videos``)
starts N processes; :func:`shard_from_env` reads RANK / WORLD_SIZE / LOCAL_RANK,
joins the process group (gloo on CPU, NCCL on CUDA, each process on GPU
LOCAL_RANK) and returns this process's :class:`Shard`. :func:`balanced_split`
deals the videos out longest first, each to the process with the fewest frames
so far, so the processes finish close together; every process computes the
same split from the same lengths, without talking. A video is segmented whole
by one process with a fresh Segmenter, so the outputs are those of one process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.distributed as dist


def balanced_split(lengths: Mapping[str, int], world_size: int) -> list[list[str]]:
    """Names per rank: longest first (ties: by name), each to the least-loaded rank (ties: lowest)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    parts: list[list[str]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for name in sorted(lengths, key=lambda n: (-lengths[n], n)):
        r = min(range(world_size), key=lambda i: (load[i], i))
        parts[r].append(name)
        load[r] += int(lengths[name])
    return parts


@dataclass
class Shard:
    """This process among ``world_size`` (one process: rank 0 of 1, no process group)."""
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, lengths: Mapping[str, int]) -> list[str]:
        """This rank's names of ``lengths`` (name -> frames), in the order given."""
        mine = set(balanced_split(lengths, self.world_size)[self.rank])
        return [n for n in lengths if n in mine]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def shard_from_env(device: torch.device) -> tuple[Shard, torch.device]:
    """This process's Shard and device under torchrun (else rank 0 of 1 on ``device``).

    With CUDA each process takes GPU LOCAL_RANK and the NCCL backend; on CPU gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world <= 1:
        return Shard(), device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kw = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **kw)
    return Shard(rank, world), device
