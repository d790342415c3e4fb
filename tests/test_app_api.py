"""The web app's JSON API in-process: upload, annotate, propagate, correct, re-propagate, export,
restart, failed and cancelled jobs. Uses the demo weights on a short synthetic clip."""
import io
import json
import os
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from afb_urr.data.synthetic import DEMO_SEED, render_video
from afb_urr.io.exports import read_coco
from app_support import follow_job, get_raw, make_client, mean_j, png_bytes, put_raw, upload, zip_frames

N = 24
SIZE = (120, 216)


@pytest.fixture(scope="module")
def clip():
    """The demo video's world (seed 2020, 2 objects), 24 frames: frames and true label maps."""
    frames, truth = render_video(DEMO_SEED, num_frames=N, size=SIZE, num_objects=2)
    return frames, truth


@pytest.fixture(scope="module")
def flow(tmp_path_factory, clip):
    """Upload, annotate frame 0, propagate both ways: the state every flow test starts from."""
    frames, truth = clip
    work = str(tmp_path_factory.mktemp("app_work"))
    client = make_client(work)
    r = upload(client, zip_frames(frames), "clip.zip")
    assert r.status_code == 201, r.text
    video = r.json()
    assert (video["num_frames"], video["height"], video["width"]) == (N, *SIZE)
    s = client.post("/api/sessions", json={"video": video["id"], "name": "demo clip"}).json()
    r = client.put(f"/api/sessions/{s['id']}/masks/0", content=png_bytes(truth[0]),
                   headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json()["annotated"] == [0] and [o["id"] for o in r.json()["objects"]] == [1, 2]
    job = client.post(f"/api/sessions/{s['id']}/propagate", json={"direction": "both"})
    assert job.status_code == 202, job.text
    events = follow_job(client, s["id"])
    return {"client": client, "work": work, "sid": s["id"], "video": video, "events": events}


def test_propagation_streams_every_frame_and_segments_well(flow, clip):
    frames, truth = clip
    events = flow["events"]
    done = [e["t"] for e in events if e["type"] == "frame"]
    assert sorted(done) == list(range(N))
    jobs = [e["job"] for e in events if e["type"] == "job"]
    assert [j["state"] for j in jobs][-1] == "done" and jobs[-1]["computed"] == N - 1
    state = flow["client"].get(f"/api/sessions/{flow['sid']}").json()
    assert state["done"] == list(range(N)) and state["stale"] == []
    assert all(s is not None for s in state["scores"]) and state["scores"][0] == 0.0
    pred = {t: get_raw(flow["client"], flow["sid"], t, SIZE) for t in range(N)}
    assert mean_j(pred, truth, range(1, N)) >= 0.8


def test_correction_recomputes_only_dependent_frames(flow, clip):
    frames, truth = clip
    client, sid = flow["client"], flow["sid"]
    before = {t: get_raw(client, sid, t, SIZE) for t in range(N)}
    r = put_raw(client, sid, 20, truth[20])
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["annotated"] == [0, 20]
    assert state["stale"] == [t for t in range(1, N) if t != 20]  # between frame 0 and the end
    assert np.array_equal(get_raw(client, sid, 20, SIZE), truth[20])
    assert client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"}).status_code == 202
    events = follow_job(client, sid, since=state["events"])
    job = [e["job"] for e in events if e["type"] == "job"][-1]
    assert job["state"] == "done"
    # "both": frames 11..19 now come from frame 20 (nearer), 21..23 from 20 forward; 1..10 are kept
    assert job["computed"] == 12
    after = {t: get_raw(client, sid, t, SIZE) for t in range(N)}
    assert all(np.array_equal(before[t], after[t]) for t in range(0, 11))
    assert client.get(f"/api/sessions/{sid}").json()["stale"] == []
    assert mean_j(after, truth, [t for t in range(1, N) if t != 20]) >= 0.8
    flow["after"] = after


def test_exports_decode_to_the_session_masks(flow, clip):
    client, sid = flow["client"], flow["sid"]
    frames = clip[0]
    masks = flow.get("after") or {t: get_raw(client, sid, t, SIZE) for t in range(N)}
    r = client.get(f"/api/sessions/{sid}/export/palette")
    assert r.status_code == 200 and r.headers["x-incomplete"] == "0"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = sorted(z.namelist())
        assert names == [f"masks/{t:05d}.png" for t in range(N)]
        for t in range(N):
            with z.open(f"masks/{t:05d}.png") as f:
                labels = np.array(Image.open(f))
            assert np.array_equal(labels, masks[t])
    r = client.get(f"/api/sessions/{sid}/export/coco")
    assert r.status_code == 200
    path = os.path.join(flow["work"], "coco_copy.json")
    with open(path, "wb") as f:
        f.write(r.content)
    info = json.loads(r.content)["info"]
    assert info["complete"] is True and info["missing_frames"] == [] and info["objects"] == {"1": "Object 1", "2": "Object 2"}
    decoded = dict(read_coco(path))
    assert all(np.array_equal(decoded[f"{t:05d}"], masks[t]) for t in range(N))
    # the overlay tints each object with its colour on the page
    assert client.patch(f"/api/sessions/{sid}/objects/1", json={"color": "#00ff00"}).status_code == 200
    r = client.get(f"/api/sessions/{sid}/export/mp4")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    path = os.path.join(flow["work"], "overlay_copy.mp4")
    with open(path, "wb") as f:
        f.write(r.content)
    cap = cv2.VideoCapture(path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    ok, bgr = cap.read()
    cap.release()
    inside = cv2.erode((masks[0] == 1).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    expected = 0.5 * frames[0][inside].astype(np.float32) + 0.5 * np.array([0, 255, 0], np.float32)
    got = bgr[..., ::-1][inside].astype(np.float32)
    assert ok and np.abs(got.mean(0) - expected.mean(0)).max() < 12  # mp4v is lossy


def test_session_survives_a_restart(flow):
    client, sid = flow["client"], flow["sid"]
    state = client.get(f"/api/sessions/{sid}").json()
    masks = {t: get_raw(client, sid, t, SIZE) for t in (0, 5, 20, 23)}
    again = make_client(flow["work"])  # a new server process on the same work folder
    assert any(s["id"] == sid for s in again.get("/api/sessions").json())
    restored = again.get(f"/api/sessions/{sid}").json()
    for key in ("annotated", "done", "stale", "scores", "objects"):
        assert restored[key] == state[key], key
    assert all(np.array_equal(get_raw(again, sid, t, SIZE), m) for t, m in masks.items())
    # the live session is rebuilt from the saved annotations: propagating still works
    assert again.post(f"/api/sessions/{sid}/propagate",
                      json={"direction": "forward", "start": 0, "end": 2}).status_code == 202
    job = [e for e in follow_job(again, sid) if e["type"] == "job"][-1]["job"]
    assert job["state"] == "done" and job["done"] == 3
    assert np.array_equal(get_raw(again, sid, 0, SIZE), masks[0])


SMALL = (64, 112)


@pytest.fixture(scope="module")
def short_clip():
    """8 frames of the demo world at 64x112 (faster) for the job tests."""
    return render_video(DEMO_SEED, num_frames=8, size=SMALL, num_objects=2)


@pytest.fixture()
def small(tmp_path, short_clip):
    """A fresh app with an 8-frame clip annotated on frame 0 and propagated over frames 0..3."""
    frames, truth = short_clip
    client = make_client(str(tmp_path))
    video = upload(client, zip_frames(frames), "short.zip").json()
    sid = client.post("/api/sessions", json={"video": video["id"]}).json()["id"]
    assert put_raw(client, sid, 0, truth[0]).status_code == 200
    client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward", "end": 3})
    follow_job(client, sid)
    return client, sid, video, str(tmp_path)


def test_failed_propagation_leaves_the_session_as_it_was(small):
    client, sid, video, work = small
    state = client.get(f"/api/sessions/{sid}").json()
    masks = {t: get_raw(client, sid, t, SMALL) for t in range(8)}
    frame6 = os.path.join(work, "videos", video["id"], "frames", "000006.png")
    with open(frame6, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really a png")
    client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
    events = follow_job(client, sid, since=state["events"])
    assert [e["t"] for e in events if e["type"] == "frame"][-1] == 5  # frames 4, 5 were shown
    job = [e["job"] for e in events if e["type"] == "job"][-1]
    assert job["state"] == "failed" and "\n" not in job["message"] and "000006" in job["message"]
    after = client.get(f"/api/sessions/{sid}").json()
    for key in ("annotated", "done", "stale", "scores"):
        assert after[key] == state[key], key
    assert all(np.array_equal(get_raw(client, sid, t, SMALL), m) for t, m in masks.items())
    assert not os.path.exists(os.path.join(work, "sessions", sid, "staging"))


def test_cancel_keeps_the_finished_frames(small, short_clip):
    client, sid, video, work = small
    state = client.get(f"/api/sessions/{sid}").json()
    put_raw(client, sid, 7, short_clip[1][7])  # a second annotation: frames 4..6 are recomputed
    client.post(f"/api/sessions/{sid}/propagate", json={"direction": "backward"})
    cancelled = []

    def cancel_once(event):
        if not cancelled:
            cancelled.append(client.post(f"/api/sessions/{sid}/cancel").json())

    events = follow_job(client, sid, since=state["events"], on_frame=cancel_once)
    job = [e["job"] for e in events if e["type"] == "job"][-1]
    assert job["state"] == "cancelled" and job["done"] < job["total"]
    finished = [e["t"] for e in events if e["type"] == "frame"]
    done = client.get(f"/api/sessions/{sid}").json()["done"]
    assert set(finished) <= set(done)


def test_one_job_per_session(small):
    client, sid, video, work = small
    ctx = client.app.state.ctx
    ctx.jobs._slots.acquire()  # hold the compute slot so that the job stays queued
    try:
        first = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
        assert first.status_code == 202 and first.json()["state"] == "queued"
        second = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
        assert second.status_code == 409 and "already running" in second.json()["error"]
        edit = put_raw(client, sid, 2, np.zeros(SMALL, np.uint8))
        assert edit.status_code == 409
        client.post(f"/api/sessions/{sid}/cancel")
    finally:
        ctx.jobs._slots.release()
    job = ctx.jobs.wait(sid, timeout=60)
    assert job.state == "cancelled" and job.done == 0
