"""Memory read: attention of query positions over one object's bank entries.

For object i with bank keys Kb (Ck x M) and values Vb (Cv x M), query key kq
(B x Ck x N) and value vq (B x Cv x N)::

    P = softmax_M(Kb^T kq / sqrt(Ck))    # B x M x N
    read = Vb P                          # B x Cv x N
    out = concat(read, vq)               # B x 2Cv x N

A bank stored in half precision is read outside autocast, in its own dtype: the
two products in bf16 (fp16 logits would overflow at 65504, so an fp16 bank's
logits are taken in fp32), the softmax and the read-out counts in fp32.

The query positions are processed in chunks so that no more than
``chunk_bytes`` of attention (P and its temporaries) exist at once, whatever
the bank size. On request every entry also counts the query positions whose
weight exceeds ``threshold`` (the read-out counts the bank's LFU uses); the
read returns them and never changes the bank: the caller adds them
(:meth:`FeatureBank.add_readout`).
"""
from __future__ import annotations

import math

import torch

from .bank import FeatureBank
from .config import InferenceConfig


def _chunk_len(entries: int, chunk_bytes: int, elem: int, grad: bool) -> int:
    """Query positions per chunk so that attention M x n plus temporaries fit chunk_bytes."""
    # Without autograd: one float buffer (softmax in place) + a bool mask for counting,
    # and in half precision its logits and its half copy for the product too.
    # With autograd: logits and softmax output both live (no counting during training).
    if grad:
        per_pos = entries * 2 * elem
    else:  # half precision: at most half logits, their fp32 softmax, the mask and a half copy
        per_pos = entries * (elem + 1 if elem >= 4 else 9)
    return max(1, chunk_bytes // max(per_pos, 1))


def read_object(keys: torch.Tensor, values: torch.Tensor, qk: torch.Tensor,
                chunk_bytes: int = InferenceConfig.chunk_bytes, threshold: float | None = None):
    """Read one object's bank. keys Ck x M, values Cv x M, qk B x Ck x N.

    Returns (read B x Cv x N, counts M or None). ``counts[j]`` is the number of
    (batch, query position) pairs whose attention on entry j exceeds
    ``threshold``; ``threshold=None`` skips counting. Frames of the batch are
    read one after the other, so the bank is never copied.
    """
    if keys.dtype in (torch.float16, torch.bfloat16):  # a half bank: its dtypes, not autocast's
        with torch.autocast(keys.device.type, enabled=False):
            return _read(keys, values, qk, chunk_bytes, threshold)
    return _read(keys, values, qk, chunk_bytes, threshold)


def _read(keys, values, qk, chunk_bytes: int, threshold: float | None):
    ck, m = keys.shape
    b, _, n = qk.shape
    grad = torch.is_grad_enabled() and (keys.requires_grad or qk.requires_grad or values.requires_grad)
    step = _chunk_len(m, chunk_bytes, keys.element_size(), grad)
    # M x Ck, a view; fp16 logits overflow (65504): an fp16 bank's are taken in fp32.
    kt = keys.t().float() if keys.dtype == torch.float16 else keys.t()
    q_all = (qk * (1.0 / math.sqrt(ck))).to(kt.dtype)
    counts = torch.zeros(m, dtype=torch.long, device=keys.device) if threshold is not None else None
    reads = []
    for bi in range(b):
        outs = []
        for start in range(0, n, step):
            logits = kt @ q_all[bi, :, start:start + step]  # M x n
            half = logits.dtype in (torch.float16, torch.bfloat16)  # a half bank, or autocast
            if grad:
                p = torch.softmax(logits, dim=0, dtype=torch.float32 if half else None)
            else:
                p = logits.float() if half else logits  # the softmax in fp32
                p -= p.amax(dim=0, keepdim=True)
                p.exp_()
                p /= p.sum(dim=0, keepdim=True)
            outs.append(values @ p.to(values.dtype))  # Cv x n
            if counts is not None:
                counts += (p > threshold).sum(dim=1)
            del logits, p
        reads.append(outs[0] if len(outs) == 1 else torch.cat(outs, dim=1))
    return torch.stack(reads), counts


def read_bank(bank: FeatureBank, qk: torch.Tensor, qv: torch.Tensor,
              chunk_bytes: int = InferenceConfig.chunk_bytes, count: bool = False):
    """Read every object's bank: qk B x Ck x N, qv B x Cv x N -> (B x K x 2Cv x N, counts).

    ``counts`` is None, or with ``count`` one tensor per object (M_i entries):
    how many query positions read each entry above the bank's read-out
    threshold. The bank is not changed.
    """
    outs, counts = [], []
    for i in range(bank.num_objects):
        read, c = read_object(bank.keys[i], bank.values[i], qk, chunk_bytes,
                              bank.readout_threshold if count else None)
        counts.append(c)
        outs.append(torch.cat([read, qv], dim=1))
    return torch.stack(outs, dim=1), (counts if count else None)
