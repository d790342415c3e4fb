"""Outline frames as network input: seeded training batches (:mod:`afb_urr.data.outline`'s
frames, ImageNet-normalised as the referring input, optionally mirrored)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import synthetic as syn
from ..data.outline import outline_frame
from ..referring import preprocess
from ..referring.prompt import input_hw


def outline_sample(frame: np.ndarray, classes: np.ndarray, labels: np.ndarray, flip: bool = False) -> dict:
    """An :func:`outline_frame` as tensors: {"image" 3 x h x w ImageNet-normalised, "label" h x w
    int64 classes, "instance" h x w int64 object labels}; ``flip``: mirrored."""
    image = preprocess(frame, frame.shape[:2])[0]
    label = torch.from_numpy(classes.astype(np.int64))
    instance = torch.from_numpy(labels.astype(np.int64))
    if flip:
        image, label, instance = image.flip(-1), label.flip(-1), instance.flip(-1)
    return {"image": image, "label": label, "instance": instance}


class OutlineBatches(Dataset):
    """Item i of epoch e: ``batch_size`` frames at positions i*B .. (i+1)*B-1 of a permutation
    (seeded by (seed, e)) of every (video, frame) of the split, each mirrored with probability
    ``flip`` (seeded by (seed, e, i)). Batches of :func:`outline_sample` entries, stacked.
    Each frame is rendered and squashed once, then kept (uint8, about 65 kB at 96 x 168)."""

    def __init__(self, videos: syn.SyntheticVideos, batch_size: int, size, seed: int = 0, flip: float = 0.5):
        frames = len(videos) * videos.num_frames
        if frames < batch_size:
            raise ValueError(f"{frames} training frames cannot fill a batch of {batch_size}")
        self.videos, self.batch_size, self.size = videos, int(batch_size), input_hw(size)
        self.seed, self.flip, self.epoch = int(seed), float(flip), 0
        self._frames: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.videos) * self.videos.num_frames // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.videos) * self.videos.num_frames)
        flips = np.random.default_rng([self.seed, self.epoch, index]).random(self.batch_size) < self.flip
        picked = [outline_sample(*self.frame(int(j)), flip=bool(f))
                  for j, f in zip(order[index * self.batch_size:(index + 1) * self.batch_size], flips)]
        return {k: torch.stack([p[k] for p in picked]) for k in picked[0]}

    def frame(self, j: int) -> tuple:
        """:func:`outline_frame` of frame j (video j // T, frame j % T), made once."""
        if j not in self._frames:
            frames = self.videos.num_frames
            self._frames[j] = outline_frame(self.videos[j // frames], j % frames, self.size)
        return self._frames[j]
