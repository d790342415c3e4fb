"""SimpleDecoding: the four-scale decoder of LAVT (key prefix ``classifier``).

Built from c4 = 8C (C the Swin embed dim) with hidden width c4 / 2; skip widths
c4/2, c4/4, c4/8. Each fusion step resizes the coarse map to the skip's size
(bilinear, align_corners=True) when it is smaller, concatenates [coarse, skip]
and applies two 3x3 conv (no bias) -> BatchNorm -> ReLU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SimpleDecoding(nn.Module):
    """(x_c4, x_c3, x_c2, x_c1) -> (B, 2, H_1, W_1) logits (background, object)."""

    def __init__(self, c4_dims: int, factor: int = 2):
        super().__init__()
        hidden = c4_dims // factor
        skips = {"4": c4_dims // 2, "3": c4_dims // 4, "2": c4_dims // 8}
        coarse = c4_dims
        for step, skip in skips.items():
            self.add_module(f"conv1_{step}", nn.Conv2d(coarse + skip, hidden, 3, padding=1, bias=False))
            self.add_module(f"bn1_{step}", nn.BatchNorm2d(hidden))
            self.add_module(f"conv2_{step}", nn.Conv2d(hidden, hidden, 3, padding=1, bias=False))
            self.add_module(f"bn2_{step}", nn.BatchNorm2d(hidden))
            coarse = hidden
        self.conv1_1 = nn.Conv2d(hidden, 2, 1)

    def _fuse(self, step: str, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < skip.shape[-2] or x.shape[-1] < skip.shape[-1]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        x = torch.cat([x, skip], dim=1)
        x = F.relu(getattr(self, f"bn1_{step}")(getattr(self, f"conv1_{step}")(x)))
        return F.relu(getattr(self, f"bn2_{step}")(getattr(self, f"conv2_{step}")(x)))

    def forward(self, x_c4, x_c3, x_c2, x_c1) -> torch.Tensor:
        x = self._fuse("4", x_c4, x_c3)
        x = self._fuse("3", x, x_c2)
        x = self._fuse("2", x, x_c1)
        return self.conv1_1(x)
