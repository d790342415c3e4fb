"""What a run costs the machine: resident memory now and at its peak, CUDA peak allocation."""
from __future__ import annotations

import resource

import torch


def host_memory_kib() -> tuple[int, int]:
    """(current, peak) resident set of this process in KiB: VmRSS / VmHWM from
    /proc/self/status, ``ru_maxrss`` where /proc is missing."""
    rss = hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    if rss is None or hwm is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        rss, hwm = (rss if rss is not None else peak), (hwm if hwm is not None else peak)
    return rss, hwm


def peak_memory(device=None) -> str:
    """Peak memory as text: CUDA ``max_memory_allocated`` on a CUDA device, else the
    process's peak resident set."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.max_memory_allocated(dev) / 2 ** 20:.1f} MiB (CUDA, allocated)"
    return f"{host_memory_kib()[1] / 1024:.1f} MiB (host, peak resident set)"
