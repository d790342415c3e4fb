"""``afb-urr-infer`` / ``python tools/infer.py``: segment a video from its first frame's mask, or run the synthetic demo.

  python tools/infer.py --video clip.mp4 --mask first.png --weights ckpt.pth --out masks/
  python tools/infer.py --video DAVIS/JPEGImages/480p/bike-packing --weights ckpt.pth \\
      --out results/bike-packing --overlay check.mp4
  python tools/infer.py --demo
  python tools/infer.py --dataset davis17 --root DAVIS --split val --weights ckpt.pth --out results/
  python tools/infer.py --dataset youtube_vos --root YouTubeVOS --split valid --weights ckpt.pth --out yt/
  python tools/infer.py --dataset long_video --root LongVideos --weights ckpt.pth --out lv/

The video is a file OpenCV reads, a folder of frames, or a DAVIS-style
sequence folder (whose first annotation is the default --mask). One DAVIS-palette
PNG is written per frame, named after the frame. Frames are read and written one
at a time, so videos of any length run in bounded memory.

With --dataset, every sequence of a dataset folder is segmented by its protocol
(afb_urr/inference/protocols.py); a summary with fps and peak memory ends the run,
and a rerun skips the sequences already finished.

Layout: each argument group is one ``add_*_options(parser)`` function listed in
``OPTION_GROUPS`` (a feature adds its group there, in its own module when it is
more than a few options); each mode is one function (``run_video`` in
infer_video.py, ``run_demo``, ``run_dataset``) registered in ``MODES``, and
``select_mode`` picks it from the arguments. The model options and the Segmenter
they make are infer_model.py's (over :func:`afb_urr.inference.build_segmenter`).
"""
from __future__ import annotations

import argparse
import os

from . import HelpFormatter, add_debug_option, run_tool
from .infer_model import add_model_options, build_segmenter, build_segmenter_factory
from .infer_video import run_video

DATASETS = ("davis17", "youtube_vos", "long_video")
DEFAULT_SPLITS = {"davis17": "val", "youtube_vos": "valid"}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_input_options(p: argparse.ArgumentParser) -> None:
    io = p.add_argument_group("input")
    io.add_argument("--video", metavar="PATH",
                    help="video file (anything OpenCV reads), folder of frames (jpg/png/bmp/webp, "
                         "sorted by name), DAVIS-style sequence folder <root>/JPEGImages/480p/<seq> "
                         "(its Annotations/480p/<seq>/*.png are the default masks, all of them), a "
                         "camera index (0) or a stream URL (rtsp://, http://, ...)")
    io.add_argument("--sequence", metavar="NAME",
                    help="sequence to take when --video is a dataset root holding several")
    io.add_argument("--mask", metavar="PNG", action="append",
                    help="the label map of one frame (the first; with --start-frame that frame; "
                         "with --direction backward the last): palette PNG (indices) or grayscale "
                         "PNG (values); 0 = background, 1..N = objects, 255 (DAVIS void) = "
                         "background, a 0/255 binary mask = one object. Give it once")
    io.add_argument("--masks", metavar="DIR",
                    help="folder of label PNGs named after their frames (<frame>.png; for a video "
                         "file 00012.png or 12.png), any subset of frames: an id first seen at a "
                         "frame is an object entering there, an id seen before is a correction")
    io.add_argument("--resize-masks", action="store_true",
                    help="resize (nearest-neighbour) masks that are 1-2 px off the frame size "
                         "instead of refusing them; other sizes are always refused")
    io.add_argument("--stream-timeout", type=positive_float, metavar="S",
                    help="live sources: end the run when no frame came for S seconds (default 10); "
                         "the masks so far are kept and the output is marked INCOMPLETE")


