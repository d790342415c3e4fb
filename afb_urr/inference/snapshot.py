"""Snapshots of a forward run over one video, so that an interrupted run can resume.

A snapshot holds everything the rest of the run depends on: the Segmenter's
state (:meth:`Segmenter.state_dict`: bank, scores, object ids, frame index),
the stream position (the next frame to segment), the output bookkeeping
(masks written so far, the last one's name, the caller's own records such
as per-frame scores or a COCO file's annotations so far) and what identifies the run: the
video (path, frame count, frame size), the digest of the given masks and the
frame limit. Resuming loads it, skips the frames before the position and
continues; the masks then come out identical to an uninterrupted run's.

The file is ``<out>/.snapshot.pt`` (hidden, beside the masks). It is written
atomically: ``torch.save`` to ``.snapshot.pt.tmp``, flushed to disk, then
``os.replace``, so a kill during a write leaves the previous snapshot whole
(and a leftover ``.tmp`` is ignored). A run writes one before its first frame
(position 0) and one every ``every`` frames after that, and removes it when
it finishes: a snapshot in a folder means a run there stopped part-way.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

SNAPSHOT_NAME = ".snapshot.pt"
FORMAT = "afb_urr.run_snapshot"
VERSION = 1
DEFAULT_EVERY = 500


def snapshot_path(out_dir: str) -> str:
    """Where the snapshot of a run writing into ``out_dir`` lives."""
    return os.path.join(out_dir, SNAPSHOT_NAME)


def masks_digest(masks) -> str:
    """A short digest of the given annotations: ``{frame name: H x W label map}`` (or one map)."""
    h = hashlib.sha1()
    items = masks.items() if isinstance(masks, dict) else [("", masks)]
    for name, m in sorted(items, key=lambda kv: str(kv[0])):
        a = np.ascontiguousarray(np.asarray(m), dtype=np.int64)
        h.update(f"{name}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def video_identity(source, frame_size=None) -> str:
    """What a snapshot's video must match: absolute path, frame count and (H, W)."""
    path = os.path.abspath(getattr(source, "path", str(source)))
    count = getattr(source, "num_frames", None)
    size = "x".join(map(str, frame_size)) if frame_size is not None else "?"
    return f"{path}|frames={count}|size={size}"


@dataclass
class RunIdentity:
    """What a resumed run must share with the interrupted one."""
    video: str              # video_identity(...)
    masks: str              # masks_digest(...)
    max_frames: int | None  # the frame limit (--max-frames)

    def as_dict(self) -> dict:
        return {"video": self.video, "masks": self.masks, "max_frames": self.max_frames}


@dataclass
class Resumed:
    """Where an interrupted run stopped: the next frame to segment, the masks written, and
    the caller's output bookkeeping at that point (``outputs``: plain data)."""
    position: int
    written: int
    last_name: str | None
    outputs: dict | None = None


def _atomic_save(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_snapshot(path: str, segmenter, identity: RunIdentity, position: int, written: int,
                  last_name: str | None, outputs: dict | None = None) -> None:
    """Write the run's state at ``position`` (frames done) atomically to ``path``;
    ``outputs``: the caller's bookkeeping (plain values: dicts, lists, str, numbers)."""
    state = {"format": FORMAT, "version": VERSION, "run": identity.as_dict(),
             "position": int(position), "written": int(written), "last_name": last_name,
             "outputs": outputs, "segmenter": segmenter.state_dict(video=identity.video)}
    _atomic_save(state, path)


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise ValueError(f"nothing to resume: no snapshot {path} (the run finished, or never "
                         f"started in this folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, foreign objects
        raise ValueError(f"snapshot {path} is unreadable ({type(e).__name__}); it is not a "
                         f"snapshot of this tool, or it is damaged") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"snapshot {path} is not a run snapshot of this tool")
    if state.get("version") != VERSION:
        raise ValueError(f"snapshot {path} has version {state.get('version')!r}; this version of "
                         f"afb-urr reads version {VERSION} (rerun without --resume)")
    return state


def _check_run(path: str, state: dict, identity: RunIdentity) -> None:
    run = state.get("run", {})
    names = {"video": "another video", "masks": "other masks", "max_frames": "another --max-frames"}
    for key, what in names.items():
        if run.get(key) != getattr(identity, key):
            raise ValueError(f"snapshot {path} is of {what} ({run.get(key)!r}, this run: "
                             f"{getattr(identity, key)!r}); rerun without --resume to start over")


def load_snapshot(path: str, segmenter, identity: RunIdentity, out_dir: str | None = None) -> Resumed:
    """Restore ``segmenter`` from the snapshot at ``path`` and say where the run stopped.

    Every check comes first (readable, format and version, same video, masks and
    frame limit, same model, the last mask written still there), so a bad
    snapshot changes nothing: a one-line ValueError naming the file.
    """
    state = _read(path)
    _check_run(path, state, identity)
    position, written, last = int(state["position"]), int(state["written"]), state.get("last_name")
    if out_dir is not None and last is not None and not os.path.isfile(os.path.join(out_dir, last + ".png")):
        raise ValueError(f"snapshot {path} says {written} masks were written up to {last}.png, "
                         f"but that file is missing; rerun without --resume to start over")
    try:
        segmenter.load_state_dict(state["segmenter"], video=identity.video)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"snapshot {path}: {e}") from None
    return Resumed(position, written, last, state.get("outputs"))


def with_snapshots(steps: Iterable, segmenter, path: str, identity: RunIdentity, every: int,
                   resumed: Resumed | None = None,
                   outputs: Callable[[], dict] | None = None) -> Iterator:
    """Pass ``steps`` (StreamStep) through, saving a snapshot every ``every`` frames.

    A snapshot is saved when the consumer asks for the step after one whose
    index + 1 is a multiple of ``every``: by then it has written that step's
    mask (and ``outputs()``, the bookkeeping saved with it, counts that step),
    and the Segmenter has not moved on. Without ``resumed``, one is saved
    first at position 0. The snapshot is removed once every step is consumed.
    """
    if every < 1:
        raise ValueError(f"the snapshot interval must be >= 1 frame, got {every}")
    written = resumed.written if resumed else 0
    extra = outputs or (lambda: None)
    if resumed is None:
        save_snapshot(path, segmenter, identity, 0, 0, None, extra())
    for step in steps:
        yield step
        written += 1
        if (step.index + 1) % every == 0:
            save_snapshot(path, segmenter, identity, step.index + 1, written, step.name, extra())
    for leftover in (path, path + ".tmp"):
        if os.path.isfile(leftover):
            os.remove(leftover)
