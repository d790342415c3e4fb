"""The infer command over many videos: ``--videos LIST.txt`` (a plain list of videos and
their masks) and the process split that ``--dataset`` and ``--videos`` share under
``torchrun --nproc_per_node N`` (afb_urr/inference/shard.py).

List format (:func:`afb_urr.io.datasets.read_video_list`): one video per line,
``VIDEO MASKS [NAME]``, fields split as a shell does (quote paths with spaces),
paths relative to the list file, ``#`` comments. VIDEO is a video file or a
frame folder; MASKS a label PNG of the first frame or a folder of label PNGs
named after frames (objects may start at later frames); NAME (default: the
video's name without extension) is the output folder ``<out>/<NAME>/``.
"""
from __future__ import annotations

import argparse
import os


def add_list_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "many videos",
        "--dataset and --videos split their sequences over the processes of a torchrun launch "
        "(torchrun --nproc_per_node N tools/infer.py ...), longest first, each process on its "
        "own GPU (or on CPU with gloo); the outputs are those of one process")
    g.add_argument("--videos", metavar="LIST.txt",
                   help="segment every video of a list file into <out>/<name>/<frame>.png: one "
                        "line per video, 'VIDEO MASKS [NAME]' (VIDEO a file or frame folder, MASKS "
                        "the first frame's label PNG or a folder of label PNGs named after frames; "
                        "relative to the list file; # comments); each runs forward from its first "
                        "mask, and a rerun skips finished videos")


def start_shard(args):
    """(Shard, device) of this process: under torchrun its rank and device, else rank 0 of 1."""
    from ..inference import resolve_device
    from ..inference.shard import shard_from_env
    shard, device = shard_from_env(resolve_device(args.device))
    args.device = str(device)
    return shard, device


def run_protocol(args, device, shard, call, **overrides) -> int:
    """Run ``call(factory, progress)`` -> ProtocolSummary; rank 0 prints the merged summary.
    ``overrides``: InferenceConfig fields for the Segmenters."""
    import torch

    from .infer_model import build_segmenter_factory
    factory = build_segmenter_factory(args, args.weights, **overrides)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    os.makedirs(args.out, exist_ok=True)
    try:
        summary = call(factory, not args.no_progress)
        if shard.is_main:
            print(summary.format(device))
    finally:
        shard.close()
    return 0


def run_list(args) -> int:
    """Segment the videos of --videos LIST.txt into --out (split over torchrun processes)."""
    from ..config import USER_EVICTION, USER_NEW_OBJECT
    from ..inference import protocols
    from ..io.datasets import read_video_list
    from .infer import reject_video_options
    if not args.weights:
        raise ValueError("--weights is required: a checkpoint to segment with")
    if not args.out:
        raise ValueError("--out is required with --videos: the results folder")
    if args.overlay or args.dataset or args.demo:
        raise ValueError("--videos cannot be combined with --overlay, --dataset or --demo")
    reject_video_options(args, "--videos", allowed=("new_object",))
    videos = read_video_list(args.videos)
    shard, device = start_shard(args)
    return run_protocol(args, device, shard, lambda factory, progress: protocols.run_video_list(
        factory, videos, args.out, progress, shard),  # user videos: defaults for people
        new_object=args.new_object or USER_NEW_OBJECT, eviction=args.eviction or USER_EVICTION)
