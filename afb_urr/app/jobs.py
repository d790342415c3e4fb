"""Propagation jobs: off the request threads, one per session at a time, with progress events.

A :class:`Job` runs in its own worker thread; a process-wide semaphore lets one
job compute at a time (others wait as "queued"), so two sessions never fight
over the CPU. Each session has an :class:`EventLog`: numbered events that the
server streams to the page (server-sent events) and that a reconnecting page
replays from the last number it saw.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import deque
from typing import Callable

from .errors import Conflict

log = logging.getLogger("afb_urr.app")
STATES = ("queued", "running", "done", "failed", "cancelled")


class EventLog:
    """Numbered events of one session (the last ``keep``), readable from any number on."""

    def __init__(self, keep: int = 4096):
        self._events: deque[tuple[int, dict]] = deque(maxlen=keep)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def publish(self, event: dict) -> None:
        with self._lock:
            self._events.append((next(self._seq), event))

    def since(self, seq: int) -> list[tuple[int, dict]]:
        with self._lock:
            return [(n, e) for n, e in self._events if n > seq]

    @property
    def last(self) -> int:
        with self._lock:
            return self._events[-1][0] if self._events else 0


class Job:
    """One propagation: its parameters, state and progress (``public()`` is the API's view)."""

    def __init__(self, session_id: str, params: dict, total: int):
        self.id = uuid.uuid4().hex[:12]
        self.session_id = session_id
        self.params = params
        self.state = "queued"
        self.done = 0
        self.total = total
        self.message = ""
        self.created = time.time()
        self.finished: float | None = None
        self.cancel_event = threading.Event()
        self.frames: list[int] = []     # frames finished, in order
        self.computed: list[int] = []   # frames the network segmented (the others were kept)
        self.thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def public(self) -> dict:
        return {"id": self.id, "session": self.session_id, "state": self.state, "done": self.done,
                "total": max(self.total, self.done), "computed": len(self.computed),
                "message": self.message, **self.params,
                "seconds": round((self.finished or time.time()) - self.created, 3)}


class JobManager:
    """Starts, tracks and cancels jobs; ``work(job, publish)`` does a job's computing.

    ``work`` returns normally when the job is done or saw ``job.cancel_event``;
    anything it raises marks the job failed (the caller's ``work`` must already
    have undone its effects).
    """

    def __init__(self, work: Callable, concurrent: int = 1):
        self._work = work
        self._slots = threading.Semaphore(concurrent)
        self._jobs: dict[str, Job] = {}
        self._logs: dict[str, EventLog] = {}
        self._lock = threading.Lock()

    def events(self, session_id: str) -> EventLog:
        with self._lock:
            return self._logs.setdefault(session_id, EventLog())

    def current(self, session_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(session_id)

    def busy(self, session_id: str) -> bool:
        job = self.current(session_id)
        return job is not None and job.active

    def start(self, session_id: str, params: dict, total: int) -> Job:
        with self._lock:
            old = self._jobs.get(session_id)
            if old is not None and old.active:
                raise Conflict(f"a propagation is already running for session {session_id} "
                               f"(job {old.id}); cancel it or wait")
            job = Job(session_id, params, total)
            self._jobs[session_id] = job
        job.thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                      name=f"propagate-{job.id}")
        self._publish_job(job)
        job.thread.start()
        return job

    def cancel(self, session_id: str) -> Job | None:
        job = self.current(session_id)
        if job is not None and job.active:
            job.cancel_event.set()
        return job

    def _publish_job(self, job: Job) -> None:
        self.events(job.session_id).publish({"type": "job", "job": job.public()})

    def _run(self, job: Job) -> None:
        log_ = self.events(job.session_id)
        with self._slots:
            if job.cancel_event.is_set():
                self._finish(job, "cancelled", "cancelled before it started")
                return
            job.state = "running"
            self._publish_job(job)
            try:
                self._work(job, log_.publish)
            except Exception as e:  # the job fails; the server keeps serving
                log.exception("propagation job %s failed", job.id)
                self._finish(job, "failed", " ".join(str(e).split()) or type(e).__name__)
                return
        if job.cancel_event.is_set():
            self._finish(job, "cancelled", f"cancelled after {job.done} frames")
        else:
            self._finish(job, "done", f"{job.done} frames, {len(job.computed)} recomputed")

    def _finish(self, job: Job, state: str, message: str) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        self._publish_job(job)

    def wait(self, session_id: str, timeout: float | None = None) -> Job | None:
        """Block until the session's job (if any) ends; for scripts and tests."""
        job = self.current(session_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job
