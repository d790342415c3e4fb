"""What one running app holds: videos, sessions, the engine and the jobs, and the actions on them."""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..inference.uncertainty import suggest_frames
from .engine import Engine
from .errors import AppError, Conflict, NotFound
from .jobs import Job, JobManager
from .settings import AppSettings
from .store import Session, SessionStore, dependents
from .videos import VideoLibrary

DIRECTIONS = ("forward", "backward", "both")


class AppContext:
    """The app's state; every route goes through it (see :mod:`afb_urr.app.routes`)."""

    def __init__(self, settings: AppSettings):
        self.settings = settings
        os.makedirs(settings.work, exist_ok=True)
        self.library = VideoLibrary(settings.work, settings.videos, settings.demo, settings.max_frames)
        self.store = SessionStore(settings.work)
        self.engine = Engine(settings, self.library.frame_dir)
        self.engine.device()  # an unusable --device fails at start, in one line
        self.jobs = JobManager(self._propagate)
        self.closing = False

    # ------------------------------------------------------------ sessions
    def session(self, sid: str) -> Session:
        return self.store.get(sid)

    def create_session(self, video: str, name: str | None) -> Session:
        info = self.library.info(video)
        return self.store.create(info.id, name or info.name)

    def state(self, session: Session) -> dict:
        """The session as the page sees it: video, objects, annotated / done / stale frames,
        per-frame scores (None where unknown), the current job and the last event number."""
        info = self.library.info(session.video)
        scores: list[float | None] = [None] * info.num_frames
        for t, s in session.scores().items():
            if 0 <= t < info.num_frames:
                scores[t] = round(s, 5)
        job = self.jobs.current(session.id)
        with session.lock:
            done = sorted(session.done_set() | session.staged)
            return {"id": session.id, "name": session.state["name"], "video": info.public(),
                    "objects": session.state["objects"], "annotated": session.anchors(),
                    "done": done, "stale": session.state["stale"], "scores": scores,
                    "job": job.public() if job else None,
                    "events": self.jobs.events(session.id).last}

    def delete_session(self, sid: str) -> None:
        self._check_idle(sid)
        self.engine.forget(sid)
        self.store.delete(sid)

    def _check_idle(self, sid: str) -> None:
        if self.jobs.busy(sid):
            raise Conflict("a propagation is running for this session; cancel it or wait")

    def check_frame(self, session: Session, t: int) -> int:
        n = self.library.info(session.video).num_frames
        if not 0 <= t < n:
            raise NotFound(f"frame {t} is not in the video (frames 0..{n - 1})")
        return t

    # ------------------------------------------------------------ masks
    def put_mask(self, session: Session, t: int, labels: np.ndarray) -> None:
        """Make ``labels`` frame t's annotation (the whole frame, as the user sees it)."""
        self.check_frame(session, t)
        self._check_idle(session.id)
        with session.lock:
            before = session.labels(t)
            given = session.annotated().get(t, [])
            present = set(given) | ({int(v) for v in np.unique(before)} if before is not None else set())
            removed = sorted(present - {int(v) for v in np.unique(labels)} - {0})
            if not labels.any() and not removed and t not in session.anchors():
                raise AppError(f"the mask for frame {t} holds no object")
            self.engine.annotate(session, t, labels, given, removed)
            n = self.library.info(session.video).num_frames
            stale = dependents(session.anchors() + [t], t, n) & session.done_set()
            session.set_annotation(t, labels, removed, stale)
            self.jobs.events(session.id).publish({"type": "mask", "t": t})

    def text_object(self, session: Session, t: int, text: str, name: str | None = None,
                    colour: str | None = None) -> dict:
        """A new object from a sentence on frame t: the referring model's mask, less the pixels
        other objects hold there, joins the frame's labels as shown and becomes its annotation.
        Nothing found (or only other objects' pixels): a 422 and the session as it was."""
        self.check_frame(session, t)
        self._check_idle(session.id)
        text = " ".join(str(text).split())
        if not text:
            raise AppError("the text is empty: describe the object in words")
        frame = self.library.read_frame(session.video, t)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = self.engine.find(frame, text)
            except ValueError as e:
                raise AppError(str(e), 422) from None
        with session.lock:
            shown = session.labels(t)
            shown = np.zeros(frame.shape[:2], np.uint8) if shown is None else shown
            mine = (found.labels == 1) & (shown == 0)
            if not mine.any():
                raise AppError(f"text {text!r}: what it found on frame {t} belongs to other objects", 422)
            entry = session.add_object(name or text[:100].rstrip(), colour)
            try:
                self.put_mask(session, t, np.where(mine, entry["id"], shown).astype(np.uint8))
            except Exception:
                session.delete_object(entry["id"])
                raise
        return {"object": entry, "frame": t, "pixels": int(mine.sum()),
                "confidence": round(float(found.masks.confidence[0]), 4),
                "warnings": [" ".join(str(w.message).split()) for w in caught], "session": self.state(session)}

    def drop_mask(self, session: Session, t: int) -> None:
        """Forget frame t's annotation; the next propagation recomputes what depended on it."""
        self.check_frame(session, t)
        self._check_idle(session.id)
        with session.lock:
            anchors = session.anchors()
            session.drop_annotation(t)
            n = self.library.info(session.video).num_frames
            changed = (dependents(anchors, t, n) | {t}) & session.done_set()
            session.state["stale"] = sorted(set(session.state["stale"]) | changed)
            session.save()
            self.engine.forget(session.id)

    def delete_object(self, session: Session, obj: int) -> None:
        self._check_idle(session.id)
        with session.lock:
            session.object(obj)
            session.delete_object(obj)
            self.engine.forget(session.id)

    def suggest(self, session: Session, k: int) -> list[int]:
        return suggest_frames(session.scores(), k, exclude=session.anchors(), min_gap=1)

    # ------------------------------------------------------------ propagation
    def start_propagation(self, session: Session, direction: str, start, end) -> Job:
        if direction not in DIRECTIONS:
            raise AppError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        n = self.library.info(session.video).num_frames
        lo = 0 if start is None else self.check_frame(session, start)
        hi = n - 1 if end is None else self.check_frame(session, end)
        if lo > hi:
            raise AppError(f"start frame {lo} is after end frame {hi}")
        if not any(session.annotated().values()):
            raise AppError("no object is annotated yet: paint a mask on some frame first")
        params = {"direction": direction, "start": lo, "end": hi}
        return self.jobs.start(session.id, params, total=hi - lo + 1)

    def _propagate(self, job: Job, publish) -> None:
        """A job's work (in its worker thread): stage each frame, commit at the end.

        Cancelled: the frames finished so far are kept. Failed: the staged frames
        are dropped and the live VideoSession is rebuilt from the saved session,
        so the session is as it was before the job.
        """
        session = self.store.get(job.session_id)
        p = job.params
        try:
            steps = self.engine.propagate(session, p["direction"], p["start"], p["end"],
                                          job.cancel_event, job.computed)
            for t, labels, score in steps:
                session.stage(t, labels, score)
                job.done += 1
                job.frames.append(t)
                publish({"type": "frame", "t": t, "score": round(score, 5), "done": job.done,
                         "total": job.total})
        except Exception:
            session.discard()
            self.engine.forget(session.id)
            raise
        finished = not job.cancel_event.is_set()
        session.commit(set(range(p["start"], p["end"] + 1)) if finished else set())

    def close(self) -> None:
        self.closing = True
        for s in self.store.list():
            self.jobs.cancel(s["id"])
            self.jobs.wait(s["id"], timeout=30)
        self.engine.close()
