"""Benchmark helpers: a procedural video, per-step timing with the read-out's share,
bank size in bytes, filling the bank to its budget, and an operator profile.

``afb_urr.cli.benchmark`` (``tools/benchmark.py``) is the command-line front end;
these pieces are importable so that other scripts (and tests) measure the same way.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .resources import host_memory_kib

MIB = 2.0 ** 20


def _texture(rng: np.random.Generator, h: int, w: int, tint) -> np.ndarray:
    """h x w x 3 float32 texture: smooth blotches (cubic-upsampled noise) plus fine grain, tinted."""
    import cv2
    coarse = rng.random((max(2, h // 12), max(2, w // 12), 3), dtype=np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.random((h, w, 1), dtype=np.float32)
    tex = 0.55 * smooth + 0.25 * grain + 0.2 * np.asarray(tint, np.float32)
    return np.clip(tex * 255.0, 0, 255).astype(np.float32)


class ProceduralVideo:
    """Deterministic synthetic video, computed frame by frame from its index.

    ``frame(t)`` -> (H x W x 3 uint8 RGB, H x W uint8 labels 0..num_objects).
    A background texture pans slowly; each object is a textured ellipse whose
    texture moves with it, following a smooth Lissajous path inside the frame
    and changing size slowly. Later objects occlude earlier ones.
    """

    def __init__(self, height: int, width: int, num_objects: int = 2, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.h, self.w = height, width
        self.background = _texture(rng, 2 * height, 2 * width, (0.3, 0.35, 0.3))
        self.objects = []
        for i in range(num_objects):
            tint = rng.random(3)
            tint[i % 3] = 1.0
            self.objects.append(dict(
                texture=_texture(rng, 2 * height, 2 * width, tint),
                radius=(rng.uniform(0.15, 0.25) * height, rng.uniform(0.1, 0.16) * width),
                period=(rng.uniform(90, 160), rng.uniform(120, 220), rng.uniform(150, 300)),
                phase=rng.uniform(0, 2 * np.pi, size=3)))
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.h, self.w
        oy = int(h / 2 * (1 + np.sin(2 * np.pi * t / 700.0)))
        ox = int(w / 2 * (1 + np.sin(2 * np.pi * t / 900.0 + 1.0)))
        img = self.background[oy:oy + h, ox:ox + w].copy()
        labels = np.zeros((h, w), np.uint8)
        for i, obj in enumerate(self.objects, start=1):
            py, px, ps = obj["period"]
            fy, fx, fs = obj["phase"]
            cy = h * (0.5 + 0.3 * np.sin(2 * np.pi * t / py + fy))
            cx = w * (0.5 + 0.3 * np.sin(2 * np.pi * t / px + fx))
            scale = 1.0 + 0.25 * np.sin(2 * np.pi * t / ps + fs)
            ry, rx = obj["radius"][0] * scale, obj["radius"][1] * scale
            inside = ((self.yy - cy) / ry) ** 2 + ((self.xx - cx) / rx) ** 2 <= 1.0
            ty, tx = int(h - cy), int(w - cx)  # texture window that moves with the object
            img[inside] = obj["texture"][ty:ty + h, tx:tx + w][inside]
            labels[inside] = i
        return img.astype(np.uint8), labels


class LoopedVideo:
    """The first ``length`` frames of a video, rendered once and replayed in a loop
    (``frame(t)`` is the video's ``frame(t % length)``): long runs without the cost of
    rendering every frame, e.g. a 10,000-frame memory check of a filled bank."""

    def __init__(self, video: ProceduralVideo, length: int):
        if length < 1:
            raise ValueError(f"a looped video needs at least 1 frame, got {length}")
        self.video, self.length = video, int(length)
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        t %= self.length
        if t not in self._frames:
            self._frames[t] = self.video.frame(t)
        return self._frames[t]


def bank_bytes(bank) -> int:
    """Bytes held by a FeatureBank: keys, values, insertion frames and scores of every object."""
    tensors = [*bank.keys, *bank.values, *bank.inserted_at, *bank.scores]
    return int(sum(t.numel() * t.element_size() for t in tensors))


class ReadoutClock:
    """Time of each memory read inside ``model.segment``, from forward hooks.

    The read-out runs between the key/value head's forward (query keys) and the
    decoder's forward; ``seconds`` accumulates that gap (synchronising the device
    at both ends when it is CUDA). ``take()`` returns and clears it.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.seconds = 0.0
        self._start: float | None = None
        self._handles = [model.keyval_r4.register_forward_hook(self._keys_done),
                         model.decoder.register_forward_pre_hook(self._decoder_starts)]

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _keys_done(self, *_):
        self._start = self._now()

    def _decoder_starts(self, *_):
        if self._start is not None:
            self.seconds += self._now() - self._start
            self._start = None

    def take(self) -> float:
        s, self.seconds, self._start = self.seconds, 0.0, None
        return s

    def close(self) -> None:
        for h in self._handles:
            h.remove()


