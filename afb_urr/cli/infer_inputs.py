"""The --video mode's inputs, all checked before the first frame is segmented: the
video, its masks (--mask, --masks or a DAVIS-style sequence's annotations), the frames
to segment (--direction, --start-frame, --max-frames) and whether a VideoSession or
the streaming Segmenter runs them.

Every mask is read once here (readable, a label map, the frames' size, objects that
fit the bank); a repeated or ignored input is an error, never dropped in silence.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..io import FrameSource, open_frames
from ..io.annotations import MaskFolder, check_masks, find_masks
from ..io.live import LiveSource, is_live

LIVE_STREAM_TIMEOUT = 10.0  # seconds a live source may go without a frame (--stream-timeout)


@dataclass
class VideoInput:
    """A checked --video run.

    source: the opened frames; live: a camera or stream; names: frame names (None
    for live sources and single-mask video files, where they are not needed);
    size: (H, W); masks: the checked annotations; mask_from: what gave them (for
    messages); session: run a VideoSession (several masks, a start other than the
    first frame, or a direction other than forward); start / end: the frames to
    write (indices, inclusive; end None: to the end).
    """
    source: FrameSource
    live: bool
    names: list[str] | None
    size: tuple[int, int]
    masks: MaskFolder
    mask_from: str
    session: bool
    start: int = 0
    end: int | None = None

    @property
    def object_ids(self) -> list[int]:
        return sorted({i for ids in self.masks.object_ids.values() for i in ids})

    def index(self, name: str) -> int:
        return 0 if self.names is None else self.names.index(name)


def max_objects(budget: int, size: tuple[int, int]) -> int:
    """Most objects whose per-object bank budget still holds one frame's features (at most 254)."""
    from ..bank import FeatureBank
    per_frame = -(-size[0] // 16) * -(-size[1] // 16)
    fit = 0
    for k in range(2, 256):  # k counts the background
        if FeatureBank.object_budget(budget, k) >= per_frame:
            fit = k - 1
    return fit


def check_arguments(args) -> None:
    """Combinations that cannot work or would leave an input unused (nothing is read yet)."""
    if not args.video:
        raise ValueError("--video is required (or use --demo)")
    if not args.weights:
        raise ValueError("--weights is required: a checkpoint to segment with")
    if not (args.out or args.overlay or args.report):
        raise ValueError("nothing to write: give --out DIR, --overlay FILE.mp4 and/or --report FILE.csv")
    if args.mask and len(args.mask) > 1:
        raise ValueError(f"--mask given {len(args.mask)} times ({', '.join(args.mask)}); it is the "
                         f"mask of one frame: for several frames put the PNGs, named after their "
                         f"frames, in a folder and give --masks DIR")
    if args.mask and args.masks:
        raise ValueError("give --mask PNG (one frame) or --masks DIR (any frames), not both")
    unused = [(opt, need) for opt, given, need in (
        ("--format", args.format is not None, "--out"), ("--overwrite", args.overwrite, "--out"),
        ("--overlay-uncertainty", args.overlay_uncertainty, "--overlay"))
        if given and not getattr(args, need[2:])]
    if unused:
        raise ValueError(f"{unused[0][0]} needs {unused[0][1]}")
    if args.report and os.path.isdir(args.report):
        raise ValueError(f"--report {args.report} is a folder; give a CSV file name")
    if args.start_frame is not None and args.masks and args.direction == "both":
        raise ValueError("--start-frame with --masks needs --direction forward (frames from it on) "
                         "or backward (frames up to it)")
    if args.max_frames is not None and args.direction == "both":
        raise ValueError("--max-frames applies to --direction forward or backward")


def _open(args) -> FrameSource:
    live = is_live(args.video)
    if args.stream_timeout is not None and not live:
        raise ValueError(f"--stream-timeout applies to cameras and stream URLs, not {args.video}")
    if live:
        moved = [o for o, v in (("--masks", args.masks), ("--start-frame", args.start_frame),
                                ("--direction " + args.direction, args.direction != "forward")) if v]
        if moved:
            raise ValueError(f"{moved[0]} cannot be used with a live source: its frames are "
                             f"segmented forward as they arrive, from the --mask of the first one")
        if not args.mask:
            raise ValueError("--mask is required with a live source: the first frame's label map")
    timeout = args.stream_timeout if args.stream_timeout is not None else LIVE_STREAM_TIMEOUT
    return open_frames(args.video, sequence=args.sequence, stream_timeout=timeout)


def frame_names(source: FrameSource) -> list[str]:
    """The names of all frames of a file or folder source (a video file is counted once
    when its container does not say how many frames it has)."""
    names = getattr(source, "names", None)
    if names is not None:
        return list(names)
    from ..io.frame_cache import FrameCache
    cache = FrameCache(source.path, max_bytes=0)
    try:
        return list(cache.names)
    finally:
        cache.close()


def _frame_of(value: str, names: list[str], option: str) -> int:
    """A frame given by name or index -> its index."""
    if value in names:
        return names.index(value)
    if value.lstrip("-").isdigit():
        i = int(value)
        if 0 <= i < len(names):
            return i
        raise ValueError(f"{option} {value}: the video has frames 0..{len(names) - 1}")
    raise ValueError(f"{option} {value}: no such frame (frames {names[0]} .. {names[-1]})")


def _annotations(args, source, names, size, fit) -> tuple[MaskFolder, str]:
    """The checked masks and what gave them: --masks DIR, --mask PNG, or a DAVIS-style
    sequence's annotation folder (all its masks: later annotations are used, not dropped)."""
    if args.masks:
        found = find_masks(args.masks, names)
        return check_masks(found, size, args.resize_masks, fit), f"--masks {args.masks}"
    ann_dir = getattr(source, "annotation_dir", None)
    if not args.mask and source.default_mask and ann_dir:
        found = find_masks(ann_dir, names)
        return check_masks(found, size, args.resize_masks, fit), f"the annotations in {ann_dir}"
    if not args.mask:
        raise ValueError(f"--mask is required: {args.video} has no first-frame annotation "
                         f"(only DAVIS-style sequence folders come with one); for masks of several "
                         f"frames use --masks DIR")
    if names is None:  # a live source: the mask is its first frame's
        name = "00000"
    elif args.start_frame is not None:
        name = names[_frame_of(args.start_frame, names, "--start-frame")]
    else:
        name = names[-1] if args.direction == "backward" else names[0]
    folder = check_masks({name: args.mask[0]}, size, args.resize_masks, fit, binary_255_is_object=True)
    return folder, f"--mask {args.mask[0]}"


def _span(args, inp: VideoInput) -> tuple[int, int]:
    """Frames to write (start, end inclusive) from --start-frame, --direction, --max-frames;
    a mask the run would never use is an error."""
    last = len(inp.names) - 1
    start, end = 0, last
    first = _frame_of(args.start_frame, inp.names, "--start-frame") if args.start_frame else None
    if args.direction == "forward":
        start = first if first is not None else 0
        if args.max_frames:
            end = min(last, start + args.max_frames - 1)
    elif args.direction == "backward":
        end = first if first is not None else last
        if args.max_frames:
            start = max(0, end - args.max_frames + 1)
    for name, path in inp.masks.paths.items():
        t = inp.names.index(name)
        if (args.direction == "forward" and t > end) or (args.direction == "backward" and t < start):
            raise ValueError(f"mask {path} is for frame {name}, which this run never reaches "
                             f"({args.direction} over frames {inp.names[start]}..{inp.names[end]})")
    return start, end


def prepare(args, budget: int) -> VideoInput:
    """Open --video and check every input (see the module docstring); nothing is written.
    ``budget``: the feature bank's entries, which bound the objects that fit."""
    check_arguments(args)
    source = _open(args)
    live = isinstance(source, LiveSource)
    names = None if live else frame_names(source)
    size = tuple(int(v) for v in source.frame_size())
    fit = max_objects(budget, size)
    masks, mask_from = _annotations(args, source, names, size, fit)
    inp = VideoInput(source, live, names, size, masks, mask_from, session=False)
    if live:
        return inp
    inp.start, inp.end = _span(args, inp)
    first_mask = names.index(next(iter(masks.paths)))
    inp.session = len(masks.paths) > 1 or args.direction != "forward" or first_mask != 0 or inp.start != 0
    return inp
