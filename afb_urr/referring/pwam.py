"""Pixel-word attention (PWAM) and the language gate, one of each per Swin stage.

All "1x1 convs" are ``Conv1d(kernel_size=1)`` with bias (per-position Linear),
kept as convs so the published key names and shapes ``(C, C_in, 1)`` hold.
IN is instance norm over the HW positions (eps 1e-5, no affine, no running stats).
"""
from __future__ import annotations

import torch
from torch import nn

MASK_PENALTY = 10000.0  # added as 10000 * (m - 1) to the logits of padded words


def _conv(c_in: int, c_out: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel_size=1)


class ImageLanguageAttention(nn.Module):
    """Every pixel attends over the words: (B, HW, C) x (B, D, N) -> (B, HW, C).

    With ``num_heads`` > 1 (not released) the channels split into contiguous
    chunks per head; the scale stays 1/sqrt(C) for every head count (QUIRK).
    """

    def __init__(self, dim: int, text_dim: int = 768, num_heads: int = 1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"PWAM: {dim} channels do not split into {num_heads} heads")
        self.dim, self.num_heads = dim, num_heads
        self.f_key = nn.Sequential(_conv(text_dim, dim))
        self.f_query = nn.Sequential(_conv(dim, dim), nn.InstanceNorm1d(dim, eps=1e-5))
        self.f_value = nn.Sequential(_conv(text_dim, dim))
        self.W = nn.Sequential(_conv(dim, dim), nn.InstanceNorm1d(dim, eps=1e-5))

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """x (B, HW, C); words (B, D, N); word_mask (B, N), 1 = real word -> (B, HW, C)."""
        b, hw, c = x.shape
        h, d = self.num_heads, c // self.num_heads
        m = word_mask.to(x.dtype)[:, None, :]  # (B, 1, N)
        q = self.f_query(x.transpose(1, 2))  # (B, C, HW), instance-normalised
        k = self.f_key(words) * m  # (B, C, N), padded words zeroed
        v = self.f_value(words) * m
        n = k.shape[-1]
        q = q.view(b, h, d, hw).transpose(2, 3)  # (B, h, HW, d)
        logits = q @ k.view(b, h, d, n) * c ** -0.5 + MASK_PENALTY * (m[:, None] - 1.0)
        out = logits.softmax(dim=-1) @ v.view(b, h, d, n).transpose(2, 3)  # (B, h, HW, d)
        out = out.permute(0, 1, 3, 2).reshape(b, c, hw)
        return self.W(out).transpose(1, 2)


class PWAM(nn.Module):
    """F = GELU(project_mm(GELU(vis_project(X)) * attention(X, L, m))), all (B, HW, C)."""

    def __init__(self, dim: int, text_dim: int = 768, num_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        self.vis_project = nn.Sequential(_conv(dim, dim), nn.GELU(), nn.Dropout(dropout))
        self.image_lang_att = ImageLanguageAttention(dim, text_dim, num_heads)
        self.project_mm = nn.Sequential(_conv(dim, dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        vis = self.vis_project(x.transpose(1, 2))  # (B, C, HW)
        lang = self.image_lang_att(x, words, word_mask).transpose(1, 2)
        return self.project_mm(vis * lang).transpose(1, 2)


def language_gate(dim: int) -> nn.Sequential:
    """S = tanh(G2(relu(G1(F)))), G1/G2 bias-free Linear C->C (keys res_gate.0, res_gate.2)."""
    return nn.Sequential(nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Tanh())
