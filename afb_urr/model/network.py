"""AFBURR: the network. ``memorize`` encodes a frame + masks into bank features,
``segment`` reads a bank and decodes per-object probabilities.

The network holds no per-video state and never changes a bank: the bank is
passed in, and ``segment`` returns the read-out counts for the caller (the
Segmenter) to add.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..bank import FeatureBank
from ..readout import read_bank
from .decoder import Decoder
from .encoders import TRUNK_CHANNELS, MemoryEncoder, QueryEncoder

BACKBONES = tuple(TRUNK_CHANNELS)


def pad_to_multiple(x: torch.Tensor, d: int = 16):
    """Zero-pad the last two dims up to multiples of ``d``, split evenly (extra at bottom/right).

    Returns (padded, (left, right, top, bottom)).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % d, (-w) % d
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph == 0 and pw == 0:
        return x, pad
    return F.pad(x, pad), pad


def crop_padding(x: torch.Tensor, pad) -> torch.Tensor:
    """Undo :func:`pad_to_multiple` on the last two dims."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]


class KeyValue(nn.Module):
    """Two 3x3 convs: r4 -> key (Ck) and value (Cv), flattened to B x C x hw."""

    def __init__(self, in_ch: int, key_ch: int, value_ch: int):
        super().__init__()
        self.Key = nn.Conv2d(in_ch, key_ch, 3, padding=1)
        self.Value = nn.Conv2d(in_ch, value_ch, 3, padding=1)

    def forward(self, x: torch.Tensor):
        return self.Key(x).flatten(2), self.Value(x).flatten(2)


class AFBURR(nn.Module):
    """AFB-URR network. ``backbone`` picks the ResNet trunk; channel counts follow it
    (ResNet-50: key 128, value 512, decoder 256 - the published model).

    Args:
        backbone: "resnet50" (published), "resnet18" (light), "resnet34", "resnet101".
        pretrained: initialise both trunks from ImageNet (torchvision weights API).
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool = False):
        super().__init__()
        if backbone not in TRUNK_CHANNELS:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {list(BACKBONES)}")
        self.backbone = backbone
        r1, r2, r3, r4 = TRUNK_CHANNELS[backbone]
        self.key_dim, self.value_dim = r4 // 8, r4 // 2
        self.encoder_m = MemoryEncoder(backbone, pretrained)
        self.encoder_q = QueryEncoder(backbone, pretrained)
        self.keyval_r4 = KeyValue(r4, self.key_dim, self.value_dim)
        self.decoder = Decoder(read_ch=2 * self.value_dim, r3_ch=r3, r2_ch=r2, r1_ch=r1, mid_ch=r4 // 4)

    @property
    def device(self) -> torch.device:
        return self.keyval_r4.Key.weight.device

    def memorize(self, frame: torch.Tensor, probs: torch.Tensor):
        """Encode one frame with each object's soft mask into bank features.

        frame: 1 x 3 x H x W (or 3 x H x W) in [0,1]; probs: K x H x W, background first.
        Returns keys K x Ck x hw and values K x Cv x hw (h, w = padded size / 16).
        """
        if frame.dim() == 3:
            frame = frame.unsqueeze(0)
        frame, _ = pad_to_multiple(frame)
        masks, _ = pad_to_multiple(probs.unsqueeze(1).to(frame.dtype))
        r4 = self.encoder_m(frame, masks)  # the frame is shared by the K masks
        return self.keyval_r4(r4)

    def segment(self, frames: torch.Tensor, bank: FeatureBank, count_readout: bool = False,
                return_probs: bool = False, chunk_bytes: int | None = None):
        """Segment frames against a bank; the bank is read, never changed.

        frames: B x 3 x H x W in [0,1]. Returns logits B x K x H x W, log(s / (1 - s))
        of the per-object probabilities s clamped to [1e-7, 1 - 1e-7]; with
        ``return_probs`` also s itself (unclamped, for the uncertainty loss); with
        ``count_readout`` last the read-out counts, one tensor per object (M_i
        entries), for the caller to add to the bank (:meth:`FeatureBank.add_readout`).
        So: ``logits``, ``(logits, s)``, ``(logits, counts)`` or ``(logits, s, counts)``.
        """
        b = frames.shape[0]
        k = bank.num_objects
        padded, pad = pad_to_multiple(frames)
        r4, r3, r2, r1 = self.encoder_q(padded)
        qk, qv = self.keyval_r4(r4)
        read, counts = read_bank(bank, qk, qv, chunk_bytes or bank.chunk_bytes, count=count_readout)
        read = read.reshape(b * k, -1, *r4.shape[-2:])
        s = self.decoder(read, r3, r2, r1, k)  # the skips once per frame, not per object
        s = crop_padding(s, pad)
        s = s.to(torch.promote_types(s.dtype, torch.float32))  # 1 - 1e-7 is 1 in half precision
        c = s.clamp(1e-7, 1 - 1e-7)
        out = (torch.log(c / (1 - c)),) + ((s,) if return_probs else ()) + ((counts,) if count_readout else ())
        return out if len(out) > 1 else out[0]
