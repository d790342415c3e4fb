"""``--snapshot-every`` and ``--resume`` of ``tools/infer.py --video``: snapshots of a
forward run beside its masks, and continuing an interrupted run from the last one.

The snapshot itself (contents, atomic write, checks) is
:mod:`afb_urr.inference.snapshot`; this module holds the options and the
checks on the command line.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from ..inference import snapshot as snap


def add_resume_options(parser: argparse.ArgumentParser) -> None:
    """The resume options, in their own group."""
    g = parser.add_argument_group(
        "resume a long video",
        f"with --out, a forward run over a video file or frame folder keeps a snapshot of its "
        f"state in <out>/{snap.SNAPSHOT_NAME} (written atomically; removed when the run "
        f"finishes); an interrupted run continues from it with --resume, giving the masks an "
        f"uninterrupted run gives")
    g.add_argument("--snapshot-every", type=int, default=snap.DEFAULT_EVERY, metavar="N",
                   help="frames between snapshots")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run whose snapshot is in --out (same video, "
                        "masks, weights, settings and --max-frames)")


@dataclass
class ResumableRun:
    """A streaming run that keeps snapshots: where it starts, how to wrap its steps, and
    the output bookkeeping (``Outputs``: masks written, scores, COCO annotations) it saves."""
    segmenter: object
    path: str
    identity: snap.RunIdentity
    every: int
    resumed: snap.Resumed | None = None
    outputs: object = None

    @property
    def start(self) -> int:
        return self.resumed.position if self.resumed else 0

    def attach(self, outputs) -> None:
        """Use ``outputs`` (cli.infer_output.Outputs); a resumed run restores its records."""
        self.outputs = outputs
        state = self.resumed.outputs if self.resumed else None
        if state:
            outputs.masks_written = int(state["written"])
            outputs.scores = {int(k): float(v) for k, v in state["scores"].items()}
            outputs.names = {int(k): str(v) for k, v in state["names"].items()}
            coco = _coco_writer(outputs)
            if coco is not None and state.get("coco") is not None:
                coco.load_state(state["coco"], upto=self.start)

    def _records(self) -> dict | None:
        o = self.outputs
        if o is None:
            return None
        coco = _coco_writer(o)
        return {"written": o.masks_written, "scores": dict(o.scores), "names": dict(o.names),
                "coco": coco.state() if coco is not None else None}

    def wrap(self, steps):
        return snap.with_snapshots(steps, self.segmenter, self.path, self.identity, self.every,
                                   self.resumed, self._records)

    def describe(self) -> str:
        if not self.resumed:
            return ""
        return f"resumed at frame {self.resumed.position} ({self.resumed.written} masks kept)"


def _coco_writer(outputs):
    exports = getattr(outputs, "exports", None)
    return exports.writers.get("coco") if exports is not None else None


# Outputs a resumed run cannot continue: they are written whole by one uninterrupted run.
_NOT_RESUMABLE = (("overlay", "--overlay"), ("report", "--report"), ("overwrite", "--overwrite"))


def check_resume_args(args) -> None:
    """One-line errors for option combinations resume cannot serve (before anything is read)."""
    if args.snapshot_every < 1:
        raise ValueError(f"--snapshot-every must be >= 1 frame, got {args.snapshot_every}")
    path = snap.snapshot_path(args.out) if args.out else None
    if not args.resume:
        if path and os.path.isfile(path) and not args.overwrite:
            raise ValueError(f"{args.out} holds an interrupted run (snapshot {path}): pass --resume "
                             f"to continue it, or --overwrite to start over")
        return
    if not args.out:
        raise ValueError("--resume needs --out: the folder of the interrupted run")
    given = [opt for key, opt in _NOT_RESUMABLE if getattr(args, key, None)]
    if given:
        raise ValueError(f"--resume cannot be combined with {given[0]} (a resumed run continues "
                         f"the masks and exports in --out only)")
    if not os.path.isfile(path):
        raise ValueError(f"nothing to resume: no snapshot {path} (the run finished, or never "
                         f"started in that folder)")


def prepare_run(args, inp, segmenter) -> ResumableRun | None:
    """The snapshot bookkeeping of a ``--video`` run (``inp``: cli.infer_inputs.VideoInput),
    None when it keeps none (no --out, a live source, a VideoSession run). With --resume the
    Segmenter is restored here; every check is done before anything is written."""
    streaming = not inp.live and not inp.session
    if args.resume and not streaming:
        raise ValueError("--resume continues runs from one mask on the first frame, forward, over a "
                         "video file or frame folder" + (f"; {args.video} is live" if inp.live else ""))
    if not args.out or not streaming:
        return None
    path = snap.snapshot_path(args.out)
    first = next(iter(inp.masks.paths))
    identity = snap.RunIdentity(snap.video_identity(inp.source, inp.size),
                                snap.masks_digest(inp.masks.read(first)), args.max_frames)
    run = ResumableRun(segmenter, path, identity, args.snapshot_every)
    if args.resume:
        palette = "palette" in (args.format or ["palette"])  # then the last mask must be there
        run.resumed = snap.load_snapshot(path, segmenter, identity, args.out if palette else None)
    elif os.path.isfile(path):  # --overwrite (check_resume_args refused it otherwise)
        os.remove(path)
    return run
