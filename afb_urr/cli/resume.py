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
    """A run that keeps snapshots: where it starts and how to wrap its steps."""
    segmenter: object
    path: str
    identity: snap.RunIdentity
    every: int
    resumed: snap.Resumed | None = None

    @property
    def start(self) -> int:
        return self.resumed.position if self.resumed else 0

    def wrap(self, steps):
        return snap.with_snapshots(steps, self.segmenter, self.path, self.identity, self.every,
                                   self.resumed)

    def describe(self) -> str:
        if not self.resumed:
            return ""
        return f" (resumed at frame {self.resumed.position}: {self.resumed.written} masks kept)"


def check_resume_args(args) -> None:
    """One-line errors for option combinations resume cannot serve (before any work)."""
    if args.snapshot_every < 1:
        raise ValueError(f"--snapshot-every must be >= 1 frame, got {args.snapshot_every}")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the folder of the interrupted run")
    if args.resume and not os.path.isfile(snap.snapshot_path(args.out)):
        raise ValueError(f"nothing to resume: no snapshot {snap.snapshot_path(args.out)} (the run "
                         f"finished, or never started in that folder)")
    if args.resume and args.overlay:
        raise ValueError("--resume cannot continue an --overlay video; resume without --overlay "
                         "(the masks hold the result)")
    if args.resume and getattr(args, "direction", "forward") != "forward":
        raise ValueError("--resume continues forward runs only (--direction forward)")


def prepare_run(args, source, masks, segmenter) -> ResumableRun | None:
    """The snapshot bookkeeping of a ``--video`` run (None when it keeps no snapshots:
    no --out, a live source, or a run that is not forward). With --resume the
    Segmenter is restored here; every check is done before a mask is written."""
    from ..io.live import LiveSource
    check_resume_args(args)
    live = isinstance(source, LiveSource)
    if args.resume and live:
        raise ValueError(f"--resume: {args.video} is a live source; only video files and frame "
                         f"folders can be resumed")
    if not args.out or live or getattr(args, "direction", "forward") != "forward":
        return None
    path = snap.snapshot_path(args.out)
    identity = snap.RunIdentity(snap.video_identity(source, source.frame_size()),
                                snap.masks_digest(masks), args.max_frames)
    run = ResumableRun(segmenter, path, identity, args.snapshot_every)
    if args.resume:
        run.resumed = snap.load_snapshot(path, segmenter, identity, args.out)
    elif os.path.isfile(path):
        if not getattr(args, "overwrite", False):
            raise ValueError(f"{args.out} holds an interrupted run (snapshot {path}): pass --resume "
                             f"to continue it, or remove the snapshot to start over")
        os.remove(path)
    return run
