"""Swin Transformer pieces as LAVT uses them (key names and numbers of the release).

Differences from classification Swin that the release depends on: a stage map
smaller than the window is padded up to the window (the window is never
shrunk, the shift never dropped), padded tokens are exact zeros that take part
in attention as keys and values (QUIRK, kept), and the shift mask adds -100
(not -inf) between tokens of different regions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# name -> (embed dim C, blocks per stage, heads per stage)
SWIN_SIZES = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}

SHIFT_MASK_VALUE = -100.0


def relative_position_index(window: int) -> torch.Tensor:
    """(w^2, w^2) int64: entry [a, b] = (ya - yb + w - 1) * (2w - 1) + (xa - xb + w - 1)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return (dy * (2 * window - 1) + dx).long()


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, w*w, C); windows row-major, tokens row-major inside."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, w*w, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_mask(hp: int, wp: int, window: int, shift: int, device=None) -> torch.Tensor:
    """(nW, w*w, w*w) additive mask of a shifted block on the padded (Hp, Wp) map.

    Rows are labelled by the bands [0, Hp-w), [Hp-w, Hp-s), [Hp-s, Hp), columns
    likewise (9 regions); after the same partition as the tokens, pairs from
    different regions get -100, pairs from one region 0.
    """
    def bands(n):
        lab = torch.zeros(n, dtype=torch.long, device=device)
        lab[n - window:n - shift] = 1
        lab[n - shift:] = 2
        return lab
    region = (bands(hp)[:, None] * 3 + bands(wp)[None, :]).view(1, hp, wp, 1)
    region = window_partition(region, window).squeeze(-1)  # (nW, w*w)
    differ = region[:, :, None] != region[:, None, :]
    return torch.zeros(differ.shape, device=device).masked_fill(differ, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a w x w window with a relative position bias."""

    def __init__(self, dim: int, window: int, num_heads: int):
        super().__init__()
        self.window, self.num_heads = window, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B*nW, N=w*w, C); mask (nW, N, N) additive or None -> (B*nW, N, C)."""
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        logits = q @ k.transpose(-2, -1)  # (B*nW, heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        logits = logits + bias.view(n, n, self.num_heads).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            logits = logits.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]
            logits = logits.view(bw, self.num_heads, n, n)
        out = logits.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Linear C->4C, erf-GELU, Linear 4C->C."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # erf form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample with probability p."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class SwinBlock(nn.Module):
    """Pre-norm Swin block; odd blocks of a stage are shifted by w // 2."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.0):
        super().__init__()
        self.window, self.shift, self.drop_path_rate = window, shift, drop_path_rate
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, window, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, H*W, C); mask: the stage's shift mask (used only when shifted) -> (B, H*W, C)."""
        b, _, c = x.shape
        win, s = self.window, self.shift
        y = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (-h) % win, (-w) % win
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))  # after LN1: padded tokens are exact zeros
        hp, wp = h + pad_b, w + pad_r
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, win), mask if s else None)
        y = window_merge(y, win, hp, wp)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        y = y[:, :h, :w].reshape(b, h * w, c)
        x = x + drop_path(y, self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class PatchEmbed(nn.Module):
    """Conv 4x4 stride 4 (zero-pad right/bottom to multiples of 4 first), then LayerNorm."""

    def __init__(self, dim: int, patch: int = 4, in_chans: int = 3):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(B, 3, H, W) -> tokens (B, Hp*Wp, C), Hp, Wp."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % self.patch, 0, (-h) % self.patch))
        x = self.proj(x)
        hp, wp = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), hp, wp


class PatchMerging(nn.Module):
    """Halve the grid (odd sizes padded at bottom/right), 4C -> LayerNorm -> 2C.

    Phase order on channels: (even row, even col), (odd row, even col),
    (even row, odd col), (odd row, odd col).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C)."""
        b, _, c = x.shape
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))
