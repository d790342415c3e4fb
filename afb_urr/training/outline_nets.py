"""The networks of outline pretraining: a CNN teacher, the LAVT trunk with dense heads, their losses.

Both map a frame (B, 3, H, W) to per-pixel outline-kind logits (B, 4, H, W:
background and :data:`afb_urr.data.outline.OUTLINE_KINDS`) from four maps at
strides 4, 8, 16 and 32 (the Swin stages' grids), each through a 1 x 1 head,
upsampled and summed. The trunk's four maps can also be fitted to the
teacher's through 1 x 1 adapters (feature distillation, as FitNets): a small
CNN learns outlines from these frames several times faster than the light
window-attention trunk, and the hint speeds the trunk up.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..referring import LAVT

NUM_CLASSES = 4  # background + three outline kinds


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class NormConv(nn.Module):
    """LayerNorm over channels (GroupNorm of one group), then a 1 x 1 convolution."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm, self.conv = nn.GroupNorm(1, c_in), nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x))


def dense_logits(heads: nn.ModuleList, maps: list[torch.Tensor], size) -> torch.Tensor:
    """Sum over stages of head_i(map_i) upsampled (bilinear) to ``size``: (B, 4, H, W)."""
    return sum(F.interpolate(h(m), size=tuple(size), mode="bilinear", align_corners=False)
               for h, m in zip(heads, maps))


class OutlineTeacher(nn.Module):
    """3 x 3 convolutions with BatchNorm, two per stride (the stem three), maps of ``widths``
    channels at strides 4, 8, 16, 32. image (B, 3, H, W) -> (logits (B, 4, H, W), four maps)."""

    def __init__(self, widths=(32, 64, 96, 128)):
        super().__init__()
        w = [int(v) for v in widths]
        if len(w) != 4 or min(w) < 1:
            raise ValueError(f"outline teacher widths must be 4 positive numbers, got {widths}")
        self.widths = tuple(w)
        self.stages = nn.ModuleList([
            nn.Sequential(_conv_bn(3, 16, 2), _conv_bn(16, 16, 1), _conv_bn(16, w[0], 2), _conv_bn(w[0], w[0], 1)),
            *(nn.Sequential(_conv_bn(w[i - 1], w[i], 2), _conv_bn(w[i], w[i], 1)) for i in range(1, 4))])
        self.heads = nn.ModuleList(nn.Conv2d(c, NUM_CLASSES, 1) for c in w)

    def maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], image
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, image: torch.Tensor):
        maps = self.maps(image)
        return dense_logits(self.heads, maps, image.shape[-2:]), maps


class OutlineTrunk(nn.Module):
    """A LAVT's Swin trunk without language (:meth:`LanguageAwareSwin.visual_maps`) with a
    dense head per stage, and 1 x 1 adapters to a teacher's maps of ``teacher_widths``.
    Only the trunk, heads and adapters get gradients; the LAVT's other parts stay as built
    (what :func:`afb_urr.training.outline.graft` does with them is its choice)."""

    def __init__(self, lavt: LAVT, teacher_widths=(32, 64, 96, 128)):
        super().__init__()
        self.lavt = lavt
        dims = [lavt.backbone.spec.embed_dim << i for i in range(4)]
        self.heads = nn.ModuleList(NormConv(c, NUM_CLASSES) for c in dims)
        self.adapters = nn.ModuleList(NormConv(c, int(t)) for c, t in zip(dims, teacher_widths))

    def forward(self, image: torch.Tensor):
        maps = self.lavt.backbone.visual_maps(image)
        return dense_logits(self.heads, maps, image.shape[-2:]), maps


def distill_loss(adapters: nn.ModuleList, maps: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean over stages of mse(adapter_i(map_i), target_i) / var(target_i): each stage counts
    alike whatever its teacher map's scale."""
    losses = [F.mse_loss(a(m), t) / t.var().clamp_min(1e-6) for a, m, t in zip(adapters, maps, targets)]
    return torch.stack(losses).mean()


@torch.no_grad()
def object_hits(logits: torch.Tensor, label: torch.Tensor, instance: torch.Tensor, min_pixels: int = 4):
    """Objects whose outline kind the logits name: (right, total) over every object of
    ``instance`` (B, H, W) with at least ``min_pixels`` pixels; an object's kind is the
    largest of its pixels' summed kind logits (background left out)."""
    right = total = 0
    for b in range(instance.shape[0]):  # per frame: sums over each object's pixels in one index_add
        inst, lab = instance[b].flatten(), label[b].flatten()
        n = int(inst.max()) + 1
        sums = torch.zeros(n, logits.shape[1] - 1).index_add_(0, inst, logits[b, 1:].flatten(1).T.float())
        kinds = torch.zeros(n, dtype=lab.dtype).scatter_(0, inst, lab)  # an object's pixels share its kind
        keep = torch.bincount(inst, minlength=n) >= min_pixels
        keep[0] = False
        right += int((sums.argmax(1) + 1 == kinds)[keep].sum())
        total += int(keep.sum())
    return right, total
