"""How BatchNorm layers behave during training.

- ``frozen`` (published): eval mode throughout; running statistics (ImageNet's
  when the trunks are ImageNet-initialised) neither used from the batch nor
  updated. Affine weights still learn.
- ``train``: ordinary training mode (batch statistics, running averages
  updated). With one clip per step the batch statistics are those of one
  video, far from the running averages used at inference.
- ``track``: the forward pass uses the running statistics, exactly as at
  inference, and before each forward the running statistics move towards the
  batch's (no gradient through them). For trunks trained from scratch: the
  statistics follow the growing activations, and what is trained is what is
  evaluated.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..config import BN_MODES  # noqa: F401  (the modes' one definition)

_HOOK_ATTR = "_afb_urr_track_hook"


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def _track(bn: nn.modules.batchnorm._BatchNorm, inputs) -> None:
    """Move running mean / var towards the batch: x N x C x ... .

    The variance is taken around the running mean, so that its average over
    batches is the population variance (differences between batch means
    included). The rate is max(momentum, 1 / (batches seen + 1)): a cumulative
    average over the first 1 / momentum batches, then an exponential one.
    """
    if not bn.track_running_stats or bn.running_mean is None:
        return
    x = inputs[0].detach().float().transpose(0, 1).reshape(bn.num_features, -1)
    n = int(bn.num_batches_tracked)
    rate = max(bn.momentum if bn.momentum is not None else 0.0, 1.0 / (n + 1))
    mean = x.mean(dim=1)
    centre = mean if n == 0 else bn.running_mean.float()
    var = (x - centre[:, None]).pow(2).mean(dim=1)
    bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), rate)
    bn.running_var.lerp_(var.to(bn.running_var.dtype), rate)
    bn.num_batches_tracked += 1


def set_train_mode(model: nn.Module, mode: str = "frozen") -> nn.Module:
    """``model.train()`` with BatchNorm handled as ``mode`` ("frozen", "train", "track").

    In ``track`` mode a forward pre-hook is installed on every BatchNorm (once);
    it updates the statistics only in forward passes that record gradients
    (training steps), or inside :func:`tracking_without_grad`; inference
    (no_grad / inference_mode) never changes them, and :func:`stop_tracking`
    turns the hooks off.
    """
    if mode not in BN_MODES:
        raise ValueError(f"BatchNorm mode must be one of {BN_MODES}, got {mode!r}")
    model.train()
    for bn in batchnorms(model):
        if mode in ("frozen", "track"):
            bn.eval()
        bn._afb_urr_tracking = mode == "track"
        if mode == "track" and not hasattr(bn, _HOOK_ATTR):
            setattr(bn, _HOOK_ATTR, bn.register_forward_pre_hook(_maybe_track))
    return model


_FORCE = [False]


def _maybe_track(bn, inputs):
    if getattr(bn, "_afb_urr_tracking", False) and (torch.is_grad_enabled() or _FORCE[0]):
        _track(bn, inputs)


@contextmanager
def tracking_without_grad():
    """Let ``track`` mode update statistics in no-grad forward passes too (initialisation)."""
    _FORCE[0] = True
    try:
        yield
    finally:
        _FORCE[0] = False


def stop_tracking(model: nn.Module) -> None:
    """Turn the ``track`` hooks off (e.g. before validation)."""
    for bn in batchnorms(model):
        bn._afb_urr_tracking = False


@torch.no_grad()
def calibrate(model: nn.Module, run, samples) -> int:
    """Set every BatchNorm's running statistics to averages over ``samples``.

    For trunks trained from scratch, whose statistics are the identity (mean 0,
    var 1): the un-normalised activations of a random ResNet grow with depth
    and differ between videos by large factors. The statistics are reset, then
    each ``run(sample)`` forward pass (BatchNorm in eval mode, so each layer sees
    inputs normalised by the statistics gathered so far) adds to a cumulative
    average. Returns the number of samples used.
    """
    bns = batchnorms(model)
    saved = [(bn.momentum, bn.training) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # rate 1 / (n + 1): a cumulative average
        bn.eval()
    handles = [bn.register_forward_pre_hook(lambda m, inputs: _track(m, inputs)) for bn in bns]
    n = 0
    try:
        for sample in samples:
            run(sample)
            n += 1
    finally:
        for h in handles:
            h.remove()
        for bn, (momentum, training) in zip(bns, saved):
            bn.momentum = momentum
            bn.train(training)
    return n
