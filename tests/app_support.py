"""Helpers shared by the web app tests (tests/test_app_*.py)."""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from afb_urr.evaluation.metrics import j_measure
from afb_urr.io import write_mask


def make_client(work: str, **settings):
    """An in-process client of a fresh app on ``work`` (TestClient's Host is 'testserver')."""
    from fastapi.testclient import TestClient

    from afb_urr.app import AppSettings, create_app
    settings.setdefault("allowed_hosts", ("testserver",))
    app = create_app(AppSettings(work=work, **settings))
    return TestClient(app, raise_server_exceptions=False)


def png_bytes(labels: np.ndarray) -> bytes:
    """A label map as palette PNG bytes."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.png")
        write_mask(path, labels)
        with open(path, "rb") as f:
            return f.read()


def zip_frames(frames) -> bytes:
    """A zip of PNG frames named 00000.png ... (what a user uploads as a 'zip of frames')."""
    import cv2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, frame in enumerate(frames):
            ok, data = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            assert ok
            z.writestr(f"clip/{i:05d}.png", data.tobytes())
    return buf.getvalue()


def upload(client, data: bytes, filename: str):
    return client.post("/api/videos", params={"filename": filename}, content=data,
                       headers={"content-type": "application/octet-stream"})


def put_raw(client, sid: str, t: int, labels: np.ndarray):
    return client.put(f"/api/sessions/{sid}/masks/{t}", content=np.ascontiguousarray(labels, np.uint8).tobytes(),
                      headers={"content-type": "application/octet-stream"})


def get_raw(client, sid: str, t: int, shape) -> np.ndarray:
    r = client.get(f"/api/sessions/{sid}/masks/{t}", params={"format": "raw"})
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, np.uint8).reshape(shape)


def follow_job(client, sid: str, since: int = 0, on_frame=None) -> list[dict]:
    """Read the session's server-sent events until its job ends; returns the events."""
    events = []
    with client.stream("GET", f"/api/sessions/{sid}/events",
                       params={"follow": "job", "since": since}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                events.append(event)
                if on_frame and event["type"] == "frame":
                    on_frame(event)
    return events


def mean_j(pred: dict[int, np.ndarray], truth, frames, objects=(1, 2)) -> float:
    """Mean region J over ``frames`` and ``objects`` of label maps ``pred[t]`` against ``truth[t]``."""
    scores = [j_measure(truth[t] == o, pred[t] == o) for t in frames for o in objects]
    return float(np.mean(scores))


def assert_one_line_error(r, status: int):
    """A 4xx JSON answer {"error": one line} with no traceback."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]
