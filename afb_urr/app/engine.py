"""The app's bridge to :class:`VideoSession`: one live session per open app session.

The saved :class:`~afb_urr.app.store.Session` is the record; a VideoSession is
rebuilt from it when needed (after a restart, or after a failed job) by
replaying the annotations, and kept for the next propagation so that a
correction recomputes only the frames that depend on it. At most
``live_sessions`` VideoSessions are kept (least recently used dropped), each
within its frame and result byte budgets, so memory stays bounded.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict

import numpy as np

from .errors import AppError, Conflict
from .settings import AppSettings
from .store import Session


class Engine:
    """Loads the model once and drives VideoSessions for the app's sessions."""

    def __init__(self, settings: AppSettings, frame_dir, live_sessions: int = 2):
        self.settings = settings
        self.frame_dir = frame_dir  # video id -> folder of its decoded frames
        self.live_sessions = live_sessions
        self._model = None
        self._config = None
        self._referring = None
        self._text_lock = threading.Lock()
        self._lock = threading.Lock()
        self._live: OrderedDict[str, object] = OrderedDict()
        self._locks: dict[str, threading.RLock] = {}

    def model(self):
        """The network (loaded on first use) and the inference config."""
        with self._lock:
            if self._model is None:
                from ..checkpoint import load_model
                from ..config import load_config
                from ..inference.build import INFERENCE_SECTIONS
                config = load_config(self.settings.config, sections=INFERENCE_SECTIONS)
                self._config = config.inference
                self._model = load_model(self.settings.weights_path, device=self.device())
            return self._model, self._config

    def referring(self):
        """(referring model, tokenizer) of the text box, loaded on first use; Conflict (409)
        when the app was started without one."""
        from ..inference.text import load_referring
        path = self.settings.referring_path
        if path is None:
            raise Conflict("no referring model: start the app with --referring-weights (and --vocab) to "
                           "create objects from sentences")
        with self._lock:
            if self._referring is None:
                self._referring = load_referring(path, self.settings.vocab, self.device())
            return self._referring

    def find(self, frame: np.ndarray, text: str):
        """The referring model's object for ``text`` on ``frame`` (H x W x 3 uint8 RGB):
        :func:`afb_urr.inference.text.text_objects` as object 1 (one request at a time)."""
        from ..inference.text import text_objects
        model, tokenizer = self.referring()
        with self._text_lock:
            return text_objects(model, tokenizer, frame, [text], first_id=1)

    def device(self):
        """The torch device (``--device``, or cuda when available); ValueError if unusable."""
        from ..inference.build import resolve_device
        return resolve_device(self.settings.device)

    def lock(self, sid: str) -> threading.RLock:
        with self._lock:
            return self._locks.setdefault(sid, threading.RLock())

    def live(self, session: Session):
        """The session's VideoSession, rebuilt from its saved annotations when not in memory."""
        with self._lock:
            if session.id in self._live:
                self._live.move_to_end(session.id)
                return self._live[session.id]
        video = self._rebuild(session)
        with self._lock:
            self._live[session.id] = video
            while len(self._live) > self.live_sessions:
                _, old = self._live.popitem(last=False)
                old.close()
        return video

    def _rebuild(self, session: Session):
        from ..inference import VideoSession
        model, config = self.model()
        work_dir = os.path.join(session.folder, "engine")
        shutil.rmtree(work_dir, ignore_errors=True)
        video = VideoSession(self.frame_dir(session.video), model, config, device=self.device(),
                             frame_cache_bytes=self.settings.frame_cache_bytes,
                             result_cache_bytes=64 * 2**20, work_dir=work_dir)
        annotated = session.annotated()
        for t in sorted(annotated):
            if annotated[t]:
                video.add_mask(t, session.annotation(t))
        for t, ids in sorted(session.removed().items()):
            for obj in ids:
                if obj in video.objects:
                    video.remove_object(obj, t)
        return video

    def forget(self, sid: str) -> None:
        """Drop the live VideoSession (the next use rebuilds it from the saved session)."""
        with self._lock:
            video = self._live.pop(sid, None)
        if video is not None:
            video.close()

    def annotate(self, session: Session, t: int, labels: np.ndarray, given_before: list[int],
                 removed: list[int]) -> None:
        """Make ``labels`` the whole annotation of frame t.

        ``given_before``: ids the earlier annotation of t gave (their given pixels
        are replaced, not merged); ``removed``: ids that are now absent at t.
        """
        with self.lock(session.id):
            video = self.live(session)
            try:
                for obj in given_before:
                    if obj in video.objects:
                        video.remove_object(obj, t)
                if labels.any():
                    video.add_mask(t, labels)
                for obj in removed:
                    if obj in video.objects:
                        video.remove_object(obj, t)
            except Exception as e:
                self.forget(session.id)  # half-applied: rebuild from the saved session next time
                if isinstance(e, ValueError):
                    raise AppError(f"frame {t}: {e}") from None
                raise

    def propagate(self, session: Session, direction: str, start: int | None, end: int | None,
                  cancel: threading.Event, computed: list[int]):
        """Yield ``(t, labels, score)`` as frames are done; stops early when ``cancel`` is set.

        ``computed`` receives the frames the network segmented (the others were kept)."""
        with self.lock(session.id):
            video = self.live(session)
            steps = video.propagate(direction, start, end)
            try:
                for t, result in steps:
                    yield t, result.labels, float(result.score)
                    if cancel.is_set():
                        break
            finally:
                steps.close()
                computed[:] = video.last_computed

    def close(self) -> None:
        with self._lock:
            videos = list(self._live.values())
            self._live.clear()
        for video in videos:
            video.close()
