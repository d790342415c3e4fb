"""The web app refuses bad input with one-line 4xx JSON errors, keeps every path inside its work
folder, and asks for a token when it listens beyond loopback."""
import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from afb_urr.app.errors import AppError
from afb_urr.app.paths import confine
from afb_urr.app.settings import AppSettings
from app_support import assert_one_line_error, make_client, png_bytes, put_raw, upload

H, W = 120, 216  # the demo video


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A client on a work folder holding the demo video and one session on it."""
    work = str(tmp_path_factory.mktemp("safety_work"))
    client = make_client(work, max_upload_bytes=64 * 1024)
    video = client.post("/api/videos/open", json={"name": "demo"})
    assert video.status_code == 200, video.text
    sid = client.post("/api/sessions", json={"video": "demo"}).json()["id"]
    assert client.post(f"/api/sessions/{sid}/objects", json={"name": "car"}).status_code == 201
    return client, sid, work


def _files(folder):
    return {os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs}


def test_confine_keeps_paths_inside_the_root(tmp_path):
    root = str(tmp_path)
    assert confine(root, "a", "b.png") == os.path.join(os.path.realpath(root), "a", "b.png")
    for bad in (("..", "x"), ("a/../../x",), ("/etc/passwd",), (os.path.join(root, "x"),), ("a\x00b",)):
        with pytest.raises(AppError):
            confine(root, *bad)
    os.symlink("/etc", os.path.join(root, "link"))
    with pytest.raises(AppError):
        confine(root, "link", "passwd")


@pytest.mark.parametrize("path", [
    "/api/sessions/..%2F..%2Fetc", "/api/sessions/..", "/api/sessions/%2Fetc%2Fpasswd",
    "/api/videos/..%2Fsessions", "/api/videos/demo/frames/-1", "/api/videos/demo/frames/40",
    "/static/..%2F..%2Fserver.py", "/static/../server.py", "/api/sessions/nosuchsession",
])
def test_traversal_and_unknown_ids_are_404(app, path):
    client, sid, work = app
    assert_one_line_error(client.get(path), 404)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "demo/../../x", ""])
def test_open_video_only_takes_listed_names(app, name):
    client, sid, work = app
    assert_one_line_error(client.post("/api/videos/open", json={"name": name}), 404)


def test_upload_name_cannot_choose_where_it_is_written(app):
    client, sid, work = app
    outside = os.path.dirname(work)
    before = _files(outside) - _files(work)
    r = upload(client, b"not a video at all", "../../evil.mp4")
    assert_one_line_error(r, 415)
    assert _files(outside) - _files(work) == before
    assert not os.listdir(os.path.join(work, "uploads"))  # the refused upload is gone


@pytest.mark.parametrize("data, filename, status, words", [
    (b"hello", "notes.txt", 415, "upload a video"),
    (b"hello", "clip.mp4", 415, "neither a video"),
    (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "clip.mp4", 400, "cannot decode"),
    (b"PK\x03\x04garbage", "frames.zip", 400, "corrupt zip"),
    (b"", "clip.mp4", 400, "empty"),
    (b"x" * (64 * 1024 + 1), "clip.mp4", 413, "limit"),
], ids=["text-file", "text-as-mp4", "corrupt-mp4", "corrupt-zip", "empty", "too-large"])
def test_bad_uploads(app, data, filename, status, words):
    client, sid, work = app
    assert words in assert_one_line_error(upload(client, data, filename), status)


def test_zip_without_frames(app):
    client, sid, work = app
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "no frames here")
    assert "no frames" in assert_one_line_error(upload(client, buf.getvalue(), "f.zip"), 400)


def _rgb_png():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("body, ctype, status, words", [
    (png_bytes(np.ones((H, W - 1), np.uint8)), "image/png", 400, "120x215 but the frames are 120x216"),
    (png_bytes(np.ones((H + 8, W), np.uint8)), "image/png", 400, "but the frames are"),
    (_rgb_png(), "image/png", 400, "colour"),
    (b"\x89PNG\r\n\x1a\n broken", "image/png", 400, "cannot read mask"),
    (b"GIF89a", "image/png", 400, "not a PNG"),
    (b"\x01" * (H * W - 1), "application/octet-stream", 400, "raw mask has"),
    (b"\x01" * (H * W), "text/plain", 415, "content type"),
    (b"\xfe" * (H * W), "application/octet-stream", None, None),  # 254 is a valid object id
], ids=["1px-narrow", "8px-taller", "rgb", "corrupt-png", "not-png", "raw-short", "text-type", "id-254"])
def test_bad_masks(app, body, ctype, status, words):
    client, sid, work = app
    r = client.put(f"/api/sessions/{sid}/masks/3", content=body, headers={"content-type": ctype})
    if status is None:
        assert r.status_code == 200, r.text
        return
    assert words in assert_one_line_error(r, status)
    assert 3 not in client.get(f"/api/sessions/{sid}").json()["annotated"]


def test_unknown_session_frame_object_and_bad_json(app):
    client, sid, work = app
    mask = np.zeros((H, W), np.uint8)
    assert_one_line_error(put_raw(client, "nosuch", 0, mask), 404)
    assert "frame 40 is not in the video" in assert_one_line_error(put_raw(client, sid, 40, mask), 404)
    assert_one_line_error(client.get(f"/api/sessions/{sid}/masks/abc"), 422)
    assert_one_line_error(client.get(f"/api/sessions/{sid}/masks/99"), 404)
    assert_one_line_error(client.patch(f"/api/sessions/{sid}/objects/77", json={"name": "x"}), 404)
    assert_one_line_error(client.patch(f"/api/sessions/{sid}/objects/1", json={"color": "red"}), 400)
    assert_one_line_error(client.post(f"/api/sessions/{sid}/propagate", json={"direction": "sideways"}), 422)
    assert_one_line_error(client.post(f"/api/sessions/{sid}/propagate", json={"start": 30, "end": 2}), 400)
    assert_one_line_error(client.post("/api/sessions", content=b"{not json",
                                      headers={"content-type": "application/json"}), 422)
    assert_one_line_error(client.get(f"/api/sessions/{sid}/export/tiff"), 422)
    assert_one_line_error(client.post("/api/sessions", json={"video": "../demo"}), 404)


def test_empty_mask_on_an_empty_frame_is_refused(app):
    client, sid, work = app
    r = put_raw(client, sid, 9, np.zeros((H, W), np.uint8))
    assert "holds no object" in assert_one_line_error(r, 400)


def test_propagating_before_any_annotation_is_refused(tmp_path):
    client = make_client(str(tmp_path))
    client.post("/api/videos/open", json={"name": "demo"})
    sid = client.post("/api/sessions", json={"video": "demo"}).json()["id"]
    assert "paint a mask" in assert_one_line_error(client.post(f"/api/sessions/{sid}/propagate", json={}), 400)


def test_token_on_every_request(tmp_path):
    client = make_client(str(tmp_path), token="s3cret-token")
    assert_one_line_error(client.get("/api/info"), 401)
    assert_one_line_error(client.get("/"), 401)
    assert_one_line_error(client.get("/static/app.js"), 401)
    assert_one_line_error(client.get("/api/info", headers={"Authorization": "Bearer wrong"}), 401)
    assert_one_line_error(client.get("/api/info", params={"token": "s3cret"}), 401)
    assert client.get("/api/info", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert client.get("/api/info", headers={"X-Token": "s3cret-token"}).status_code == 200
    assert client.get("/api/info", params={"token": "s3cret-token"}).json()["token_required"] is True
    page = client.get("/", params={"token": "s3cret-token"})  # the page sets a cookie for its assets
    assert page.status_code == 200 and "afb_urr_token" in page.headers["set-cookie"]
    assert client.get("/static/app.js").status_code == 200  # the client now sends the cookie


def test_a_non_loopback_host_gets_a_token():
    s = AppSettings(work="unused", host="0.0.0.0")
    assert s.resolve_token() and len(s.token) >= 20
    assert AppSettings(work="unused", host="0.0.0.0", token="given").resolve_token() == "given"
    assert AppSettings(work="unused").resolve_token() is None
    assert AppSettings(work="unused", host="::1").resolve_token() is None


def test_loopback_server_refuses_foreign_host_headers(tmp_path):
    client = make_client(str(tmp_path), allowed_hosts=("localhost", "127.0.0.1"))
    assert_one_line_error(client.get("/api/info"), 403)  # TestClient sends Host: testserver
    assert client.get("/api/info", headers={"Host": "127.0.0.1:7860"}).status_code == 200


def test_openapi_lists_the_routes(app):
    client, sid, work = app
    spec = client.get("/openapi.json").json()
    for path in ("/api/videos", "/api/sessions/{sid}/masks/{t}", "/api/sessions/{sid}/propagate",
                 "/api/sessions/{sid}/text",
                 "/api/sessions/{sid}/events", "/api/sessions/{sid}/export/{kind}"):
        assert path in spec["paths"], path


def test_partial_export_is_marked(tmp_path):
    client = make_client(str(tmp_path))
    client.post("/api/videos/open", json={"name": "demo"})
    sid = client.post("/api/sessions", json={"video": "demo"}).json()["id"]
    labels = np.zeros((H, W), np.uint8)
    labels[10:30, 10:40] = 1
    assert put_raw(client, sid, 0, labels).status_code == 200
    r = client.get(f"/api/sessions/{sid}/export/palette")
    assert r.status_code == 200 and r.headers["x-incomplete"] == "39"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert "39 of 40 frames have no mask" in z.read("masks/INCOMPLETE.txt").decode()
        assert len([n for n in z.namelist() if n.endswith(".png")]) == 40
    info = client.get(f"/api/sessions/{sid}/export/coco").json()["info"]
    assert info["complete"] is False and info["missing_frames"] == list(range(1, 40))
