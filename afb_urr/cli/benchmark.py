"""``afb-urr-bench`` / ``python tools/benchmark.py``: speed and memory of the Segmenter over
a long synthetic video.

  python tools/benchmark.py                       # CPU: 2000 frames, 240x432, resnet18
  python tools/benchmark.py --device cuda --backbone resnet50 --size 480x854

Frames are generated procedurally on the fly (a panning textured background and
moving textured ellipses; deterministic), so the video itself is never held in
memory: what grows is the model's working memory and the feature bank, which
the budget bounds. At frames 100, 500, 1000, 2000 (those not past --frames, and
the last frame) it prints: fps (median over the frames since the previous
checkpoint), resident memory now and its peak (VmRSS / VmHWM), CUDA max
allocated, and bank entries. The last line says whether the peak memory at the
last checkpoint is within 10% of the one at frame 500 (or the first checkpoint
on shorter runs): CUDA max allocated on a GPU, peak RSS on the CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from . import HelpFormatter, add_debug_option, run_tool

CHECKPOINTS = (100, 500, 1000, 2000)
REFERENCE_FRAME = 500
TOLERANCE = 0.10
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


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 240x432 (HxW), got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size {text} is too small (at least 16x16)")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Segmenter fps and peak memory over a long procedural video (2 objects).",
        formatter_class=HelpFormatter)
    p.add_argument("--backbone", default=None, choices=("resnet18", "resnet34", "resnet50", "resnet101"),
                   help="trunk of the randomly initialised model (default resnet18 on CPU, "
                        "resnet50 on CUDA); ignored with --weights")
    p.add_argument("--weights", metavar="CKPT", help="checkpoint to load instead of a random model")
    p.add_argument("--size", type=parse_size, default="240x432", metavar="HxW", help="frame size")
    p.add_argument("--frames", type=int, default=2000, help="video length")
    p.add_argument("--objects", type=int, default=2, help="objects in the video")
    p.add_argument("--device", default=None, help="torch device (default: cpu)")
    p.add_argument("--config", default="long_video",
                   help="YAML config (path or name in configs/) for the feature bank settings")
    p.add_argument("--budget", type=int, help="feature-bank entries over all objects (config: 300000)")
    p.add_argument("--update-rate", type=float, help="feature-bank merge rate (config value otherwise)")
    p.add_argument("--merge-threshold", type=float,
                   help="cosine similarity above which new features merge (config: 0.95); a value "
                        "above 1 disables merging, so that a randomly initialised model (whose "
                        "features all merge) fills the bank and exercises eviction")
    p.add_argument("--seed", type=int, default=0, help="seed of the video and the random model")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when the peak-memory check fails")
    add_debug_option(p)
    return p


def _segmenter(args):
    """The Segmenter to time: --weights, or a random model of --backbone seeded by --seed."""
    import torch

    from ..inference import build_segmenter, resolve_device
    device = resolve_device(args.device or "cpu")
    torch.manual_seed(args.seed)
    weights = args.weights
    if weights is None:
        from ..model import AFBURR
        weights = AFBURR(args.backbone or ("resnet50" if device.type == "cuda" else "resnet18")).eval()
    return build_segmenter(weights, args.config, device, budget=args.budget,
                           update_rate=args.update_rate, merge_threshold=args.merge_threshold)


def _measure(seg, video, args, checkpoints, header) -> list[dict]:
    """Step through the video; one row of figures at each checkpoint frame."""
    import torch
    from tqdm import tqdm

    from ..inference import bank_entries
    from ..inference.resources import host_memory_kib
    device, cuda = seg.device, seg.device.type == "cuda"
    rows, times = [], []
    prev = 1  # frame 0 only memorises the given mask: leave it out of the timings
    bar = tqdm(total=args.frames, unit="frame", desc="benchmark", dynamic_ncols=True)
    bar.write(header, file=sys.stderr)  # live rows on stderr; the final table goes to stdout
    for t in range(args.frames):
        frame, labels = video.frame(t)
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        seg.step(frame, mask=labels if t == 0 else None, memorize=t < args.frames - 1)
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
        n = t + 1
        bar.update(1)
        if n in checkpoints:
            window = times[prev:n] or times[-1:]
            prev = n
            rss, hwm = host_memory_kib()
            row = dict(frame=n, fps=1.0 / statistics.median(window), rss=rss / 1024.0,
                       peak=hwm / 1024.0,
                       cuda=torch.cuda.max_memory_allocated(device) / MIB if cuda else None,
                       bank=bank_entries(seg))
            rows.append(row)
            bar.write(format_row(row), file=sys.stderr)
            bar.set_postfix(bank=row["bank"], refresh=False)
    bar.close()
    return rows


def run(args) -> int:
    import torch

    if args.frames < 2:
        raise ValueError(f"--frames must be at least 2, got {args.frames}")
    seg = _segmenter(args)
    device, cuda = seg.device, seg.device.type == "cuda"
    video = ProceduralVideo(*args.size, num_objects=args.objects, seed=args.seed)
    checkpoints = sorted({c for c in CHECKPOINTS if c < args.frames} | {args.frames})
    print(f"device {device} ({torch.get_num_threads()} threads)"
          + (f" {torch.cuda.get_device_name(device)}" if cuda else "")
          + f" | backbone {seg.model.backbone} | {args.size[0]}x{args.size[1]} | {args.frames} frames"
          f" | {args.objects} objects | budget {seg.bank.budget} | update rate {seg.bank.update_rate}"
          f" | merge threshold {seg.bank.merge_threshold}")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    header = (f"{'frame':>6} {'fps':>8} {'RSS MiB':>9} {'peak RSS':>9} "
              f"{'CUDA max MiB':>12} {'bank entries':>12}")
    rows = _measure(seg, video, args, checkpoints, header)
    print(header)
    for row in rows:
        print(format_row(row))
    return 0 if report_check(rows, cuda) or not args.check else 1


def format_row(row) -> str:
    cuda = f"{row['cuda']:12.1f}" if row["cuda"] is not None else f"{'-':>12}"
    return (f"{row['frame']:>6} {row['fps']:8.2f} {row['rss']:9.1f} {row['peak']:9.1f} "
            f"{cuda} {row['bank']:>12}")


def report_check(rows, cuda: bool) -> bool:
    """Print whether the last checkpoint's peak is within TOLERANCE of frame 500's; return it."""
    key, what = ("cuda", "CUDA max allocated") if cuda else ("peak", "peak RSS")
    ref = next((r for r in rows if r["frame"] == REFERENCE_FRAME), rows[0])
    last = rows[-1]
    growth = last[key] / ref[key] - 1.0
    ok = growth <= TOLERANCE
    print(f"{what} at frame {last['frame']}: {last[key]:.1f} MiB vs {ref[key]:.1f} MiB at frame "
          f"{ref['frame']} ({growth:+.1%}): {'within' if ok else 'NOT within'} {TOLERANCE:.0%}")
    return ok


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)
