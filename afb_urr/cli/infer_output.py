"""Where the --video mode's results go: the --out folder (checked, cleared on --overwrite,
marked INCOMPLETE until a run finishes), the exports, the overlay, the --report CSV and
the per-frame scores behind --suggest.

The folder's life: every check is done before it is touched; then it is made
(or, with --overwrite, emptied of a previous run's files) and an ``INCOMPLETE``
file says a run is under way. A run that fails or stops part-way keeps the
masks done so far and rewrites ``INCOMPLETE`` with the reason; a successful run
removes it. An error before the first mask leaves no folder the run made.
"""
from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field

import numpy as np

from ..io import OverlayWriter
from ..io.exports import COCO_FILE, open_exports

MARKER = "INCOMPLETE"
# What a run writes in --out: palette PNGs, the per-object folders, the COCO file, the marker.
OUTPUT_DIRS = ("binary", "rgba")
OUTPUT_FILES = (COCO_FILE, MARKER)


def _is_output(folder: str, entry: str) -> bool:
    path = os.path.join(folder, entry)
    if os.path.isdir(path):
        return entry in OUTPUT_DIRS
    return entry in OUTPUT_FILES or entry.lower().endswith(".png")


def check_out_folder(out: str, overwrite: bool, frame_dir: str | None = None) -> None:
    """One-line ValueError when --out cannot take this run's results (nothing is changed).

    Refused: a file; the input frame folder; a folder holding files of another run
    (unless ``overwrite``); with ``overwrite``, a folder holding anything a run does
    not write (it is not cleared).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file; give a folder for the masks")
    if frame_dir and os.path.isdir(frame_dir) and os.path.realpath(out) == os.path.realpath(frame_dir):
        raise ValueError(f"--out {out} is the input frame folder; choose another folder so the "
                         f"frames are not overwritten")
    entries = sorted(e for e in os.listdir(out) if not e.startswith(".")) if os.path.isdir(out) else []
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"--out {out} already holds {len(entries)} entries from another run "
                         f"(e.g. {entries[0]}); pass --overwrite to replace them, or choose an "
                         f"empty folder")
    foreign = [e for e in entries if not _is_output(out, e)]
    if foreign:
        raise ValueError(f"--out {out} holds files a run does not write (e.g. {foreign[0]}); "
                         f"--overwrite only clears masks, exports and markers: choose another folder")


class OutFolder:
    """The --out folder of one run: ``open()`` makes it ready, ``finish(error)`` marks how it ended."""

    def __init__(self, out: str, overwrite: bool = False):
        self.out = out
        self.overwrite = overwrite
        self.made = False

    @property
    def marker(self) -> str:
        return os.path.join(self.out, MARKER)

    def open(self) -> None:
        """Make the folder (or clear the previous run's files) and mark the run under way."""
        self.made = not os.path.isdir(self.out)
        os.makedirs(self.out, exist_ok=True)
        if self.overwrite:
            for e in os.listdir(self.out):
                if not e.startswith(".") and _is_output(self.out, e):
                    path = os.path.join(self.out, e)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        self.mark("the run was started and has not finished (still running, or killed)")

    def mark(self, reason: str) -> None:
        with open(self.marker, "w") as f:
            f.write(f"The masks in this folder are incomplete: {reason}\n")

    def finish(self, written: int, reason: str | None = None) -> None:
        """``reason`` None: the run is complete (the marker goes). Otherwise keep what was written
        with the reason in the marker, or remove the folder the run made when nothing was."""
        if reason is None:
            os.remove(self.marker)
        elif written == 0 and self.made:
            shutil.rmtree(self.out, ignore_errors=True)
        elif written == 0:
            os.remove(self.marker)
        else:
            self.mark(f"stopped after {written} frames: {reason}")


REPORT_COLUMNS = ("frame_index", "frame", "score", "object_id", "confidence", "area")


@dataclass
class FrameInfo:
    """What a run knows about one finished frame (for the overlay, the report and --suggest).

    labels: H x W uint8; uncertainty: H x W float32 in [0, 1]; score: the frame's
    uncertainty score; objects: id -> ObjectStat (confidence, area).
    """
    index: int
    name: str
    labels: np.ndarray
    uncertainty: np.ndarray
    score: float
    objects: dict = field(default_factory=dict)


class Outputs:
    """The results of one run: ``masks`` (exports under --out), ``frame_info`` (overlay frame,
    report rows, score), each called once per frame; ``close()`` finishes the files."""

    def __init__(self, args, object_ids, video: str, size: tuple[int, int], fps: float):
        self.args = args
        self.exports = open_exports(args.out, args.format or ["palette"], object_ids, video) if args.out else None
        self.needs_frames = bool(self.exports and self.exports.needs_frames)
        self.overlay = OverlayWriter(args.overlay, fps, size) if args.overlay else None
        self._report_file = open(args.report, "w", newline="") if args.report else None
        self._report = csv.writer(self._report_file) if self._report_file else None
        if self._report:
            self._report.writerow(REPORT_COLUMNS)
        self.scores: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.masks_written = 0

    def masks(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None = None) -> None:
        if self.exports is not None:
            self.exports.write(index, name, labels, frame)
        self.masks_written += 1

    def frame_info(self, info: FrameInfo, frame: np.ndarray | None = None) -> None:
        self.scores[info.index] = info.score
        self.names[info.index] = info.name
        if self.overlay is not None:
            self.overlay.write(frame, info.labels,
                               info.uncertainty if self.args.overlay_uncertainty else None)
        if self._report is not None:
            rows = [(i, f"{s.confidence:.4f}", s.area) for i, s in sorted(info.objects.items())]
            for obj, conf, area in rows or [("", "", 0)]:
                self._report.writerow((info.index, info.name, f"{info.score:.6f}", obj, conf, area))
            self._report_file.flush()

    def close(self, complete: bool = True) -> None:
        if self.exports is not None:
            self.exports.close(complete)
        if self.overlay is not None:
            self.overlay.close()
        if self._report_file is not None:
            self._report_file.close()
