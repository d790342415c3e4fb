"""How a training run's network starts: from a checkpoint's weights, or from scratch.

From scratch (no ImageNet trunks) three optional helpers, all off in the
published configs, give an untrained network a usable starting point:
``train.same_trunk_init`` (:func:`copy_query_trunk`), ``train.bn_init_clips``
(BatchNorm statistics averaged over clips, :func:`afb_urr.training.batchnorm.calibrate`)
and ``train.decoder_init_std`` (:func:`normalise_decoder`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..checkpoint import CheckpointError, infer_backbone, read_state_dict
from ..model import AFBURR
from .batchnorm import calibrate, set_train_mode, tracking_without_grad
from .rng import SeededClips
from .step import ClipStep, check_clip


def load_weights(model: AFBURR, path: str) -> None:
    """Load a checkpoint's weights (any published-format file) into ``model``, strictly."""
    state, _ = read_state_dict(path)
    backbone = infer_backbone(state)
    if backbone != model.backbone:
        raise CheckpointError(f"{path} holds a {backbone} network but the config asks for "
                              f"{model.backbone} (model.backbone)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: {e}") from None


def start_model(backbone: str, pretrained: bool, weights: str | None = None) -> AFBURR:
    """The network a run starts from: ``weights`` (a checkpoint path) loaded strictly, or a
    fresh one (ImageNet trunks with ``pretrained``)."""
    if weights:
        model = AFBURR(backbone)
        load_weights(model, weights)
        return model
    return AFBURR(backbone, pretrained=pretrained)


@torch.no_grad()
def normalise_decoder(step: ClipStep, sample: dict, device, output_std: float = 1.0) -> list[float]:
    """Data-dependent init of the decoder (LSUV-like) for a network trained from scratch.

    One forward pass over ``sample``: each decoder conv, in the order it runs,
    has its weight and bias divided by the std of its output, so that every
    conv outputs unit std; the two output convs (``pred2``, ``local_pred2``)
    are scaled to ``output_std`` instead. Without it the Kaiming-initialised
    decoder of an untrained network has activations with a std in the tens and
    logits in the hundreds: probabilities saturate, the clamped logits pass no
    gradient, and the first optimiser steps can kill the network for good.
    Returns the scale applied to each conv, in execution order.
    """
    dec = step.model.decoder
    last = {id(dec.pred2), id(dec.local_pred2)}
    scales: list[float] = []
    done: set[int] = set()

    def hook(mod, inp, out):
        if id(mod) in done:
            return None
        done.add(id(mod))
        target = output_std if id(mod) in last else 1.0
        scale = target / max(out.float().std().item(), 1e-12)
        mod.weight.mul_(scale)
        if mod.bias is not None:
            mod.bias.mul_(scale)
        scales.append(scale)
        return out * scale  # later layers see the rescaled output in this same pass

    convs = [m for m in dec.modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(hook) for m in convs]
    try:
        frames, masks = check_clip(sample)
        with tracking_without_grad():  # "track" BatchNorm: statistics of this clip first
            step(frames.to(device), masks.to(device))
    finally:
        for h in handles:
            h.remove()
    if len(done) != len(convs):
        raise RuntimeError(f"decoder init: {len(convs) - len(done)} decoder convs did not run")
    return scales


@torch.no_grad()
def copy_query_trunk(model: AFBURR) -> int:
    """Give the memory encoder's trunk (stem, res2..res4) the query encoder's weights.

    ImageNet initialisation starts both trunks from the same weights, so that
    memory and query keys of the same content match from the first step. Two
    independent random trunks give unrelated keys that the network must first
    learn to align; starting from one random trunk copied into both keeps the
    published starting point's symmetry when training from scratch. The mask
    convs (``conv1_m``, ``conv1_o``) keep their own random init. Returns the
    number of tensors copied.
    """
    src = model.encoder_q.state_dict()
    missing, unexpected = model.encoder_m.load_state_dict(src, strict=False)
    if unexpected or set(missing) != {"conv1_m.weight", "conv1_o.weight"}:
        raise RuntimeError(f"memory and query trunks differ beyond the mask convs: missing {missing}, "
                           f"unexpected {unexpected}")
    return len(src)


def from_scratch_init(step: ClipStep, clips: Dataset, tc, device, log: Callable[[str], None]) -> None:
    """The from-scratch helpers that ``tc`` (a ``TrainConfig``) turns on, in order: trunk
    copy, BatchNorm calibration, decoder normalisation. ``clips``: the training set
    (its clips are drawn with seeds of their own, so the run's data are unchanged)."""
    model = step.model
    if tc.same_trunk_init and not tc.pretrained:
        n = copy_query_trunk(model)
        log(f"memory trunk initialised as a copy of the query trunk ({n} tensors)")
    if tc.bn_init_clips > 0 and tc.batchnorm != "train":
        seeded = SeededClips(clips, tc.seed + 17)

        def run(i):
            frames, masks = check_clip(seeded[i])
            step(frames.to(device), masks.to(device))

        with torch.no_grad():
            used = calibrate(model, run, range(min(tc.bn_init_clips, len(seeded))))
        log(f"BatchNorm statistics averaged over {used} clips")
    if tc.decoder_init_std > 0:
        sample = SeededClips(clips, tc.seed + 18)[0]
        set_train_mode(model, tc.batchnorm)
        scales = normalise_decoder(step, sample, device, tc.decoder_init_std)
        log(f"decoder convs rescaled to unit output std (factors {min(scales):.3g}.."
            f"{max(scales):.3g}); logits std {tc.decoder_init_std}")
