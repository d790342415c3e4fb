"""Fold frozen BatchNorm into the preceding convolutions for inference.

A BatchNorm2d in eval mode is an affine map per channel,
``y = (x - mean) / sqrt(var + eps) * gamma + beta = s * x + t``. When x is a
convolution's output, ``s`` scales that convolution's filters and ``t`` (plus
``s`` times its bias) becomes its bias, so the BatchNorm costs nothing at
inference. Frozen BatchNorm (the published recipe trains with it in eval mode)
is exactly such a map.

Pairs folded:
- ``convN`` followed by ``bnN`` as siblings in one module (the ResNet stem and
  the torchvision BasicBlock / Bottleneck: conv1/bn1, conv2/bn2, conv3/bn3);
- ``Conv2d`` directly followed by ``BatchNorm2d`` inside an ``nn.Sequential``
  (the ResNet ``downsample`` and any such pair elsewhere, e.g. a decoder);
- the memory encoder's stem, whose ``bn1`` follows the SUM
  ``conv1(frame) + conv1_m(mask) + conv1_o(1 - mask)``: every term is scaled
  by ``s``; the shift goes to ``conv1`` only.
A BatchNorm without running statistics is left as it is.
"""
from __future__ import annotations

import copy
import re

import torch
from torch import nn

# Extra convolutions whose outputs are summed with conv1's before bn1 (the memory encoder).
_STEM_TERMS = ("conv1_m", "conv1_o")


def _scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (s, t) with bn(x) == s * x + t in eval mode, computed in float64."""
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    s = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.double()
    t = -mean * s
    if bn.bias is not None:
        t = t + bn.bias.double()
    return s, t


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.running_mean is not None and bn.running_var is not None
            and conv.out_channels == bn.num_features)


@torch.no_grad()
def _scale_conv(conv: nn.Conv2d, s: torch.Tensor, t: torch.Tensor | None) -> None:
    """conv <- s * conv + t in place (weights keep their memory format); t=None: no bias change."""
    w = conv.weight
    conv.weight.copy_((w.double() * s.view(-1, 1, 1, 1)).to(w.dtype))
    if t is None:
        if conv.bias is not None:
            conv.bias.copy_((conv.bias.double() * s).to(conv.bias.dtype))
        return
    b = t if conv.bias is None else conv.bias.double() * s + t
    conv.bias = nn.Parameter(b.to(device=w.device, dtype=w.dtype), requires_grad=w.requires_grad)


def _fold_named_pairs(module: nn.Module) -> int:
    """Fold convN/bnN siblings of ``module`` (and the memory stem's extra terms)."""
    folded = 0
    children = dict(module.named_children())
    for name, bn in children.items():
        m = re.fullmatch(r"bn(\d+)", name)
        conv = children.get(f"conv{m.group(1)}") if m else None
        if conv is None or not _foldable(conv, bn):
            continue
        s, t = _scale_shift(bn)
        _scale_conv(conv, s, t)
        if name == "bn1":
            for extra in _STEM_TERMS:
                if isinstance(children.get(extra), nn.Conv2d):
                    _scale_conv(children[extra], s, None)
        setattr(module, name, nn.Identity())
        folded += 1
    return folded


def _fold_sequential(seq: nn.Sequential) -> int:
    folded = 0
    names = list(seq._modules)
    for a, b in zip(names, names[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if _foldable(conv, bn):
            s, t = _scale_shift(bn)
            _scale_conv(conv, s, t)
            seq._modules[b] = nn.Identity()
            folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of ``model`` with every foldable BatchNorm2d folded into
    the convolution before it and replaced by ``nn.Identity``. ``model`` is not modified.

    For inference only: the copy's state_dict lacks the BatchNorm entries and
    training it would not train BatchNorm. Outputs equal the eval-mode model's up
    to float rounding (the fold is computed in float64).
    """
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
        _fold_named_pairs(module)
    return folded


def count_batchnorm(model: nn.Module) -> int:
    """Number of BatchNorm2d layers left in ``model`` (0 after a complete fold)."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
