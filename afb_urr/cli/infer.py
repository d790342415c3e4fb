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

Each mode is one function (``run_video``, ``run_demo``, ``run_dataset``) registered in ``MODES``;
``select_mode`` picks it from the arguments, so further modes plug in beside them. The
model assembly is :func:`afb_urr.inference.build_segmenter`'s.
"""
from __future__ import annotations

import argparse
import os

from . import HelpFormatter, add_debug_option, run_tool

DEFAULT_CONFIG = "davis17"  # configs/davis17.yaml; with --dataset, the config named after the dataset
DATASETS = ("davis17", "youtube_vos", "long_video")
DEFAULT_SPLITS = {"davis17": "val", "youtube_vos": "valid"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Semi-supervised video object segmentation with AFB-URR: give the first "
                    "frame's label map, get one for every frame.",
        formatter_class=HelpFormatter)
    io = p.add_argument_group("input / output")
    io.add_argument("--video", metavar="PATH",
                    help="video file (anything OpenCV reads), folder of frames (jpg/png/bmp/webp, "
                         "sorted by name), or DAVIS-style sequence folder "
                         "<root>/JPEGImages/480p/<seq>")
    io.add_argument("--sequence", metavar="NAME",
                    help="sequence to take when --video is a dataset root holding several")
    io.add_argument("--mask", metavar="PNG",
                    help="first frame's label map: palette PNG (indices) or grayscale PNG "
                         "(values); 0 = background, 1..N = objects, 255 (DAVIS void) = background, "
                         "a 0/255 binary mask = one object. Default for a DAVIS sequence: "
                         "Annotations/480p/<seq>/<first frame>.png")
    io.add_argument("--out", metavar="DIR",
                    help="folder for the masks: one DAVIS-palette PNG per frame, named after the "
                         "frame (00000.png ... for video files)")
    io.add_argument("--overlay", metavar="FILE.mp4",
                    help="also write an mp4 with the objects tinted and outlined, for a visual check")
    io.add_argument("--fps", type=float, default=24.0,
                    help="frame rate of the overlay when the input has none (folders of frames)")
    io.add_argument("--max-frames", type=int, metavar="N",
                    help="stop after N frames (the N-th is then treated as the last frame)")
    m = p.add_argument_group("model")
    m.add_argument("--weights", metavar="CKPT",
                   help="checkpoint (published format); for --demo default weights/demo_synthetic_resnet18.pth")
    m.add_argument("--config",
                   help="YAML config (path or name in configs/); its 'inference' section sets the "
                        f"feature bank; the options below override it (default: {DEFAULT_CONFIG}; "
                        "with --dataset, that dataset's config: davis17, youtube_vos, long_video)")
    m.add_argument("--device", default=None,
                   help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    m.add_argument("--budget", type=int,
                   help="feature-bank entries over all objects (config default 300000)")
    m.add_argument("--update-rate", type=float,
                   help="feature-bank merge rate (0.1 DAVIS, 0.05 YouTube-VOS / long videos)")
    d = p.add_argument_group("demo")
    d.add_argument("--demo", action="store_true",
                   help="segment a deterministic synthetic video (40 frames of moving textured "
                        "shapes, 2 objects) with the demo weights and print its mean J (IoU over "
                        "frames 1..39 and both objects) against the known masks; --out and "
                        "--overlay also work here")
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
    g = p.add_argument_group("other")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_debug_option(g)
    return p


def build_segmenter_factory(args, weights: str):
    """A callable making a fresh Segmenter per video from --config, --device, --budget,
    --update-rate; the weights are loaded on its first call, once."""
    from ..inference import segmenter_factory
    return segmenter_factory(weights, args.config or DEFAULT_CONFIG, args.device, budget=args.budget,
                             update_rate=args.update_rate)


def build_segmenter(args, weights: str):
    """Load ``weights`` into a Segmenter configured by the arguments."""
    return build_segmenter_factory(args, weights)()


def _check_out_dir(out: str, source) -> None:
    src_dir = getattr(source, "path", None)
    if src_dir and os.path.isdir(src_dir) and os.path.realpath(out) == os.path.realpath(src_dir):
        raise ValueError(f"--out {out} is the input frame folder; choose another folder so the "
                         f"frames are not overwritten")


def run_video(args) -> int:
    """Segment --video from --mask (or the DAVIS sequence's first annotation)."""
    from ..inference import segment_stream, write_outputs
    from ..io import open_frames, read_mask, void_to_background
    if not args.video:
        raise ValueError("--video is required (or use --demo)")
    if not args.weights:
        raise ValueError("--weights is required: a checkpoint to segment with")
    if not args.out and not args.overlay:
        raise ValueError("nothing to write: give --out DIR and/or --overlay FILE.mp4")
    source = open_frames(args.video, sequence=args.sequence)
    mask_path = args.mask or source.default_mask
    if mask_path is None:
        raise ValueError(f"--mask is required: {args.video} has no first-frame annotation "
                         f"(only DAVIS-style sequence folders come with one)")
    mask = void_to_background(read_mask(mask_path), binary_255_is_object=args.mask is not None)
    if args.out:
        _check_out_dir(args.out, source)
        os.makedirs(args.out, exist_ok=True)
    segmenter = build_segmenter(args, args.weights)
    steps = segment_stream(segmenter, source, first_mask=mask, first_mask_name=f"mask {mask_path}",
                           max_frames=args.max_frames,
                           progress=not args.no_progress,
                           desc=os.path.basename(os.path.normpath(args.video)))
    n = write_outputs(steps, args.out, args.overlay, source.fps or args.fps)
    where = [f"{n} masks in {args.out}"] if args.out else []
    where += [f"overlay {args.overlay}"] if args.overlay else []
    print(f"segmented {n} frames: " + ", ".join(where))
    return 0


def run_demo(args) -> int:
    """Segment the deterministic synthetic demo video and print its mean J."""
    from ..inference import demo
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
    unused = [o for o, v in (("--video", args.video), ("--sequence", args.sequence), ("--mask", args.mask),
                             ("--overlay", args.overlay), ("--max-frames", args.max_frames)) if v]
    if unused:
        raise ValueError(f"{', '.join(unused)} cannot be combined with --dataset")
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
