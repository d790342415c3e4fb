"""Live sources: a camera index ("0") or a stream URL (rtsp://, http://, ...), read as frames come.

OpenCV's ``VideoCapture.read`` blocks while a stream waits for data, so a
reader thread owns the capture and hands frames over a small queue (at most
``queue_size`` frames: memory stays bounded and a slow consumer slows the
reader, it drops nothing). The consumer waits at most ``stream_timeout``
seconds for each frame. A stream that stalls that long, ends, or drops ends the
iteration cleanly, and ``source.end`` says why in one line (a
:class:`StreamEnd`), so the caller can keep every result so far and report it.
"""
from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import dataclass
from typing import Callable

import cv2
from .errors import InputError
from .frames import FrameSource, to_rgb

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


def is_live(path: str) -> bool:
    """True for a camera index (digits that name no file) or a stream URL."""
    return (path.isdigit() and not os.path.exists(path)) or path.lower().startswith(LIVE_SCHEMES)


def describe(path: str) -> str:
    """How messages name a live source: ``camera 0``, or ``stream <url>`` without its password."""
    return f"camera {path}" if path.isdigit() else "stream " + re.sub(r"//[^/@]*@", "//***@", path)


def open_capture(path: str, timeout: float) -> cv2.VideoCapture:
    """OpenCV capture of a camera index or URL; its backend gives up after ``timeout`` s where it can."""
    ms = max(1, int(timeout * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    return cv2.VideoCapture(int(path) if path.isdigit() else path, cv2.CAP_ANY, params)


@dataclass(frozen=True)
class StreamEnd:
    """Why a live source stopped: reason is "ended" (no more frames: the source finished
    or the connection dropped), "stalled" (no frame for stream_timeout s), "failed"
    (the capture raised) or "closed" (the caller stopped reading); message is one line."""
    reason: str
    frames: int
    message: str


class LiveSource(FrameSource):
    """Frames of a camera or stream, named 00000, 00001, ... in arrival order; read once.

    Opening waits up to ``stream_timeout`` s for the first frame (its size is then
    known: ``frame_size()``) and raises InputError if none comes. ``capture(path,
    timeout)`` makes the capture object (``read``, ``isOpened``, ``get``, ``release``);
    default :func:`open_capture` (looked up when the source opens); tests pass a fake one.
    """

    def __init__(self, path: str, stream_timeout: float = 10.0, queue_size: int = 4,
                 capture: Callable | None = None):
        if stream_timeout <= 0:
            raise ValueError(f"stream_timeout must be positive, got {stream_timeout}")
        self.path = path
        self.stream_timeout = float(stream_timeout)
        self.end: StreamEnd | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._count = 0
        self._started = False
        self._thread = threading.Thread(target=self._read, args=(capture or open_capture,), daemon=True,
                                        name=f"capture {describe(path)}")
        self._thread.start()
        kind, item = self._next()
        if kind != "frame":
            self.close()
            raise InputError(f"{describe(path)}: {item or 'no frame'} (before the first frame)")
        self._first = item
        self.height, self.width = item.shape[:2]

    # ---------------------------------------------------------------- reader thread
    def _put(self, item) -> bool:
        """Queue ``item``, waiting while the queue is full; False once the source is closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, capture) -> None:
        cap = None
        try:
            cap = capture(self.path, self.stream_timeout)
            if not cap.isOpened():
                self._put(("failed", "cannot open it (no such camera, or the URL does not answer)"))
                return
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
            self.fps = fps if 0 < fps < 1000 else None
            while not self._stop.is_set():
                ok, frame = cap.read()
                if not ok or frame is None:
                    self._put(("ended", "no more frames"))
                    return
                if not self._put(("frame", to_rgb(frame))):
                    return
        except Exception as e:  # the capture's own errors, reported to the consumer in one line
            lines = str(e).strip().splitlines()
            self._put(("failed", f"{type(e).__name__}: {lines[-1] if lines else ''}"))
        finally:
            if cap is not None:
                cap.release()

    # ---------------------------------------------------------------- consumer
    def _next(self):
        try:
            return self._queue.get(timeout=self.stream_timeout)
        except queue.Empty:
            return "stalled", f"no frame for {self.stream_timeout:g} s"

    def _finish(self, reason: str, detail: str) -> None:
        what = {"ended": "ended", "stalled": "stalled", "failed": "failed", "closed": "was closed"}[reason]
        self.end = StreamEnd(reason, self._count,
                             f"{describe(self.path)} {what} after {self._count} frames ({detail})")

    def __iter__(self):
        if self._started:
            raise InputError(f"{describe(self.path)} is live and can be read once; open it again")
        self._started = True
        frame, self._first = self._first, None
        try:
            while True:
                yield f"{self._count:05d}", frame
                self._count += 1
                kind, item = self._next()
                if kind != "frame":
                    self._finish(kind, item)
                    return
                frame = item
        finally:
            if self.end is None:
                self._finish("closed", "the reader stopped")
            self.close()

    def frame_size(self) -> tuple[int, int]:
        return self.height, self.width

    def close(self) -> None:
        """Stop the reader thread (it exits after its current ``read``; the capture is released there)."""
        self._stop.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
