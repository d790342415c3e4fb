"""Live sources: frames as they come; a stream that ends, stalls, fails or is left ends cleanly."""
import threading
import time

import cv2
import numpy as np
import pytest

from afb_urr.io import InputError, open_frames
from afb_urr.io.live import LiveSource, describe, is_live

H, W = 12, 16
TIMEOUT = 0.2


class FakeCapture:
    """A capture that gives ``frames`` (BGR) and then ends, stalls until released, or raises."""

    def __init__(self, frames, then="end", opened=True):
        self.frames, self.then, self.opened = list(frames), then, opened
        self.unblock = threading.Event()
        self.released = threading.Event()
        self.reads = 0

    def __call__(self, path, timeout):  # the LiveSource's capture factory
        self.opened_with = (path, timeout)
        return self

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        self.reads += 1
        if self.frames:
            return True, self.frames.pop(0)
        if self.then == "stall":
            self.unblock.wait(5)
        elif self.then == "raise":
            raise cv2.error("OpenCV(5.0) error: -2:Unspecified error\nconnection reset")
        return False, None

    def release(self):
        self.released.set()


def _bgr(n):
    return [np.full((H, W, 3), (i, 100, 200), np.uint8) for i in range(n)]


def test_stream_that_ends():
    cap = FakeCapture(_bgr(3))
    src = LiveSource("rtsp://cam/x", stream_timeout=TIMEOUT, capture=cap)
    assert cap.opened_with == ("rtsp://cam/x", TIMEOUT)
    assert src.frame_size() == (H, W) and src.fps == 25.0 and src.num_frames is None
    got = list(src)
    assert [n for n, _ in got] == ["00000", "00001", "00002"]
    assert [f[0, 0].tolist() for _, f in got] == [[200, 100, i] for i in range(3)]  # BGR -> RGB
    assert src.end.reason == "ended" and src.end.frames == 3
    assert src.end.message == "stream rtsp://cam/x ended after 3 frames (no more frames)"
    assert cap.released.wait(1)
    with pytest.raises(InputError, match="read once"):
        list(src)


def test_stream_that_stalls_ends_after_the_timeout():
    cap = FakeCapture(_bgr(2), then="stall")
    src = LiveSource("0", stream_timeout=TIMEOUT, capture=cap)
    t0 = time.monotonic()
    assert len(list(src)) == 2
    assert TIMEOUT <= time.monotonic() - t0 < 2
    assert src.end.reason == "stalled"
    assert src.end.message == "camera 0 stalled after 2 frames (no frame for 0.2 s)"
    assert "\n" not in src.end.message
    cap.unblock.set()  # the blocked read returns; the reader thread releases the capture
    assert cap.released.wait(1)


def test_capture_error_ends_cleanly():
    src = LiveSource("0", stream_timeout=TIMEOUT, capture=FakeCapture(_bgr(1), then="raise"))
    assert len(list(src)) == 1
    assert src.end.reason == "failed"
    assert src.end.message == "camera 0 failed after 1 frames (error: connection reset)"


def test_caller_stopping_early_stops_the_reader():
    cap = FakeCapture(_bgr(50))
    src = LiveSource("0", stream_timeout=TIMEOUT, queue_size=2, capture=cap)
    for name, _ in src:
        if name == "00001":
            break
    assert src.end.reason == "closed" and src.end.frames == 1
    assert cap.released.wait(1) and cap.reads < 50


def test_reader_waits_for_a_slow_consumer():
    cap = FakeCapture(_bgr(20))
    LiveSource("0", stream_timeout=TIMEOUT, queue_size=2, capture=cap)
    deadline = time.monotonic() + 1
    while cap.reads < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert cap.reads == 4  # the first frame, two queued, one waiting to be queued: nothing dropped


def test_no_first_frame_is_an_error():
    with pytest.raises(InputError, match="camera 3: cannot open it"):
        LiveSource("3", stream_timeout=TIMEOUT, capture=FakeCapture([], opened=False))
    stalled = FakeCapture([], then="stall")
    with pytest.raises(InputError, match=r"camera 0: no frame for 0.2 s \(before the first frame\)"):
        LiveSource("0", stream_timeout=TIMEOUT, capture=stalled)
    stalled.unblock.set()
    assert stalled.released.wait(1)
    with pytest.raises(ValueError, match="positive"):
        LiveSource("0", stream_timeout=0)


def test_real_capture_of_a_local_video(tmp_path):
    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W * 2, H * 2))
    for f in _bgr(4):
        w.write(cv2.resize(f, (W * 2, H * 2)))
    w.release()
    src = LiveSource(str(path), stream_timeout=2)  # OpenCV's own VideoCapture, in the reader thread
    assert src.frame_size() == (H * 2, W * 2)
    assert len(list(src)) == 4 and src.end.reason == "ended"


def test_is_live_and_describe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_live("0") and is_live("12") and is_live("RTSP://h/s") and is_live("https://h/v.m3u8")
    assert not is_live("clip.mp4") and not is_live("frames/")
    (tmp_path / "7").mkdir()
    assert not is_live("7")  # a folder named 7 is a folder of frames
    assert describe("rtsp://user:secret@cam:554/s") == "stream rtsp://***@cam:554/s"
    assert describe("0") == "camera 0"


def test_open_frames_routes_live_sources():
    with pytest.raises(InputError, match=r"stream rtsp://127\.0\.0\.1:9/none"):
        open_frames("rtsp://127.0.0.1:9/none", stream_timeout=1)
