"""Decoder: global refinement (1/16 -> 1/4) and uncertain-region refinement (1/2).

Objects are batched: every tensor carries B*K rows (B frames x K objects,
background first). Channel counts follow the trunk; the published ResNet-50
model has a 1024-channel memory read, r3 512, r2 256, 256 inner channels.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .. import ops


class ResBlock(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), with a 3x3 conv on the skip when shapes change."""

    def __init__(self, in_ch: int, out_ch: int | None = None, stride: int = 1):
        super().__init__()
        out_ch = out_ch or in_ch
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.downsample = (nn.Conv2d(in_ch, out_ch, 3, padding=1, stride=stride)
                           if in_ch != out_ch or stride != 1 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        skip = x if self.downsample is None else self.downsample(x)
        return skip + r


class Refine(nn.Module):
    """Merge a skip feature f (x2 resolution) with the coarser prediction features p."""

    def __init__(self, in_ch: int, ch: int):
        super().__init__()
        self.convFS = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.ResFS = ResBlock(ch)
        self.ResMM = ResBlock(ch)

    def forward(self, f: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        s = self.ResFS(self.convFS(f))
        m = s + F.interpolate(p, scale_factor=2, mode="bilinear", align_corners=False)
        return self.ResMM(m)


def uncertainty_map(probs: torch.Tensor) -> torch.Tensor:
    """U = exp(1 - top1 / (top2 + 1e-8)) over dim 1: B x K x H x W -> B x 1 x H x W, in (0, 1]."""
    top = probs.topk(2, dim=1).values
    return torch.exp(1 - top[:, :1] / (top[:, 1:2] + 1e-8))


class Decoder(nn.Module):
    """Memory read (B*K x 2Cv x h x w) + query skips -> per-object probability (B x K x H x W)."""

    def __init__(self, read_ch: int, r3_ch: int, r2_ch: int, r1_ch: int = 64,
                 mid_ch: int = 256, local_ch: int = 32, local_size: int = 7):
        super().__init__()
        self.local_size = local_size
        self.convFM = nn.Conv2d(read_ch, mid_ch, 3, padding=1)
        self.ResMM = ResBlock(mid_ch)
        self.RF3 = Refine(r3_ch, mid_ch)
        self.RF2 = Refine(r2_ch, mid_ch)
        self.pred2 = nn.Conv2d(mid_ch, 2, 3, padding=1)
        self.local_convFM = nn.Conv2d(2 * r1_ch, local_ch, 3, padding=1)
        self.local_ResMM = ResBlock(local_ch)
        self.local_pred2 = nn.Conv2d(local_ch, 2, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, read: torch.Tensor, r3: torch.Tensor, r2: torch.Tensor, r1: torch.Tensor,
                num_objects: int) -> torch.Tensor:
        """read B*K x Cr x h x w; r3, r2, r1: B*K rows (query skips repeated per object).

        Returns the per-object foreground probability B x K x 2h' x 2w' (full padded size).
        """
        k = num_objects
        p = self.ResMM(self.convFM(read))
        p = self.RF3(r3, p)
        p = self.RF2(r2, p)
        logits = self.pred2(F.relu(p))
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)  # 1/2
        bk, _, h, w = logits.shape
        rough = F.softmax(logits, dim=1)[:, 1].reshape(bk // k, k, h, w)
        # Published quirk: softmax across objects of probabilities (not logits).
        rough = F.softmax(rough, dim=1)
        unc = uncertainty_map(rough).repeat_interleave(k, dim=0)  # B*K x 1 x h x w
        m = rough.reshape(bk, 1, h, w)
        local, conf = ops.local_refine(r1, m, self.local_size, 1e-8)
        q = self.local_ResMM(self.local_convFM(torch.cat([r1, local], dim=1)))
        q = conf * self.local_pred2(F.relu(q))
        logits = logits + unc * q
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
        return F.softmax(logits, dim=1)[:, 1].reshape(bk // k, k, 2 * h, 2 * w)
