"""The language-aware Swin trunk of LAVT: per stage, Swin blocks, then PWAM, then a
language gate; the PWAM output (LayerNorm'ed) is the stage's feature map.

Key names follow the release: ``patch_embed``, ``layers.{i}.{blocks, fusion,
res_gate, downsample}``, ``norm{i}``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .pwam import PWAM, language_gate
from .swin import SWIN_SIZES, PatchEmbed, PatchMerging, SwinBlock, shift_mask


@dataclass(frozen=True)
class SwinSpec:
    """Shape of a Swin trunk: embed dim C, blocks and heads per stage, window w."""
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window: int

    @classmethod
    def resolve(cls, swin, window: int) -> "SwinSpec":
        """``swin``: a name of :data:`SWIN_SIZES` or a dict(embed_dim, depths, num_heads)."""
        if isinstance(swin, str):
            if swin not in SWIN_SIZES:
                raise ValueError(f"unknown Swin size {swin!r}; expected one of {sorted(SWIN_SIZES)} or a dict")
            dim, depths, heads = SWIN_SIZES[swin]
        elif isinstance(swin, dict) and set(swin) == {"embed_dim", "depths", "num_heads"}:
            dim, depths, heads = int(swin["embed_dim"]), tuple(swin["depths"]), tuple(swin["num_heads"])
        else:
            raise ValueError(f"swin must be a size name or dict(embed_dim=, depths=, num_heads=), got {swin!r}")
        depths, heads = tuple(int(d) for d in depths), tuple(int(h) for h in heads)
        if len(depths) != 4 or len(heads) != 4 or min(depths) < 1:
            raise ValueError(f"Swin needs 4 stages of >= 1 block, got depths={depths} heads={heads}")
        if any((dim << i) % h for i, h in enumerate(heads)):
            raise ValueError(f"Swin: stage widths {[dim << i for i in range(4)]} do not split into heads {heads}")
        if int(window) < 2:
            raise ValueError(f"Swin window must be >= 2, got {window}")
        return cls(dim, depths, heads, int(window))

    def name(self) -> str | None:
        """The published size name of this shape, or None."""
        for name, (dim, depths, heads) in SWIN_SIZES.items():
            if (dim, depths, heads) == (self.embed_dim, self.depths, self.num_heads):
                return name
        return None


class Stage(nn.Module):
    """Swin blocks -> PWAM -> gated residual -> (patch merging)."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, drop_path: list[float],
                 text_dim: int, pwam_heads: int, merge: bool):
        super().__init__()
        self.window, self.shift = window, window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, drop_path_rate=drop_path[i])
            for i in range(depth))
        self.fusion = PWAM(dim, text_dim, pwam_heads)
        self.res_gate = language_gate(dim)
        self.downsample = PatchMerging(dim) if merge else None

    def run_blocks(self, x, h, w):
        """The stage's Swin blocks: x (B, H*W, C) -> (B, H*W, C)."""
        hp, wp = -(-h // self.window) * self.window, -(-w // self.window) * self.window
        mask = shift_mask(hp, wp, self.window, self.shift, x.device).to(x.dtype) if len(self.blocks) > 1 else None
        for blk in self.blocks:
            x = blk(x, h, w, mask)
        return x

    def forward(self, x, h, w, words, word_mask):
        """x (B, H*W, C) -> (PWAM output (B, H*W, C), next stage input or None)."""
        x = self.run_blocks(x, h, w)
        fused = self.fusion(x, words, word_mask)
        if self.downsample is None:
            # QUIRK: the release computes the last stage's gate and discards the
            # result; its weights stay in the state_dict, the (unused) product is skipped.
            return fused, None
        x = x + self.res_gate(fused) * fused
        return fused, self.downsample(x, h, w)


class LanguageAwareSwin(nn.Module):
    """(B, 3, H, W) image, words (B, D, N), mask (B, N) -> four maps (B, C_i, H_i, W_i).

    ``ape_grid`` (Hp, Wp): Swin's optional absolute position embedding (``ape``, off in
    the release), a learnt 1 x C x Hp x Wp map added to the patch tokens, resized
    bicubically to the token grid of another image size.
    """

    def __init__(self, spec: SwinSpec, text_dim: int = 768, pwam_heads=(1, 1, 1, 1), drop_path_rate: float = 0.3,
                 ape_grid: tuple[int, int] | None = None):
        super().__init__()
        self.spec = spec
        self.patch_embed = PatchEmbed(spec.embed_dim)
        if ape_grid is not None:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, spec.embed_dim, *ape_grid))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        total = sum(spec.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(spec.depths, spec.num_heads)):
            start = sum(spec.depths[:i])
            self.layers.append(Stage(spec.embed_dim << i, depth, heads, spec.window, rates[start:start + depth],
                                     text_dim, pwam_heads[i], merge=i < 3))
        for i in range(4):
            self.add_module(f"norm{i}", nn.LayerNorm(spec.embed_dim << i, eps=1e-5))

    def resize_position_embedding(self, grid: tuple[int, int]) -> None:
        """Store the absolute position embedding at token ``grid`` (resized as the forward would)."""
        with torch.no_grad():
            self.absolute_pos_embed = nn.Parameter(_resized(self.absolute_pos_embed.detach(), grid))

    def tokens(self, image: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(B, 3, H, W) -> patch tokens (B, Hp*Wp, C) with the position embedding, Hp, Wp."""
        x, h, w = self.patch_embed(image)
        if hasattr(self, "absolute_pos_embed"):
            x = x + _resized(self.absolute_pos_embed, (h, w)).flatten(2).transpose(1, 2)
        return x, h, w

    def visual_maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The trunk without language: each stage's Swin block output (B, C_i, H_i, W_i), the
        next stage fed as if every language gate were closed. What outline pretraining
        (:mod:`afb_urr.training.outline`) trains; a LAVT whose gates output 0 computes the
        same stage inputs."""
        x, h, w = self.tokens(image)
        outs = []
        for stage in self.layers:
            x = stage.run_blocks(x, h, w)
            outs.append(x.transpose(1, 2).reshape(x.shape[0], -1, h, w))
            if stage.downsample is not None:
                x = stage.downsample(x, h, w)
            h, w = -(-h // 2), -(-w // 2)
        return outs

    def forward(self, image: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> list[torch.Tensor]:
        x, h, w = self.tokens(image)
        outs = []
        for i, stage in enumerate(self.layers):
            fused, x = stage(x, h, w, words, word_mask)
            fused = getattr(self, f"norm{i}")(fused)
            outs.append(fused.transpose(1, 2).reshape(fused.shape[0], -1, h, w))
            h, w = -(-h // 2), -(-w // 2)
        return outs


def _resized(pos: torch.Tensor, grid) -> torch.Tensor:
    """A 1 x C x h x w position map at token ``grid`` (bicubic; unchanged when it is already that size)."""
    grid = tuple(int(v) for v in grid)
    return pos if tuple(pos.shape[-2:]) == grid else F.interpolate(pos, size=grid, mode="bicubic",
                                                                   align_corners=False)
