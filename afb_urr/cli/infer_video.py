"""The infer command's --video mode: segment one video (file, frame folder, DAVIS-style
sequence, camera or stream) from masks of any of its frames.

Two engines, one output path: a single mask on the first frame, forward (and every
live source), runs the streaming :class:`Segmenter` frame by frame; masks of several
frames, a later start frame or another direction run a :class:`VideoSession`. Either
way every input is checked first (infer_inputs.py), each frame's masks are written
as soon as it is done, and the --out folder says whether the run finished
(infer_output.py). New objects keep the memory of the earlier ones
(``new_object="keep"``, --new-object) unless asked otherwise: the published
``reset`` restarts the whole bank when an object enters, which loses tracks on real
footage; the dataset protocols keep it.
"""
from __future__ import annotations

import os
import sys

from tqdm import tqdm

from . import one_line
from .infer_inputs import VideoInput, check_arguments, prepare
from .infer_model import bank_budget, build_segmenter
from .infer_output import MARKER, FrameInfo, OutFolder, Outputs, check_out_folder

INCOMPLETE_ENDS = ("stalled", "failed")  # live-source ends that leave the output incomplete


def _step_info(index: int, name: str, result) -> FrameInfo:
    """A streaming StepResult's frame info: score, per-object confidence and area."""
    from ..inference.uncertainty import frame_score, object_stats
    conf = result.probs.max(dim=0).values.float().cpu().numpy()
    unc = result.uncertainty
    return FrameInfo(index, name, result.labels, unc, frame_score(unc, result.labels),
                     object_stats(result.labels, conf))


def run_stream(args, segmenter, inp: VideoInput, outputs: Outputs) -> None:
    """One mask on the first frame, forward: step the Segmenter over the frames as they come."""
    from ..inference import segment_stream
    name = next(iter(inp.masks.paths))
    steps = segment_stream(segmenter, inp.source, first_mask=inp.masks.read(name),
                           first_mask_name=inp.mask_from, max_frames=args.max_frames,
                           progress=not args.no_progress, desc=_desc(args))
    for step in steps:
        frame = step.frame
        outputs.masks(step.index, step.name, step.result.labels, frame if outputs.needs_frames else None)
        outputs.frame_info(_step_info(step.index, step.name, step.result), frame)


def run_session(args, segmenter, inp: VideoInput, outputs: Outputs) -> None:
    """Masks at any frames, any direction: a VideoSession over frames start..end.

    Masks are written as frames are done (a "both" run finishes them out of order);
    the overlay and the report follow in frame order once all are done.
    """
    from ..inference import VideoSession
    from ..io.frame_cache import FrameCache
    session = VideoSession(FrameCache(inp.source.path), segmenter.model, segmenter.config,
                           device=segmenter.device, new_object=segmenter.config.new_object)
    names = inp.names
    try:
        for name in inp.masks.paths:
            session.add_mask(names.index(name), inp.masks.read(name))
        total = inp.end - inp.start + 1
        with tqdm(total=total, desc=_desc(args), unit="frame", disable=args.no_progress,
                  dynamic_ncols=True) as bar:
            for t, res in session.propagate(args.direction, inp.start, inp.end):
                outputs.masks(t, names[t], res.labels, session.frames[t] if outputs.needs_frames else None)
                bar.update(1)
        for t in range(inp.start, inp.end + 1):
            res = session.result(t)
            outputs.frame_info(FrameInfo(t, names[t], res.labels, res.uncertainty, res.score, res.objects),
                               session.frames[t] if outputs.overlay is not None else None)
    finally:
        session.close()


def _desc(args) -> str:
    return os.path.basename(os.path.normpath(args.video)) or args.video


def print_suggestions(args, inp: VideoInput, outputs: Outputs) -> None:
    """--suggest K: the K frames with the highest uncertainty score, annotated frames left out."""
    from ..inference.uncertainty import suggest_frames
    annotated = {inp.index(n) for n in inp.masks.paths} if inp.names else {0}
    picks = suggest_frames(outputs.scores, args.suggest, exclude=annotated)
    print(f"frames most worth annotating next (highest uncertainty score first): {len(picks)}")
    for t in picks:
        print(f"  {outputs.names[t]}  (frame {t}, score {outputs.scores[t]:.4f})")


def _summary(args, n: int) -> str:
    where = [f"{n} masks in {args.out} ({', '.join(args.format or ['palette'])})"] if args.out else []
    where += [f"overlay {args.overlay}"] if args.overlay else []
    where += [f"report {args.report}"] if args.report else []
    return f"segmented {n} frames: " + ", ".join(where)


def run_video(args) -> int:
    """Segment --video from --mask / --masks (or a DAVIS sequence's annotations)."""
    check_arguments(args)
    inp = prepare(args, bank_budget(args))
    if args.out:
        check_out_folder(args.out, args.overwrite, frame_dir=getattr(inp.source, "path", None))
    segmenter = build_segmenter(args, args.weights, new_object=args.new_object or "keep")
    if inp.session or len(inp.masks.paths) > 1:
        print(f"masks: {len(inp.masks.paths)} frames from {inp.mask_from}, objects "
              f"{', '.join(map(str, inp.object_ids))}; {args.direction}")
    folder = OutFolder(args.out, args.overwrite) if args.out else None
    outputs = None
    try:
        if folder:
            folder.open()
        outputs = Outputs(args, inp.object_ids, args.video, inp.size, inp.source.fps or args.fps)
        (run_session if inp.session else run_stream)(args, segmenter, inp, outputs)
    except BaseException as e:
        reason = "interrupted (Ctrl-C)" if isinstance(e, KeyboardInterrupt) else one_line(e)
        if outputs is not None:
            outputs.close(complete=False)
        if folder:
            folder.finish(outputs.masks_written if outputs else 0, reason)
        raise
    end = getattr(inp.source, "end", None)
    n = outputs.masks_written
    if end is not None and end.reason in INCOMPLETE_ENDS:
        outputs.close(complete=False)
        if folder:
            folder.finish(n, end.message)
        kept = f"; {n} masks kept in {args.out}, marked {MARKER}" if args.out else ""
        print(f"incomplete: {end.message}{kept}", file=sys.stderr)
        return 1
    outputs.close()
    if folder:
        folder.finish(n)
    if end is not None:
        print(end.message)
    print(_summary(args, n))
    if args.suggest:
        print_suggestions(args, inp, outputs)
    return 0
