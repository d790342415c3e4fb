"""The app's text box: an object from a sentence (light demo referring weights) on a frame of the
demo clip, annotated there, propagated; bad requests are one-line 4xx answers that change nothing."""
import numpy as np
import pytest

from afb_urr.app import AppSettings
from afb_urr.data.synthetic import DEMO_SEED, render_video
from afb_urr.evaluation.metrics import j_measure
from afb_urr.inference import demo
from app_support import assert_one_line_error, follow_job, get_raw, make_client, put_raw, upload, zip_frames

N = 8
SIZE = (120, 216)


@pytest.fixture(scope="module")
def clip():
    return render_video(DEMO_SEED, num_frames=N, size=SIZE, num_objects=2)


def _session(client, clip):
    r = upload(client, zip_frames(clip[0]), "clip.zip")
    assert r.status_code == 201, r.text
    return client.post("/api/sessions", json={"video": r.json()["id"]}).json()["id"]


@pytest.fixture(scope="module")
def app(tmp_path_factory, clip):
    """A demo app (demo weights, so the light referring weights too) with the clip open."""
    client = make_client(str(tmp_path_factory.mktemp("text_work")))
    return client, _session(client, clip)


def test_sentences_make_objects_that_propagate(app, clip):
    client, sid = app
    frames, truth = clip
    assert client.get("/api/info").json()["text"] is True
    sentences = demo.demo_sentences(truth)  # sentence i describes true object i + 1
    made = []
    for k, sentence in enumerate(sentences):
        r = client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": "  " + sentence + " "})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["object"]["name"] == sentence and body["object"]["id"] == k + 1
        assert body["session"]["annotated"] == [0] and 0 < body["confidence"] <= 1
        made.append(body["object"]["id"])
    labels = get_raw(client, sid, 0, SIZE)
    assert set(np.unique(labels)) <= {0, *made}
    for k, obj in enumerate(made):  # the light model finds each demo object (J 0.86 on average)
        assert j_measure(truth[0] == k + 1, labels == obj) >= 0.6
    assert client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"}).status_code == 202
    follow_job(client, sid)
    js = [j_measure(truth[t] == k + 1, get_raw(client, sid, t, SIZE) == obj)
          for t in range(1, N) for k, obj in enumerate(made)]
    assert np.mean(js) >= 0.6


def test_bad_text_requests_change_nothing(tmp_path, clip, monkeypatch):
    client = make_client(str(tmp_path / "work"))
    sid = _session(client, clip)
    before = client.get(f"/api/sessions/{sid}").json()
    assert "empty" in assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": " "}), 400)
    assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": N, "text": "the ellipse"}), 404)
    assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": "x" * 501}), 422)
    assert_one_line_error(client.post(f"/api/sessions/nope/text", json={"frame": 0, "text": "the ellipse"}), 404)
    everything = np.ones(SIZE, np.uint8)  # object 1 holds every pixel: the sentence finds only its pixels
    client.post(f"/api/sessions/{sid}/objects", json={})
    assert put_raw(client, sid, 0, everything).status_code == 200
    held = client.get(f"/api/sessions/{sid}").json()
    msg = assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": "the ellipse"}), 422)
    assert "belongs to other objects" in msg
    ctx = client.app.state.ctx

    def nothing(frame, text):
        raise ValueError(f"no object found for any expression: {text!r}: found nothing")
    monkeypatch.setattr(ctx.engine, "find", nothing)
    msg = assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": 1, "text": "the ellipse"}), 422)
    assert "found nothing" in msg
    after = client.get(f"/api/sessions/{sid}").json()
    assert after["objects"] == held["objects"] and after["annotated"] == held["annotated"] == [0]
    assert np.array_equal(get_raw(client, sid, 0, SIZE), everything)
    assert before["objects"] == []


def test_without_a_referring_model_the_text_box_is_off(tmp_path, clip):
    client = make_client(str(tmp_path / "work"), weights=demo.demo_weights())  # not the demo: no default
    sid = _session(client, clip)
    assert client.get("/api/info").json()["text"] is False
    msg = assert_one_line_error(client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": "the ellipse"}), 409)
    assert "--referring-weights" in msg
    with pytest.raises(ValueError, match="--referring-weights too"):
        AppSettings(work=str(tmp_path / "w"), vocab=demo.demo_weights(referring=True))
    with pytest.raises(ValueError, match="--referring-weights .*: not found"):
        AppSettings(work=str(tmp_path / "w"), referring_weights=str(tmp_path / "missing.pth"))


def test_a_wrong_referring_file_stops_the_app_at_start(tmp_path, capsys):
    from afb_urr.cli.app import main
    vocab = demo.demo_weights(referring=True).replace(".pth", "_vocab.txt")
    code = main(["--work", str(tmp_path / "work"), "--referring-weights", demo.demo_weights(), "--vocab", vocab])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "AFB-URR" in err, err


def test_a_sentence_over_20_word_pieces_is_cut_with_a_warning(tmp_path, clip):
    client = make_client(str(tmp_path / "work"))
    sid = _session(client, clip)
    long = " ".join(["the ellipse on the right"] * 5)  # 25 word pieces
    r = client.post(f"/api/sessions/{sid}/text", json={"frame": 0, "text": long})
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["warnings"]) == 1 and "kept the first 20 ids" in body["warnings"][0]
    name = body["object"]["name"]
    assert long.startswith(name) and len(name) <= 100 and name == name.strip()
