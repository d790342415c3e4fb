"""LAVT (lavt_one layout): language-aware Swin trunk + SimpleDecoding + BERT in one module.

``LAVT(swin="base", window_size=12)`` with default ``bert_config`` is the released
configuration; its ``state_dict()`` is the published one (648 tensors).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import LanguageAwareSwin, SwinSpec
from .decoder import SimpleDecoding
from .text import build_text_encoder, check_bert_config, encode_words

NUM_TOKENS = 20  # the published text length


class LAVT(nn.Module):
    """Referring segmentation: (image, expression tokens) -> 2-class logits at the image size.

    Args:
        swin: "tiny" | "small" | "base" | "large", or dict(embed_dim, depths, num_heads)
            for a narrower trunk (the light variant).
        window_size: Swin window w (published: 12; the builder's default is 7).
        bert_config: transformers ``BertConfig`` fields (see ``text.BERT_FIELDS``),
            BERT-base where not given. PWAM reads words of width ``hidden_size``.
        pwam_heads: PWAM head count per stage (published: 1 everywhere).
        drop_path_rate: stochastic depth at the last Swin block (published 0.3).
        input_size: (H, W) frames are squashed to before the network (published
            480 x 480); :func:`mask_from_text` uses it. Not a weight: metadata of the file.
        ape: Swin's absolute position embedding (off in the release), a learnt map of
            the input size's token grid, ``backbone.absolute_pos_embed``; the light variant
            uses it to tell left from right.
    """

    def __init__(self, swin="base", window_size: int = 12, bert_config: dict | None = None,
                 pwam_heads=(1, 1, 1, 1), drop_path_rate: float = 0.3, input_size=(480, 480),
                 ape: bool = False):
        super().__init__()
        spec = SwinSpec.resolve(swin, window_size)
        bert = check_bert_config(bert_config)
        pwam_heads = tuple(int(h) for h in pwam_heads)
        if len(pwam_heads) != 4:
            raise ValueError(f"pwam_heads needs 4 entries, got {pwam_heads}")
        input_size = (int(input_size), int(input_size)) if isinstance(input_size, int) else tuple(input_size)
        if len(input_size) != 2 or max(int(v) for v in input_size) <= 32:
            raise ValueError(f"LAVT: input_size must be (H, W) with a side above 32, got {input_size}")
        self.config = dict(swin=swin if isinstance(swin, str) else dict(swin), window_size=spec.window,
                           bert_config=bert, pwam_heads=list(pwam_heads), drop_path_rate=float(drop_path_rate),
                           input_size=[int(v) for v in input_size], ape=bool(ape))
        grid = token_grid(input_size) if ape else None
        self.backbone = LanguageAwareSwin(spec, bert["hidden_size"], pwam_heads, drop_path_rate, grid)
        self.classifier = SimpleDecoding(8 * spec.embed_dim)
        self.text_encoder = build_text_encoder(bert)
        self.backbone.apply(_init_trunk)

    def set_input_size(self, input_size) -> None:
        """Make this a LAVT of input (H, W): the metadata, and the absolute position embedding
        (when there is one) resized once as the forward resizes it, so outputs stay the same."""
        self.config["input_size"] = [int(v) for v in input_size]
        if self.config["ape"]:
            self.backbone.resize_position_embedding(token_grid(input_size))

    def forward(self, image: torch.Tensor, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) normalised; token_ids, attention_mask (B, N) int64 -> logits (B, 2, H, W)."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"LAVT: image must be B x 3 x H x W, got {tuple(image.shape)}")
        if token_ids.shape != attention_mask.shape or token_ids.shape[0] != image.shape[0]:
            raise ValueError(f"LAVT: token_ids {tuple(token_ids.shape)} and attention_mask "
                             f"{tuple(attention_mask.shape)} must both be B x N with B = {image.shape[0]}")
        if image.shape[-2] <= 32 and image.shape[-1] <= 32:
            raise ValueError(f"LAVT: image {tuple(image.shape[-2:])} is too small: the last stage (1/32) needs "
                             "at least 2 positions for its instance norm")
        words = encode_words(self.text_encoder, token_ids, attention_mask)
        c1, c2, c3, c4 = self.backbone(image, words, attention_mask)
        logits = self.classifier(c4, c3, c2, c1)
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=True)


def token_grid(input_size) -> tuple[int, int]:
    """(H/4, W/4) rounded up: the patch-token grid of an (H, W) input."""
    return tuple(-(-int(v) // 4) for v in input_size)


def _init_trunk(m: nn.Module) -> None:
    """Published fresh init of the trunk: Linear trunc-normal std 0.02, zero bias; LayerNorm 1/0."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def count_parameters(model: LAVT) -> dict[str, int]:
    """Float parameter counts per published part (buffers excluded)."""
    def n(mods):
        return sum(p.numel() for m in mods for p in m.parameters())
    bb = model.backbone
    trunk = [bb.patch_embed] + [getattr(bb, f"norm{i}") for i in range(4)]
    trunk += [s.blocks for s in bb.layers] + [s.downsample for s in bb.layers if s.downsample is not None]
    parts = {"swin": n(trunk), "pwam": n(s.fusion for s in bb.layers), "gates": n(s.res_gate for s in bb.layers),
             "decoder": n([model.classifier]), "bert": n([model.text_encoder])}
    parts["total"] = sum(p.numel() for p in model.parameters())
    return parts
