"""``afb-urr-bench-uncertainty`` / ``python tools/bench_uncertainty.py``: how well the
per-frame uncertainty score predicts where a segmentation is wrong.

  python tools/bench_uncertainty.py                     # 12 held-out videos of 20 frames
  python tools/bench_uncertainty.py --videos 40

Held-out synthetic videos (the ``val`` split; frames, size and objects from the
``val`` section of ``--config``, default configs/train_synthetic.yaml) are
segmented from their first frame's truth with the demo weights. For every
later frame it takes the error 1 - J (mean over objects) and several scores
of the prediction, and prints the Spearman rank correlation of each score with
the error over all frames. ``frame_score`` (afb_urr/inference/uncertainty.py,
the score ``--report`` writes) is the first row; target >= 0.65.

Scores, with U = exp(1 - p1 / p2) per pixel (p1, p2 the two largest object
probabilities; ``StepResult.uncertainty``) and F the foreground (predicted
object) area in pixels, at least 1:
  frame_score    sum(U) / F
  mean U         mean of U over the frame
  1 - p1         sum(1 - p1) / F
  entropy        sum of the entropy of the probabilities (normalised by log K) / F
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ..config import load_config
from ..data import SyntheticVideos
from ..evaluation.metrics import spearman
from ..inference.uncertainty import frame_score
from . import HelpFormatter, add_debug_option, run_tool
from .synthetic_eval import add_model_options, demo_weights_or, segment_scored

TARGET = 0.65


def _foreground(labels: np.ndarray) -> int:
    return max(int(np.count_nonzero(labels)), 1)


def _one_minus_top(r) -> float:
    top = r.probs.max(dim=0).values
    return float((1.0 - top).sum()) / _foreground(r.labels)


def _entropy(r) -> float:
    p = r.probs.clamp_min(1e-12)
    h = -(p * p.log()).sum(dim=0) / max(np.log(p.shape[0]), 1e-12)
    return float(h.sum()) / _foreground(r.labels)


SCORES = {
    "frame_score": lambda r: frame_score(r.uncertainty, r.labels),
    "mean U": lambda r: float(r.uncertainty.mean()),
    "1 - p1": _one_minus_top,
    "entropy": _entropy,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Spearman correlation of per-frame uncertainty scores "
                                            "with the error 1 - J on held-out synthetic videos.",
                                formatter_class=HelpFormatter)
    p.add_argument("--config", default="train_synthetic",
                   help="config whose 'val' section gives frames, size and object counts")
    p.add_argument("--videos", type=int, default=12, help="held-out videos (val split 0..N-1)")
    p.add_argument("--frames", type=int, help="frames per video (default: the val section's)")
    add_model_options(p)
    add_debug_option(p)
    return p


def collect(factory, videos, progress: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(1 - J per frame, {score name: per frame}) over frames 1.. of every video."""
    errors, scores = [], {name: [] for name in SCORES}
    for i in range(len(videos)):
        v = videos[i]
        for _, r, j in segment_scored(factory, v.frames, v.masks, progress, v.name):
            errors.append(1.0 - j)
            for name, fn in SCORES.items():
                scores[name].append(fn(r))
    return np.asarray(errors), {k: np.asarray(s) for k, s in scores.items()}


def run(args) -> int:
    from ..inference import segmenter_factory
    if args.videos < 1:
        raise ValueError(f"--videos must be >= 1, got {args.videos}")
    torch.set_num_threads(args.threads)
    vc = load_config(args.config, sections=("val",)).val
    frames = args.frames or vc.frames
    videos = SyntheticVideos("val", args.videos, frames, vc.size, vc.min_objects, vc.max_objects,
                             cache_size=0)
    factory = segmenter_factory(demo_weights_or(args.weights), None, args.device)
    errors, scores = collect(factory, videos, not args.no_progress)
    print(f"{args.videos} held-out videos of {frames} frames at {vc.size[0]}x{vc.size[1]}: "
          f"{errors.size} frames, mean J {1 - errors.mean():.3f}")
    print("score         Spearman with 1 - J")
    for name, s in scores.items():
        print(f"{name:<13} {spearman(s, errors):.3f}")
    rho = spearman(scores["frame_score"], errors)
    print(f"frame_score: {rho:.3f} (target >= {TARGET}: {'met' if rho >= TARGET else 'not met'})")
    return 0


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)
