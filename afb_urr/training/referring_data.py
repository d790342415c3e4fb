"""Synthetic referring samples as network input: training batches and the held-out set.

A sample of :class:`afb_urr.data.referring.ReferringSamples` (frame, object
mask, expression) becomes what LAVT trains on, as published: the frame
squashed to the input size (PIL bilinear) and ImageNet-normalised, the mask
resized by nearest neighbour, the expression as 20 WordPiece ids and a mask.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import ReferringConfig
from ..data.clips import NoObjectError
from ..data.referring import write_vocab
from ..data.referring_samples import ReferringSamples
from ..referring import load_tokenizer, preprocess
from ..referring.prompt import input_hw

MAX_SKIPS = 32  # videos tried after one without a usable expression


def resize_mask(mask: np.ndarray, size) -> torch.Tensor:
    """H x W bool -> (h, w) int64 0/1, nearest neighbour (as the published ground truth)."""
    h, w = input_hw(size)
    img = Image.fromarray(mask.astype(np.uint8)).resize((w, h), Image.NEAREST)
    return torch.from_numpy(np.asarray(img, dtype=np.int64))


def encode_samples(samples: list[dict], tokenizer, size) -> dict:
    """Samples -> {"image" B x 3 x h x w, "mask" B x h x w, "token_ids" / "attention_mask" B x 20,
    "expression": list of str}."""
    ids, att = tokenizer([s["expression"] for s in samples])
    return {"image": torch.cat([preprocess(s["image"], size) for s in samples]),
            "mask": torch.stack([resize_mask(s["mask"], size) for s in samples]),
            "token_ids": ids, "attention_mask": att, "expression": [s["expression"] for s in samples]}


class ReferringBatches(Dataset):
    """Item i of epoch e = one training batch: ``batch_size`` samples of the videos at
    positions i*B .. (i+1)*B-1 of a permutation seeded by (seed, e).

    A video without a usable expression (rare) is replaced by the next one in
    the permutation. Everything depends only on (seed, epoch, i).
    """

    def __init__(self, samples: ReferringSamples, tokenizer, batch_size: int, size, seed: int = 0):
        if len(samples) < batch_size:
            raise ValueError(f"{len(samples)} training videos cannot fill a batch of {batch_size}")
        self.samples, self.tokenizer = samples, tokenizer
        self.batch_size, self.size, self.seed = int(batch_size), input_hw(size), int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.samples.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples))
        start = index * self.batch_size
        picked = []
        for j in range(start, start + self.batch_size):
            for skip in range(MAX_SKIPS):
                try:
                    picked.append(self.samples[int(order[(j + skip * self.batch_size) % len(order)])])
                    break
                except NoObjectError:
                    continue
            else:
                raise NoObjectError(f"{MAX_SKIPS} videos in a row have no usable referring expression")
        return encode_samples(picked, self.tokenizer, self.size)


def heldout_samples(rc: ReferringConfig, style: str, part: str = "heldout") -> list[dict]:
    """Every (frame, object, expression, kind of description, frame's label map) of the
    held-out descriptions (``part="train"``: the training ones) in ``style`` wording over
    the first ``rc.val_videos`` "val" videos (``rc.val_objects`` objects each), at
    ``rc.val_frames`` evenly spaced frames."""
    data = ReferringSamples("val", max(rc.val_videos, 1), style=style, num_frames=rc.num_frames,
                            size=rc.video_size, min_objects=rc.val_objects[0], max_objects=rc.val_objects[1],
                            cache_size=1, part=part, heldout_fraction=rc.heldout_fraction)
    frames = np.linspace(0, rc.num_frames - 1, rc.val_frames).round().astype(int)
    out = []
    for v in range(rc.val_videos):
        video = data.videos[v]
        for t in sorted(set(frames.tolist())):
            for label, pairs in sorted(data.described(v, t).items()):
                out += [{"image": video.frames[t], "mask": video.masks[t] == label, "expression": e, "kind": kind,
                         "labels": video.masks[t], "video": video.name, "frame": t, "label": label}
                        for e, kind in pairs]
    return out


def training_batches(rc: ReferringConfig, tokenizer, seed: int) -> ReferringBatches:
    """The training set of ``rc``: "train" videos, the "train" part of the descriptions."""
    samples = ReferringSamples("train", rc.num_videos, style="train", num_frames=rc.num_frames,
                               size=rc.video_size, min_objects=rc.min_objects, max_objects=rc.max_objects,
                               seed=seed, cache_size=rc.cache_size, part="train",
                               heldout_fraction=rc.heldout_fraction, sampling=rc.sampling,
                               contrast_share=rc.contrast_share)
    return ReferringBatches(samples, tokenizer, rc.batch_size, rc.input_size, seed)


def vocabulary(rc: ReferringConfig, out_dir: str):
    """(tokenizer, vocab path): ``rc.vocab``, or the grammar's vocabulary written to out_dir."""
    path = rc.vocab
    if not path:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "vocab.txt")
        write_vocab(path)
    return load_tokenizer(path), path