@dataclasses.dataclass
class Row:
    """One checkpoint of a benchmark run (medians over the frames since the previous one)."""
    frame: int
    fps: float
    step_ms: float
    readout_share: float
    bank_entries: int
    bank_mib: float
    rss_mib: float
    peak_rss_mib: float
    cuda_max_mib: float | None


# (header, width, format spec); columns are separated by two spaces.
COLUMNS = (("frame", 6, "d"), ("fps", 8, ".2f"), ("step ms", 9, ".1f"), ("read-out %", 10, ".1f"),
           ("bank entries", 12, "d"), ("bank MiB", 9, ".1f"), ("RSS MiB", 9, ".1f"),
           ("peak RSS MiB", 12, ".1f"), ("CUDA max MiB", 12, ".1f"))


def format_header() -> str:
    return "  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)


def format_row(row: Row) -> str:
    values = (row.frame, row.fps, row.step_ms, 100.0 * row.readout_share, row.bank_entries, row.bank_mib,
              row.rss_mib, row.peak_rss_mib, row.cuda_max_mib)
    return "  ".join(f"{'-':>{width}}" if v is None else f"{v:>{width}{spec}}"
                     for (_, width, spec), v in zip(COLUMNS, values))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_steps(seg, video: ProceduralVideo) -> tuple[float, float]:
    """Step a fresh segmenter through frames 0 (given its mask) and 1; their seconds (with
    ``compile``, the first memorises through the compiled memory encoder and the second
    compiles the query encoder and the decoder)."""
    times = []
    for t in (0, 1):
        frame, labels = video.frame(t)
        _sync(seg.device)
        t0 = time.perf_counter()
        seg.step(frame, mask=labels if t == 0 else None)
        _sync(seg.device)
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def fill_bank(seg, video: ProceduralVideo, target: int, start: int = 0,
              on_step: Callable[[int], None] | None = None) -> int:
    """Step ``seg`` through the video from frame ``start`` (given its mask when the
    segmenter is fresh) until the bank holds at least ``target`` entries or one more frame
    would pass its budget. Returns the index of the next frame. Merging must be off for
    the bank to grow."""
    t = start
    while True:
        frame, labels = video.frame(t)
        seg.step(frame, mask=labels if seg.frame_index < 0 else None)
        t += 1
        if on_step:
            on_step(t)
        entries = len(seg.bank)
        per_frame = entries // max(seg.frame_index + 1, 1)  # frames memorised so far
        if entries >= target or entries + per_frame > seg.bank.budget:
            return t


def run_timed(seg, video: ProceduralVideo, frames: int, checkpoints: Sequence[int], start: int = 0,
              on_row: Callable[[Row], None] | None = None, on_step: Callable[[int], None] | None = None,
              memorize_last: bool = False) -> list[Row]:
    """Time ``frames`` steps from video frame ``start`` (frame 0 of a fresh segmenter gets the
    mask and stays out of the timings). A Row at each of ``checkpoints`` (counts of steps)."""
    device = seg.device
    clock = ReadoutClock(seg.net, device)
    times, reads, rows, prev = [], [], [], 0
    try:
        for n in range(1, frames + 1):
            t = start + n - 1
            frame, labels = video.frame(t)
            first = seg.frame_index < 0
            _sync(device)
            t0 = time.perf_counter()
            seg.step(frame, mask=labels if first else None, memorize=memorize_last or n < frames)
            _sync(device)
            elapsed = time.perf_counter() - t0
            if not first:
                times.append(elapsed)
                reads.append(clock.take())
            if on_step:
                on_step(n)
            if n in checkpoints:
                window = slice(prev, len(times)) if len(times) > prev else slice(-1, None)
                prev = len(times)
                rows.append(_row(seg, n, times[window], reads[window], device))
                if on_row:
                    on_row(rows[-1])
    finally:
        clock.close()
    return rows


def _row(seg, n: int, times: list[float], reads: list[float], device: torch.device) -> Row:
    step = statistics.median(times) if times else float("nan")
    rss, hwm = host_memory_kib()
    share = sum(reads) / sum(times) if times and sum(times) > 0 else 0.0
    return Row(frame=n, fps=1.0 / step if step > 0 else float("inf"), step_ms=1e3 * step, readout_share=share,
               bank_entries=len(seg.bank), bank_mib=bank_bytes(seg.bank) / MIB, rss_mib=rss / 1024.0,
               peak_rss_mib=hwm / 1024.0,
               cuda_max_mib=torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else None)


def profile_steps(seg, video: ProceduralVideo, start: int, steps: int, top: int = 20) -> str:
    """torch.profiler over ``steps`` steps from frame ``start`` (the segmenter must already
    have its first frame): the ``top`` operators by self time (CUDA time on a GPU)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = seg.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for t in range(start, start + steps):
            seg.step(video.frame(t)[0])
        _sync(seg.device)
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top)