def add_propagation_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("propagation (--video)")
    g.add_argument("--direction", choices=("forward", "backward", "both"), default="forward",
                   help="forward: each object from its latest mask before a frame; backward: from "
                        "its earliest mask after it; both: from the nearest mask (ties: the "
                        "earlier one)")
    g.add_argument("--start-frame", metavar="FRAME",
                   help="frame (name or index) the --mask is for and where the run starts; with "
                        "--masks, forward writes the frames from it on, backward those up to it")
    g.add_argument("--max-frames", type=positive_int, metavar="N",
                   help="segment at most N frames from the start (backward: up to it); forward "
                        "from one mask, the N-th is treated as the last frame")
    g.add_argument("--new-object", choices=("keep", "reset"),
                   help="keep (default for --video): objects entering later join the memory of "
                        "the others; reset (the published protocol, used by --dataset): the whole "
                        "memory restarts at the frame where an object enters")


def add_output_options(p: argparse.ArgumentParser) -> None:
    from ..io.exports import FORMATS
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR",
                     help="folder for the masks, one file per frame named after it (00000.png ... "
                          "for video files); a run that stops part-way leaves an INCOMPLETE file "
                          "saying why; a folder holding another run's files is refused")
    out.add_argument("--format", nargs="+", choices=FORMATS, metavar="NAME",
                     help="export formats (default palette): palette (<out>/<frame>.png, DAVIS "
                          "palette), binary (<out>/binary/<id>/<frame>.png, 0/255), coco "
                          "(<out>/coco.json, RLE masks with frame, object id, area, bbox), rgba "
                          "(<out>/rgba/<id>/<frame>.png cut-outs)")
    out.add_argument("--overwrite", action="store_true",
                     help="clear the masks and exports of an earlier run from --out first")
    out.add_argument("--overlay", metavar="FILE.mp4",
                     help="also write an mp4 with the objects tinted and outlined, for a visual check")
    out.add_argument("--overlay-uncertainty", action="store_true",
                     help="shade the pixels where the model is unsure (magenta) in the overlay")
    out.add_argument("--fps", type=float, default=24.0,
                     help="frame rate of the overlay when the input has none (folders of frames)")
    out.add_argument("--report", metavar="FILE.csv",
                     help="write per frame its uncertainty score (sum of the uncertainty over the "
                          "foreground area) and per object its confidence (mean probability) and "
                          "area: columns frame_index, frame, score, object_id, confidence, area")
    out.add_argument("--suggest", type=positive_int, metavar="K",
                     help="print the K frames most worth annotating next (highest score, "
                          "annotated frames left out)")


def add_demo_options(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("demo")
    d.add_argument("--demo", action="store_true",
                   help="segment a deterministic synthetic video (40 frames of moving textured "
                        "shapes, 2 objects) with the demo weights and print its mean J (IoU over "
                        "frames 1..39 and both objects) against the known masks; --out and "
                        "--overlay also work here")


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    ds = p.add_argument_group(
        "dataset protocols",
        "segment every sequence of a dataset folder into --out and print sequences done/skipped, "
        "frames, fps (segmentation only) and peak memory. Resuming: a finished sequence gets a "
        ".done marker and is skipped by a rerun; a sequence that was stopped part-way is "
        "segmented again from its first frame (the feature bank needs the whole history).")
    ds.add_argument("--dataset", choices=DATASETS,
                    help="davis17: <root>/ImageSets/2017/<split>.txt, JPEGImages/<res>/<seq>, first "
                         "masks Annotations/<res>/<seq>/<first>.png; writes <out>/<seq>/<frame>.png. "
                         "youtube_vos: <root>/<split>/{meta.json,JPEGImages,Annotations}, objects may "
                         "start at later frames; writes only the frames meta.json lists, at the "
                         "original size, as <out>/Annotations/<vid>/<frame>.png plus "
                         "<out>/submission.zip. long_video: <root>/JPEGImages/<video>, sparse "
                         "<root>/Annotations/<video> (first frame's annotation starts it), config "
                         "long_video (update rate 0.05); writes <out>/<video>/<frame>.png")
    ds.add_argument("--root", metavar="DIR", help="dataset root folder for --dataset")
    ds.add_argument("--split", help="davis17: ImageSets/2017 list (val, test-dev, train; default val); "
                                    "youtube_vos: split folder (default valid); unused for long_video")
    ds.add_argument("--resolution", default="480p",
                    help="davis17: resolution folder under JPEGImages/Annotations")


def add_other_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("other")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_debug_option(g)


# One function per argument group, in --help order; a feature adds its group here.
OPTION_GROUPS = [add_input_options, add_propagation_options, add_output_options, add_model_options,
                 add_demo_options, add_dataset_options, add_other_options]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Semi-supervised video object segmentation with AFB-URR: give the label map "
                    "of some frames, get one for every frame.",
        formatter_class=HelpFormatter)
    for add in OPTION_GROUPS:
        add(p)
    return p


