"""Optimiser and learning-rate schedules.

AdamW over parameter groups (``train.lr_scale`` scales the rate of parameters
by name prefix). Schedules (``train.lr_schedule``): ``step`` = StepLR halving
(``lr_gamma``) every ``lr_step`` epochs (published), or MultiStepLR at the
``lr_milestones`` optimiser steps; ``cosine`` = half a cosine from ``lr`` to 0
over the run's optimiser steps. An optional linear warm-up
(``train.warmup_steps``) scales the scheduler's rate for the first steps.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, lr: float, lr_scale: dict) -> list[dict]:
    """Optimiser parameter groups: ``lr * scale`` for the parameters whose names start
    with a prefix of ``lr_scale`` (the longest matching prefix wins), ``lr`` for the
    rest. A prefix that matches no parameter is an error (a typo would silently
    train at the full rate)."""
    prefixes = sorted(lr_scale, key=len, reverse=True)
    groups: dict = {}
    used = set()
    for name, p in model.named_parameters():
        hit = next((q for q in prefixes if name == q or name.startswith(q + ".")), None)
        if hit is not None:
            used.add(hit)
        groups.setdefault(hit, []).append(p)
    unused = set(lr_scale) - used
    if unused:
        raise ValueError(f"train.lr_scale: no parameter name starts with {sorted(unused)} "
                         "(names look like keyval_r4.Key.weight, encoder_q.res4.0.conv1.weight)")
    return [{"params": ps, "lr": lr * (1.0 if q is None else float(lr_scale[q])),
             "name": q or "default"} for q, ps in groups.items()]


def build_optimizer(model: nn.Module, tc) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` with ``tc.lr``, ``tc.lr_scale``, ``tc.weight_decay``
    (``tc``: a ``TrainConfig``)."""
    return torch.optim.AdamW(param_groups(model, tc.lr, tc.lr_scale), lr=tc.lr,
                             weight_decay=tc.weight_decay)


def total_steps(tc, steps_per_epoch: int) -> int:
    """Optimiser steps of a whole run: ``tc.epochs`` epochs, capped by ``tc.max_steps``."""
    total = tc.epochs * steps_per_epoch
    return min(total, tc.max_steps) if tc.max_steps else total


def cosine_factor(step: int, total: int) -> float:
    """Learning-rate factor of ``lr_schedule: cosine`` after ``step`` of ``total``
    optimiser steps: 0.5 (1 + cos(pi step / total)), 1 at step 0 and 0 at the end."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def make_scheduler(optimizer, tc, total_steps: int):
    """The learning-rate scheduler of ``tc`` -> (scheduler, stepped after every optimiser
    step (True) or at epoch ends (False)): StepLR per epoch (published), MultiStepLR at
    ``lr_milestones`` steps, or a cosine over ``total_steps``."""
    if tc.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_factor(s, total_steps)), True
    if tc.lr_milestones:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, tc.lr_milestones, tc.lr_gamma), True
    return torch.optim.lr_scheduler.StepLR(optimizer, tc.lr_step, tc.lr_gamma), False


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Warm-up factor of optimiser step ``step`` (0-based): (step+1)/N for the first
    N = ``warmup_steps`` steps, then 1."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def base_lr(optimizer) -> float:
    """The scheduler's current rate of the parameters without an lr_scale."""
    groups = optimizer.param_groups
    return next((g["lr"] for g in groups if g.get("name") == "default"), groups[0]["lr"])


def optimizer_step(optimizer, scaler, params, clip_grad: float = 0.0, factor: float = 1.0) -> None:
    """One optimiser step on the accumulated gradients, then clear them.

    ``clip_grad`` > 0 clips the gradient norm of ``params`` first (after unscaling);
    ``factor`` (the warm-up) scales every group's rate for this step only, leaving
    the scheduler's rate as it was.
    """
    if clip_grad > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(params, clip_grad)
    groups = optimizer.param_groups
    base = [g["lr"] for g in groups]
    for g in groups:
        g["lr"] *= factor
    scaler.step(optimizer)
    for g, lr in zip(groups, base):
        g["lr"] = lr
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
