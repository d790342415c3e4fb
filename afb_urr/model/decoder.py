"""Decoder: global refinement (1/16 -> 1/4) and uncertain-region refinement (1/2).

Objects are batched: the memory read and everything after it carries B*K rows
(B frames x K objects, background first). The query's skip features (r3, r2,
r1) are the same for the K objects of a frame, so the skip branch of each
refinement (``convFS`` + ``ResFS``) runs once per frame and is broadcast over
the objects. Channel counts follow the trunk; the published ResNet-50 model has
a 1024-channel memory read, r3 512, r2 256, 256 inner channels.
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
        """f: B x Cf x 2h x 2w (one row per frame), p: B*K x C x h x w -> B*K x C x 2h x 2w."""
        s = self.ResFS(self.convFS(f))
        up = F.interpolate(p, scale_factor=2, mode="bilinear", align_corners=False)
        return self.ResMM(per_object_add(up, s))


def per_object_add(x: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """x (B*K rows, K objects per frame) + shared (B rows), broadcast over the objects
    without materialising K copies of ``shared``; keeps x's memory format."""
    b = shared.shape[0]
    if x.shape[0] == b:
        return x + shared
    out = x.unflatten(0, (b, -1)) + shared.unsqueeze(1)
    return out.flatten(0, 1)


def per_frame(skip: torch.Tensor, frames: int) -> torch.Tensor:
    """Skip features given one row per frame (B rows) or repeated per object (B*K rows,
    the K rows of a frame equal): -> B rows."""
    rows = skip.shape[0]
    if rows == frames:
        return skip
    if rows % frames:
        raise ValueError(f"skip features have {rows} rows, expected {frames} frames or a multiple")
    return skip[:: rows // frames]


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
        """read B*K x Cr x h x w; r3, r2, r1: the query's skips, B rows (one per frame) or
        B*K rows repeated per object (then only the first row of each frame is read).

        Returns the per-object foreground probability B x K x 2h' x 2w' (full padded size).
        """
        k = num_objects
        b = read.shape[0] // k
        p = self.ResMM(self.convFM(read))
        p = self.RF3(per_frame(r3, b), p)
        p = self.RF2(per_frame(r2, b), p)
        logits = self.pred2(F.relu(p))
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)  # 1/2
        bk, _, h, w = logits.shape
        rough = foreground(logits).reshape(b, k, h, w)
        # Published quirk: softmax across objects of probabilities (not logits).
        rough = F.softmax(rough, dim=1)
        unc = uncertainty_map(rough).repeat_interleave(k, dim=0)  # B*K x 1 x h x w
        m = rough.reshape(bk, 1, h, w)
        r1 = r1 if r1.shape[0] == bk else per_frame(r1, b).repeat_interleave(k, dim=0)
        local, conf = ops.local_refine(r1, m, self.local_size, 1e-8)
        q = self.local_ResMM(self.local_convFM(torch.cat([r1, local], dim=1)))
        q = conf * self.local_pred2(F.relu(q))
        logits = logits + unc * q
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
        return foreground(logits).reshape(b, k, 2 * h, 2 * w)


def foreground(logits: torch.Tensor) -> torch.Tensor:
    """softmax over 2 logits, channel 1: N x 2 x H x W -> N x H x W. As sigmoid(l1 - l0)
    (the same function) it needs no contiguous copy of a channels-last input."""
    return torch.sigmoid(logits[:, 1] - logits[:, 0])