# Options only the --video mode reads: other modes refuse them rather than drop them.
VIDEO_ONLY = ("video", "sequence", "mask", "masks", "resize_masks", "stream_timeout", "start_frame",
              "max_frames", "new_object", "format", "overwrite", "overlay_uncertainty", "report",
              "suggest")


def reject_video_options(args, mode: str, allowed=()) -> None:
    """One-line error naming the --video options given to another mode (they would be ignored)."""
    given = [f"--{k.replace('_', '-')}" for k in VIDEO_ONLY
             if k not in allowed and getattr(args, k, None) not in (None, False)]
    if args.direction != "forward" and "direction" not in allowed:
        given.append("--direction")
    if given:
        raise ValueError(f"{', '.join(given)} cannot be combined with {mode}")


def run_demo(args) -> int:
    """Segment the deterministic synthetic demo video and print its mean J."""
    from ..inference import demo
    reject_video_options(args, "--demo")
    weights = args.weights or demo.demo_weights()
    if not args.weights and not os.path.isfile(weights):  # a given --weights fails in the factory
        raise ValueError(f"demo weights not found at {weights}; train them with "
                         f"`{demo.TRAIN_DEMO_HINT}` or pass --weights CKPT")
    mean_j = demo.run_demo(build_segmenter(args, weights), args.out, args.overlay, args.fps,
                           progress=not args.no_progress)
    print(f"mean J: {mean_j:.3f}")
    return 0


def run_dataset(args) -> int:
    """Run the --dataset protocol over --root into --out and print its summary."""
    import torch

    from ..inference import protocols, resolve_device
    if not args.root:
        raise ValueError(f"--root is required with --dataset {args.dataset}: the dataset folder")
    if not os.path.isdir(args.root):
        raise ValueError(f"--root {args.root}: folder not found")
    if not args.weights:
        raise ValueError("--weights is required: a checkpoint to segment with")
    if not args.out:
        raise ValueError("--out is required with --dataset: the results folder")
    if args.overlay:
        raise ValueError("--overlay cannot be combined with --dataset")
    reject_video_options(args, "--dataset")
    if args.split and args.dataset == "long_video":
        raise ValueError("--split does not apply to --dataset long_video (its root has no splits)")
    if args.config is None:
        args.config = args.dataset  # configs/<dataset>.yaml
    split = args.split or DEFAULT_SPLITS.get(args.dataset)
    device = resolve_device(args.device)
    factory = build_segmenter_factory(args, args.weights)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    progress = not args.no_progress
    os.makedirs(args.out, exist_ok=True)
    if args.dataset == "davis17":
        summary = protocols.run_davis(factory, args.root, split, args.out, resolution=args.resolution,
                                      progress=progress)
    elif args.dataset == "youtube_vos":
        summary = protocols.run_youtube_vos(factory, args.root, split, args.out, progress=progress)
    else:
        summary = protocols.run_long_video(factory, args.root, args.out, progress=progress)
    print(summary.format(device))
    return 0


MODES = {"video": run_video, "demo": run_demo, "dataset": run_dataset}


def select_mode(args) -> str:
    """Name of the MODES entry the arguments ask for."""
    if args.dataset:
        return "dataset"
    return "demo" if args.demo else "video"


def main(argv=None) -> int:
    return run_tool(build_parser(), lambda args: MODES[select_mode(args)](args), argv)
