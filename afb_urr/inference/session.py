"""VideoSession: annotate any frame, propagate forward / backward / both, correct, read results.

How it works
------------
*Annotations.* Each annotated frame t holds a label map of the objects given
at t and the set of objects removed at t (``remove_object(id, t)``: the object
is absent there). A later ``add_mask`` at the same frame speaks only for the
ids it holds; its pixels win over earlier given objects at t.

*Runs.* A run is one :class:`Segmenter` started at an annotated frame ``a``
with the objects given there (its group) and stepped frame by frame in one
direction (backward runs feed the frames in reverse). Every run starts all its
objects at its first frame, so objects entering at different frames never
reset each other's memory (the published ``new_object="reset"`` quirk cannot
fire in a session; ``new_object`` is still passed on, default "keep").

*Which run decides what.* Each object is decided at frame t by one of its own
annotations (:mod:`afb_urr.inference.plan`): t itself when annotated there;
"forward": its latest annotation before t; "backward": its earliest after t;
"both": its nearest one, ties to the earlier. No such annotation, or a removal
there: the object is absent at t. The label map of frame t is composed from
the runs that decide its objects: each object takes its pixels in its run;
where two objects from different runs claim a pixel, the more probable one
wins; objects given at t win over everything at t.

*What is recomputed.* A run's frames depend only on its anchor's annotation,
so after ``add_mask(t, ...)`` or ``remove_object(id, t)`` only the runs
starting at t are (re)run, for the frames their objects are decided by (up
to each object's next annotation in each direction); every other run's frames
are kept. Runs are keyed by (anchor, direction, annotation version at anchor).

*Memory.* Frames come from a :class:`FrameCache` (byte budget). Each run keeps
per frame a label map, the winning probability and the uncertainty (uint8,
H x W x 3) in a :class:`ResultStore` (byte budget, spilling PNGs to
``work_dir``); composed frames are stored the same way. Runs of one
direction advance in lock step, so a frame is decoded once per sweep; the live
banks are those of the runs in progress, at most one per annotated frame whose
objects are being propagated.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from ..config import InferenceConfig
from ..io.frame_cache import FrameCache
from .segmenter import Segmenter, _as_mask
from .plan import check_direction, clip_span, governed_spans, governor
from .results import ResultStore, step_record
from .uncertainty import ObjectStat, frame_score, object_stats, suggest_frames


@dataclass
class FrameResult:
    """One frame of a session.

    labels: H x W uint8 label map; uncertainty: H x W float32 in [0,1] (0 on
    given pixels); score: sum(uncertainty) / foreground area; objects: per id,
    mean probability over its pixels (1.0 where given) and area; given: ids
    annotated at this frame.
    """
    frame_index: int
    labels: np.ndarray
    uncertainty: np.ndarray
    score: float
    objects: dict[int, ObjectStat]
    given: tuple[int, ...]


@dataclass
class _Run:
    anchor: int
    direction: str  # "forward" or "backward"
    version: int    # of the annotation at the anchor
    digest: str     # of the label map the run starts from
    target: int     # farthest frame to reach
    segmenter: Segmenter | None = None

    @property
    def key(self) -> tuple:
        return (self.anchor, self.direction, self.version, self.digest)


class VideoSession:
    """Annotations at any frames of one video, propagated and corrected (see the module docstring).

    Args:
        video: video file, frame folder, list of frames, or a :class:`FrameCache`.
        model: an :class:`AFBURR` network.
        config: bank settings (:class:`InferenceConfig`); ``new_object`` overrides its field.
        device: compute device (default: the model's).
        frame_cache_bytes / result_cache_bytes: memory budgets for decoded frames and results.
        work_dir: where results spill (default: a temporary folder removed by :meth:`close`).
    """

    def __init__(self, video, model, config: InferenceConfig | None = None, device=None,
                 new_object: str = "keep", frame_cache_bytes: int = 256 * 2**20,
                 result_cache_bytes: int = 256 * 2**20, work_dir: str | None = None):
        self.frames = video if isinstance(video, FrameCache) else FrameCache(video, frame_cache_bytes)
        self.model = model
        self.config = dataclasses.replace(config or InferenceConfig(), new_object=new_object)
        self.device = device
        self._own_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="afb_urr_session_")
        self.results = ResultStore(os.path.join(self.work_dir, "results"), result_cache_bytes)
        self._given: dict[int, np.ndarray] = {}      # t -> H x W uint8, objects given at t
        self._given_ids: dict[int, set[int]] = {}
        self._removed: dict[int, set[int]] = {}
        self._version: dict[int, int] = {}
        self._anchors: dict[int, list[int]] = {}     # object id -> its annotated frames
        self._reach: dict[tuple, int] = {}           # run key -> farthest frame computed
        self._current: dict[tuple, tuple] = {}       # (anchor, direction) -> its valid run key
        self._final: dict[int, tuple] = {}           # t -> signature of the stored composite
        self._stats: dict[int, tuple[float, dict]] = {}
        self.direction = "forward"
        self.frames_computed = 0                     # frames segmented by runs, all calls
        self.last_computed: list[int] = []           # frames segmented by the last propagate

    # ------------------------------------------------------------ annotations
    def __len__(self) -> int:
        return len(self.frames)

    @property
    def objects(self) -> list[int]:
        """Ids given at some frame."""
        return sorted(set().union(*self._given_ids.values())) if self._given_ids else []

    @property
    def annotated_frames(self) -> list[int]:
        return sorted(set(self._given) | set(self._removed))

    def _check_t(self, t) -> int:
        if not isinstance(t, (int, np.integer)) or not 0 <= t < len(self):
            raise ValueError(f"frame index {t!r} out of range 0..{len(self) - 1}")
        return int(t)

    def add_mask(self, t: int, mask) -> list[int]:
        """Give the objects in ``mask`` (H x W labels) at frame t; returns their ids.

        New ids start at t; known ids are corrections that replace the
        prediction at t and become the object's memory from t on. Objects not
        in ``mask`` keep their propagated masks at t outside its pixels.
        """
        t = self._check_t(t)
        m = _as_mask(mask, self.frames.size)
        ids = sorted(int(v) for v in np.unique(m) if v != 0)
        if not ids:
            raise ValueError(f"the mask for frame {t} holds no object (all background); "
                             f"mark an object absent with remove_object(id, t)")
        labels = self._given[t].copy() if t in self._given else np.zeros(self.frames.size, np.uint8)
        before = self._given_ids.get(t, set())
        labels[m != 0] = m[m != 0]
        after = set(int(v) for v in np.unique(labels) if v != 0)
        removed = (self._removed.get(t, set()) - set(ids)) | (before - after)
        self._set_annotation(t, labels, after, removed)
        return ids

    def remove_object(self, obj: int, t: int | None = None) -> None:
        """Mark object ``obj`` absent at frame t (it stays absent up to its next
        annotation, in the propagation direction); ``t=None`` removes it from
        the whole video."""
        if obj not in self._anchors:
            raise ValueError(f"object {obj} is not in this video (objects: {self.objects})")
        frames = [self._check_t(t)] if t is not None else list(self._anchors[obj])
        for f in frames:
            labels = self._given.get(f, np.zeros(self.frames.size, np.uint8)).copy()
            labels[labels == obj] = 0
            removed = self._removed.get(f, set()) - {obj}
            if t is not None:
                removed = removed | {obj}
            self._set_annotation(f, labels, self._given_ids.get(f, set()) - {obj}, removed)

    def _set_annotation(self, t: int, labels: np.ndarray, ids: set, removed: set) -> None:
        for key in [k for k in self._reach if k[0] == t]:
            self._drop_run(key)
        # Runs that may start from objects this annotation decides must be checked again
        # (their records stay: a run whose starting map is unchanged is reused).
        self._current = {(a, d): k for (a, d), k in self._current.items()
                         if (a < t if d == "forward" else a > t)}
        for table in (self._given, self._given_ids, self._removed):
            table.pop(t, None)
        if ids:
            self._given[t], self._given_ids[t] = labels, set(ids)
        if removed:
            self._removed[t] = set(removed)
        self._version[t] = self._version.get(t, 0) + 1
        anchors: dict[int, list[int]] = {}
        for f in sorted(set(self._given_ids) | set(self._removed)):
            for obj in self._given_ids.get(f, set()) | self._removed.get(f, set()):
                anchors.setdefault(obj, []).append(f)
        self._anchors = anchors

    def _drop_run(self, key: tuple) -> None:
        anchor, direction = key[:2]
        reach = self._reach.pop(key)
        step = 1 if direction == "forward" else -1
        for f in range(anchor + step, reach + step, step):
            self.results.discard(("run", *key, f))

    # ------------------------------------------------------------ propagation
    def _range(self, start, end) -> tuple[int, int]:
        start = 0 if start is None else self._check_t(start)
        end = len(self) - 1 if end is None else self._check_t(end)
        if start > end:
            raise ValueError(f"start frame {start} is after end frame {end}")
        return start, end

    def _governors(self, t: int, rule: str) -> list[tuple[int, int | None]]:
        """Per object, the annotated frame deciding it at t under ``rule`` (None: absent)."""
        out = []
        for obj, anchors in sorted(self._anchors.items()):
            g = governor(anchors, t, rule)
            out.append((obj, g if g is not None and obj in self._given_ids.get(g, ()) else None))
        return out

    def _needs(self, direction: str, start: int, end: int) -> dict[tuple[int, str], int]:
        """(anchor, run direction) -> farthest frame that run must reach for frames start..end,
        including the runs that give the other objects at a needed run's anchor."""
        need: dict[tuple[int, str], int] = {}

        def want(a: int, d: str, far: int) -> bool:
            old = need.get((a, d))
            new = far if old is None else (max(old, far) if d == "forward" else min(old, far))
            need[(a, d)] = new
            return new != old

        for obj, anchors in self._anchors.items():
            for span in governed_spans(anchors, len(self), direction):
                far = clip_span(span, start, end)
                if far is not None and obj in self._given_ids.get(span[0], ()):
                    want(span[0], "forward" if span[1] > span[0] else "backward", far)
        work = list(need)
        while work:
            a, d = work.pop()
            for _, g in self._governors(a, d):
                if g is not None and g != a and want(g, d, a):
                    work.append((g, d))
        return need

    def _deciders(self, t: int, rule: str) -> tuple:
        """Per object: None (absent), ("given", version) or the key of the run deciding it at t
        (None in the key's place while that run is not validated)."""
        out = []
        for obj, g in self._governors(t, rule):
            if g is None:
                src = None
            elif g == t:
                src = ("given", self._version[t])
            else:
                d = "forward" if g < t else "backward"
                src = self._current.get((g, d), (g, d, None))
            out.append((obj, src))
        return tuple(out)

    def _covered(self, t: int, deciders) -> bool:
        for _, src in deciders:
            if src is not None and src[0] != "given":
                reach = self._reach.get(src)
                if reach is None or not (reach >= t if src[1] == "forward" else reach <= t):
                    return False
        return True

    def propagate(self, direction: str = "forward", start: int | None = None,
                  end: int | None = None):
        """Segment frames start..end (default: all) and yield ``(t, FrameResult)`` as each is done.

        Only runs whose anchor annotation or starting objects changed since
        the last call are segmented (``last_computed`` lists their frames); the
        others are read back. Forward runs advance first (their frames come out
        in increasing order), then backward runs (decreasing order).
        """
        check_direction(direction)
        start, end = self._range(start, end)
        if not self._given:
            raise ValueError("no object given yet: call add_mask(t, mask) first")
        self.direction = direction
        self.last_computed = []
        need = self._needs(direction, start, end)
        done: set[int] = set()
        for sweep in ("forward", "backward"):
            starts = {a: far for (a, d), far in need.items() if d == sweep}
            if sweep == "forward":
                order = range(min([start, *starts]), end + 1)
            else:
                order = range(max([end, *starts]), start - 1, -1)
            active: list[_Run] = []
            for t in order:
                self._advance(active, starts, sweep, t)
                if start <= t <= end and t not in done and \
                        self._covered(t, self._deciders(t, direction)):
                    done.add(t)
                    yield t, self.result(t)

    def _advance(self, active: list[_Run], starts: dict[int, int], sweep: str, t: int) -> None:
        """Step the active runs at frame t, then validate (and if needed start) the run at t."""
        frame = None
        for run in list(active):
            frame = self.frames[t] if frame is None else frame
            res = run.segmenter.step(frame, memorize=t != run.target)
            self.results.put(("run", *run.key, t), step_record(res))
            self.frames_computed += 1
            self.last_computed.append(t)
            self._reach[run.key] = t
            if t == run.target:
                active.remove(run)  # frees its bank
        if t not in starts:
            return
        init = self._compose(t, self._deciders(t, sweep))[..., 0]
        run = _Run(t, sweep, self._version[t], hashlib.sha1(init.tobytes()).hexdigest()[:16],
                   starts[t])
        for key in [k for k in self._reach if k[:2] == (t, sweep) and k != run.key]:
            self._drop_run(key)
        self._current[(t, sweep)] = run.key
        reach = self._reach.get(run.key)
        if reach is None or not (reach >= run.target if sweep == "forward" else reach <= run.target):
            frame = self.frames[t] if frame is None else frame
            run.segmenter = Segmenter(self.model, self.config, device=self.device)
            run.segmenter.step(frame, init)
            self._reach[run.key] = t
            active.append(run)

    # ---------------------------------------------------------------- results
    def _compose(self, t: int, deciders) -> np.ndarray:
        """H x W x 3 uint8 (labels, probability of the label, uncertainty) of frame t.

        Runs paint their decided objects farthest anchor first, so the run
        started nearest to t (which knew every object present at its start)
        has the last word; ties: the earlier anchor paints last. Objects given
        at t are painted over all.
        """
        labels = np.zeros(self.frames.size, np.uint8)
        conf = np.zeros(self.frames.size, np.uint8)
        unc = np.zeros(self.frames.size, np.uint8)
        by_run: dict[tuple, list[int]] = {}
        for obj, src in deciders:
            if src is not None and src[0] != "given":
                by_run.setdefault(src, []).append(obj)
        for src in sorted(by_run, key=lambda k: (-abs(k[0] - t), -k[0])):
            rec = self.results.get(("run", *src, t))
            win = np.isin(rec[..., 0], by_run[src])
            labels[win], conf[win] = rec[..., 0][win], rec[..., 1][win]
            np.maximum(unc, rec[..., 2], out=unc)
        if t in self._given:
            given = self._given[t] != 0
            labels[given], conf[given], unc[given] = self._given[t][given], 255, 0
        return np.dstack([labels, conf, unc])

    def result(self, t: int) -> FrameResult:
        """The current result of frame t (ValueError if it has not been propagated)."""
        t = self._check_t(t)
        deciders = self._deciders(t, self.direction)
        sig = (self.direction, deciders)
        if self._final.get(t) != sig:
            if not self._covered(t, deciders):
                raise ValueError(f"frame {t} is not propagated ({self.direction}) since the last "
                                 f"change: call propagate() first")
            rec = self._compose(t, deciders)
            self.results.put(("final", t), rec)
            unc = rec[..., 2].astype(np.float32) / 255
            self._stats[t] = (frame_score(unc, rec[..., 0]),
                              object_stats(rec[..., 0], rec[..., 1].astype(np.float32) / 255))
            self._final[t] = sig
        rec = self.results.get(("final", t))
        score, objects = self._stats[t]
        return FrameResult(t, rec[..., 0].copy(), rec[..., 2].astype(np.float32) / 255, score,
                           objects, tuple(sorted(self._given_ids.get(t, ()))))

    def labels(self, t: int) -> np.ndarray:
        """H x W uint8 label map of frame t."""
        return self.result(t).labels

    def suggest(self, k: int, min_gap: int = 0) -> list[int]:
        """The k frames most worth annotating next: highest uncertainty score among
        the frames with a current result, annotated frames excluded."""
        scores = {t: s for t, (s, _) in self._stats.items()
                  if self._final.get(t) == (self.direction, self._deciders(t, self.direction))}
        return suggest_frames(scores, k, exclude=self.annotated_frames, min_gap=min_gap)

    def close(self) -> None:
        """Release the video and remove the work folder when the session made it."""
        self.frames.close()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "VideoSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
