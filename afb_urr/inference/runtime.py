"""How a Segmenter runs its network: the compute precision and the inference copy.

Precision ("fp32", "bf16", "fp16"): the encoders and the decoder run under
``torch.autocast`` in the chosen dtype and the bank stores its features in it;
the read-out's softmax and the bank's merge arithmetic stay in fp32 (see
``readout.read_object`` and ``FeatureBank.absorb``).

The inference copy: the Segmenter never changes the model it is given. It runs a
copy on its device, in eval mode, with frozen BatchNorm folded into the
convolutions (``model.fold_batchnorm``), channels-last on request and, with
``compile``, ``torch.compile`` on the forward of the encoders, the key/value head
and the decoder (``dynamic=False``: one frame size per video, so shapes are
static; the read-out, whose bank grows every frame, stays eager between them).
The copy is made once per model and settings and reused while the model's
parameters are unchanged (a session's many Segmenters share one compiled copy).
"""
from __future__ import annotations

import contextlib
import copy
import weakref

import torch
from torch import nn

from ..config import PRECISIONS
from ..model import fold_batchnorm

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILED = ("encoder_q", "encoder_m", "keyval_r4", "decoder")  # submodules whose forward is compiled

# model -> {settings: (parameter fingerprint, inference copy)}
_copies: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype of a precision name; ValueError naming the choices for another name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return DTYPES[precision]


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (none for fp32)."""
    dtype = compute_dtype(precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _fingerprint(model: nn.Module):
    """Storage and version of every parameter and buffer: changes when the weights are
    replaced or updated in place (an optimiser step, ``load_state_dict``); None when
    the model's tensors track no versions (made under inference mode)."""
    try:
        return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))
    except RuntimeError:
        return None


def _make_copy(model: nn.Module, device: torch.device, channels_last: bool, fold: bool,
               compile: bool) -> nn.Module:
    with torch.no_grad():
        net = fold_batchnorm(model) if fold else copy.deepcopy(model).eval()
    net = net.to(device).eval().requires_grad_(False)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if compile:
        for name in COMPILED:
            part = getattr(net, name)
            part.forward = torch.compile(part.forward, dynamic=False)
    return net


def inference_copy(model: nn.Module, device: torch.device, channels_last: bool = False,
                   fold: bool = True, compile: bool = False) -> nn.Module:
    """The copy of ``model`` a Segmenter computes with (see the module docstring);
    ``model`` itself is not changed."""
    key = (str(device), bool(channels_last), bool(fold), bool(compile))
    stamp = _fingerprint(model)
    known = _copies.get(model, {}).get(key)
    if known is not None and stamp is not None and known[0] == stamp:
        return known[1]
    net = _make_copy(model, device, channels_last, fold, compile)
    if stamp is not None:
        _copies.setdefault(model, {})[key] = (stamp, net)
    return net
