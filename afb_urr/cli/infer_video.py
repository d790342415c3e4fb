"""The infer command's --video mode: segment one video (file, frame folder, DAVIS-style
sequence) from its mask(s) into --out and/or an --overlay video."""
from __future__ import annotations

import os

from .infer_model import build_segmenter


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


