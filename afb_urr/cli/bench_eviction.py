"""``afb-urr-bench-eviction`` / ``python tools/bench_eviction.py``: J over long synthetic
videos with the published ``threshold`` eviction and with ``minimal`` eviction.

  python tools/bench_eviction.py                               # 1 video, 1000 frames, both modes
  python tools/bench_eviction.py --modes minimal --videos 2 --json minimal.json

Each video (held-out synthetic split, ``--objects`` objects, ``--size``) is
segmented from its first frame's truth with the demo weights, once per
eviction mode, with a budget small enough that the bank must evict. With the
default merge threshold the demo weights merge nearly every new feature (the
bank never fills, so the modes cannot differ); ``--merge-threshold 1.5`` (the
default here) stops merging, as in a bank whose features stop matching, and
every frame then appends its features. Prints per mode: mean J over frames
1.. and objects, J per quarter of the video, bank entries (mean, last) and
entries evicted.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ..config import EVICTION_MODES
from ..data.synthetic import render_video, split_seed
from . import HelpFormatter, add_debug_option, run_tool
from .benchmark import parse_size
from .synthetic_eval import DEMO_SIZE, add_model_options, demo_weights_or, segment_scored

FIRST_VIDEO = 1000  # val-split indices from here (apart from the 20-frame validation videos)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="J over long synthetic videos per eviction mode.",
                                formatter_class=HelpFormatter)
    p.add_argument("--modes", nargs="+", choices=EVICTION_MODES, default=list(EVICTION_MODES),
                   help="eviction modes to run")
    p.add_argument("--videos", type=int, default=1, help="videos (val split, indices from 1000 + --first)")
    p.add_argument("--first", type=int, default=0, help="skip this many videos of the sequence")
    p.add_argument("--frames", type=int, default=1000, help="frames per video")
    p.add_argument("--size", type=parse_size, default=DEMO_SIZE, metavar="HxW", help="frame size")
    p.add_argument("--objects", type=int, default=2, help="objects per video")
    p.add_argument("--budget", type=int, default=3000,
                   help="bank entries over all objects; a frame brings (H/16)*(W/16) per object")
    p.add_argument("--merge-threshold", type=float, default=1.5,
                   help="cosine similarity above which a feature merges (> 1: never)")
    p.add_argument("--update-rate", type=float, default=0.1, help="merge rate")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    add_model_options(p)
    add_debug_option(p)
    return p


def run_mode(factory, frames, truth, progress: bool, desc: str) -> dict:
    """Segment one video with one Segmenter configuration: J per frame and bank statistics."""
    js, entries, evicted = [], [], 0
    seg_box = []

    def make():
        seg_box.append(factory())
        return seg_box[0]
    for _, _, j in segment_scored(make, frames, truth, progress, desc):
        js.append(j)
        entries.append(sum(seg_box[0].bank.sizes))
    evicted = int(sum(seg_box[0].bank.evicted))
    quarters = [float(np.mean(q)) for q in np.array_split(np.asarray(js), 4)]
    return {"J": float(np.mean(js)), "J_quarters": quarters, "entries_mean": float(np.mean(entries)),
            "entries_last": entries[-1], "evicted": evicted, "frames": len(js) + 1}


def run(args) -> int:
    from ..inference import segmenter_factory
    torch.set_num_threads(args.threads)
    weights = demo_weights_or(args.weights)
    results = {m: [] for m in args.modes}
    for v in range(args.first, args.first + args.videos):
        seed = split_seed("val", FIRST_VIDEO + v)
        frames, truth = render_video(seed, args.frames, args.size, args.objects)
        for mode in args.modes:
            factory = segmenter_factory(weights, None, args.device, budget=args.budget,
                                        merge_threshold=args.merge_threshold,
                                        update_rate=args.update_rate, eviction=mode)
            r = run_mode(factory, frames, truth, not args.no_progress, f"video {v} {mode}")
            results[mode].append({"seed": seed, **r})
            print(f"video {v} (seed {seed}) {mode}: J {r['J']:.3f}, quarters "
                  f"{' '.join(f'{q:.3f}' for q in r['J_quarters'])}, bank entries mean "
                  f"{r['entries_mean']:.0f} last {r['entries_last']}, evicted {r['evicted']}", flush=True)
    for mode, rows in results.items():
        print(f"{mode}: mean J over {len(rows)} video(s) of {args.frames} frames: "
              f"{np.mean([r['J'] for r in rows]):.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "debug"}, "results": results},
                      f, indent=1)
    return 0


def main(argv=None) -> int:
    return run_tool(build_parser(), run, argv)
