"""Joint image + mask augmentation of training clips: colour jitter, affine warp, random crops.

Every function draws its randomness from the ``numpy.random.Generator`` it is
given (the clip's generator, seeded by (seed, epoch, index)), so a clip is
reproducible in any worker. The warps are the
``torchvision.transforms.v2.functional`` kernels applied to ``tv_tensors.Image``
(bilinear, fill black) and ``tv_tensors.Mask`` (nearest, fill 0 = background)
with the same parameters. ``cfg`` is a :class:`afb_urr.data.clips.ClipConfig`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

if TYPE_CHECKING:
    from .clips import ClipConfig

Box = tuple[int, int, int, int]  # (top, left, height, width)


def jitter(img: torch.Tensor, cfg: ClipConfig, rng: np.random.Generator) -> torch.Tensor:
    """Colour jitter (brightness, contrast, saturation, hue in a random order) of a 3 x H x W image."""
    ops = []
    if cfg.brightness > 0:
        f = rng.uniform(max(0.0, 1 - cfg.brightness), 1 + cfg.brightness)
        ops.append(lambda x, f=f: TF.adjust_brightness(x, f))
    if cfg.contrast > 0:
        f = rng.uniform(max(0.0, 1 - cfg.contrast), 1 + cfg.contrast)
        ops.append(lambda x, f=f: TF.adjust_contrast(x, f))
    if cfg.saturation > 0:
        f = rng.uniform(max(0.0, 1 - cfg.saturation), 1 + cfg.saturation)
        ops.append(lambda x, f=f: TF.adjust_saturation(x, f))
    if cfg.hue > 0:
        f = rng.uniform(-cfg.hue, cfg.hue)
        ops.append(lambda x, f=f: TF.adjust_hue(x, f))
    for k in rng.permutation(len(ops)).tolist():
        img = ops[k](img)
    return img


def affine(img: tv_tensors.Image, mask: tv_tensors.Mask, cfg: ClipConfig, rng: np.random.Generator):
    """One random affine warp applied to an image (bilinear, fill black) and its mask (nearest, fill 0)."""
    h, w = img.shape[-2:]
    angle = float(rng.uniform(-cfg.affine_degrees, cfg.affine_degrees))
    tx = float(np.round(rng.uniform(-cfg.affine_translate, cfg.affine_translate) * w))
    ty = float(np.round(rng.uniform(-cfg.affine_translate, cfg.affine_translate) * h))
    scale = float(rng.uniform(*cfg.affine_scale))
    shear = float(rng.uniform(-cfg.affine_shear, cfg.affine_shear))
    kw = dict(angle=angle, translate=[tx, ty], scale=scale, shear=[shear, 0.0])
    img = TF.affine(img, interpolation=InterpolationMode.BILINEAR, fill=0, **kw)
    mask = TF.affine(mask, fill=0, **kw)
    return img, mask


def crop_window(h: int, w: int, cfg: ClipConfig, rng: np.random.Generator) -> Box:
    """A random crop window (top, left, height, width) inside an h x w image: its short
    side ``crop_scale`` x the image's, its aspect ``crop_ratio`` x the output's."""
    out_h, out_w = cfg.crop_size
    short = min(h, w) * rng.uniform(*cfg.crop_scale)
    ratio = (out_w / out_h) * math.exp(rng.uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])))
    if ratio >= 1:
        ch, cw = short, short * ratio
    else:
        ch, cw = short / ratio, short
    ch = int(min(max(round(ch), 1), h))
    cw = int(min(max(round(cw), 1), w))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return top, left, ch, cw


def crop_mask(mask: tv_tensors.Mask, box: Box, size) -> torch.Tensor:
    """``mask`` (1 x H x W labels) cropped to ``box`` and resized (nearest) to ``size`` (H, W)."""
    return TF.resized_crop(mask, *box, size=list(size))


def crop_image(img: tv_tensors.Image, box: Box, size) -> torch.Tensor:
    """``img`` (3 x H x W uint8) cropped to ``box`` and resized (bilinear, antialiased) to
    ``size``: 3 x h x w float in [0, 1]."""
    out = TF.resized_crop(img, *box, size=list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return out.as_subclass(torch.Tensor).float().div_(255.0)


def acceptable_crop(cropped: torch.Tensor, first: bool, cfg: ClipConfig) -> bool:
    """Crop test: background above ``min_background``; on the first frame also an object kept."""
    counts = torch.bincount(cropped.reshape(-1).long(), minlength=256)
    total = cropped.numel()
    if counts[0].item() <= cfg.min_background * total:
        return False
    return (not first) or bool((counts[1:] >= cfg.min_object_pixels).any())


def choose_crop(mask: tv_tensors.Mask, first: bool, cfg: ClipConfig, rng: np.random.Generator) -> Box:
    """A crop window for a frame with labels ``mask``: up to ``crop_tries`` random windows
    until one passes :func:`acceptable_crop`; when none does, the whole frame on the
    clip's first frame (it keeps every object), the last window tried on the others."""
    h, w = mask.shape[-2:]
    box = None
    for _ in range(cfg.crop_tries):
        box = crop_window(h, w, cfg, rng)
        if acceptable_crop(crop_mask(mask, box, cfg.crop_size), first, cfg):
            return box
    return (0, 0, h, w) if first else box
