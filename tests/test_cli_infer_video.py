"""tools/infer.py --video with masks of any frames, directions, exports, reports, live sources,
and bad input / partial output, on tiny synthetic videos (random ResNet-18 unless said)."""
import csv
import os
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from afb_urr.cli import infer
from afb_urr.data.synthetic import render_video
from afb_urr.inference import demo
from afb_urr.io import read_mask, write_mask
from afb_urr.io.exports import read_export

H, W = 48, 64


@pytest.fixture(scope="module")
def checkpoint(light_model, tmp_path_factory):
    from afb_urr import save_checkpoint
    path = tmp_path_factory.mktemp("ckpt") / "r18.pth"
    save_checkpoint(str(path), light_model)
    return str(path)


def _run(argv, capsys):
    rc = infer.main([str(a) for a in argv] + ["--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def _clip(root, n=5, size=(H, W), objects=2, first_frames=None, seed=0, ext="png"):
    frames, masks = render_video(seed, num_frames=n, size=size, num_objects=objects, first_frames=first_frames)
    folder = root / "frames"
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}.{ext}")
    return folder, masks


@pytest.fixture
def clip(tmp_path):
    folder, masks = _clip(tmp_path)
    write_mask(str(tmp_path / "m0.png"), masks[0])
    return folder, masks, tmp_path / "m0.png"


def _one_line_error(rc, err, *words):
    assert rc == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


# ---------------------------------------------------------------- the judo-like case
def test_judo_like_masks_at_later_frames_one_px_off(tmp_path, capsys):
    """16 frames, 4 objects entering at frames 0, 0, 5, 8; masks at 0, 5, 8, 13; the mask of
    frame 8 is 1 px narrower: refused without --resize-masks, then all objects are tracked."""
    size = (96, 160)
    folder, truth = _clip(tmp_path, n=16, size=size, objects=4, first_frames=[0, 0, 5, 8], seed=2)
    masks = tmp_path / "masks"
    for t in (0, 5, 8, 13):
        write_mask(str(masks / f"{t:05d}.png"), truth[t][:, :-1] if t == 8 else truth[t])
    out = tmp_path / "out"
    argv = ["--video", folder, "--masks", masks, "--weights", demo.demo_weights(), "--out", out]
    rc, _, err = _run(argv, capsys)
    _one_line_error(rc, err, "00008.png", "96x159", "96x160", "--resize-masks")
    assert not out.exists()  # an early error leaves no folder behind
    rc, text, err = _run(argv + ["--resize-masks"], capsys)
    assert rc == 0, err
    assert "objects 1, 2, 3, 4" in text and "segmented 16 frames" in text
    assert sorted(os.listdir(out)) == [f"{t:05d}.png" for t in range(16)]  # no INCOMPLETE
    pred = [read_mask(str(out / f"{t:05d}.png")) for t in range(16)]
    resized8 = cv2.resize(truth[8][:, :-1], size[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    for t in (0, 5, 13):
        assert np.array_equal(pred[t], truth[t])
    assert np.array_equal(pred[8], resized8)
    scores = []
    for t in range(16):
        for obj, first in ((1, 0), (2, 0), (3, 5), (4, 8)):
            area = int((pred[t] == obj).sum())
            assert (area > 0) == (t >= first), (t, obj, area)  # present from its entry on, not before
            if t >= first and t not in (0, 5, 8, 13):
                a, b = pred[t] == obj, truth[t] == obj
                scores.append((a & b).sum() / (a | b).sum())
    assert np.mean(scores) > 0.6, np.mean(scores)


# ---------------------------------------------------------------- directions and annotations
def test_backward_and_both_from_one_mask(clip, checkpoint, tmp_path, capsys):
    folder, truth, _ = clip
    write_mask(str(tmp_path / "m4.png"), truth[4])
    rc, text, err = _run(["--video", folder, "--mask", tmp_path / "m4.png", "--direction", "backward",
                          "--weights", checkpoint, "--out", tmp_path / "back"], capsys)
    assert rc == 0, err
    assert len(os.listdir(tmp_path / "back")) == 5  # backward from the last frame by default
    assert np.array_equal(read_mask(str(tmp_path / "back" / "00004.png")), truth[4])
    write_mask(str(tmp_path / "m2.png"), truth[2])
    rc, text, err = _run(["--video", folder, "--mask", tmp_path / "m2.png", "--direction", "both",
                          "--start-frame", "2", "--weights", checkpoint, "--out", tmp_path / "both"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "both")) == [f"{t:05d}.png" for t in range(5)]
    assert np.array_equal(read_mask(str(tmp_path / "both" / "00002.png")), truth[2])


def test_davis_folder_later_annotations_are_used(checkpoint, tmp_path, capsys):
    frames, truth = render_video(4, num_frames=4, size=(H, W), num_objects=2, first_frames=[0, 2])
    seq = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "toy"
    ann = tmp_path / "DAVIS" / "Annotations" / "480p" / "toy"
    seq.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(seq / f"{i:05d}.png")
    write_mask(str(ann / "00000.png"), truth[0])
    write_mask(str(ann / "00002.png"), truth[2])  # object 2 enters here
    rc, text, err = _run(["--video", seq, "--weights", checkpoint, "--out", tmp_path / "res"], capsys)
    assert rc == 0, err
    assert "2 frames from the annotations in" in text
    assert np.array_equal(read_mask(str(tmp_path / "res" / "00002.png")), truth[2])


def test_mask_for_a_frame_the_run_never_reaches(clip, checkpoint, tmp_path, capsys):
    folder, truth, _ = clip
    masks = tmp_path / "masks"
    write_mask(str(masks / "00000.png"), truth[0])
    write_mask(str(masks / "00004.png"), truth[4])
    rc, _, err = _run(["--video", folder, "--masks", masks, "--max-frames", "3", "--weights", checkpoint,
                       "--out", tmp_path / "o"], capsys)
    _one_line_error(rc, err, "00004.png", "never reaches")


# ---------------------------------------------------------------- outputs
def test_formats_report_suggest_and_uncertainty_overlay(clip, checkpoint, tmp_path, capsys):
    folder, truth, m0 = clip
    out, report, overlay = tmp_path / "out", tmp_path / "r.csv", tmp_path / "o.mp4"
    rc, text, err = _run(["--video", folder, "--mask", m0, "--weights", checkpoint, "--out", out,
                          "--format", "palette", "binary", "coco", "rgba", "--report", report,
                          "--suggest", "2", "--overlay", overlay, "--overlay-uncertainty"], capsys)
    assert rc == 0, err
    palette = dict(read_export(str(out), "palette"))
    assert sorted(palette) == [f"{t:05d}" for t in range(5)]
    for fmt in ("binary", "coco", "rgba"):
        got = dict(read_export(str(out), fmt))
        assert sorted(got) == sorted(palette)
        assert all(np.array_equal(got[n], palette[n]) for n in palette), fmt
    with open(report) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["frame_index", "frame", "score", "object_id", "confidence", "area"]
    first = [r for r in rows if r["frame_index"] == "0"]
    assert {r["object_id"] for r in first} == {"1", "2"}
    assert all(float(r["score"]) == 0 and float(r["confidence"]) == 1 for r in first)  # given frame
    for r in rows:
        if r["object_id"]:
            labels = palette[r["frame"]]
            assert int(r["area"]) == int((labels == int(r["object_id"])).sum())
            assert 0 <= float(r["confidence"]) <= 1
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("frames most worth annotating"))
    picked = [line.split()[0] for line in lines[head + 1:head + 3]]
    scores = {r["frame"]: float(r["score"]) for r in rows}
    best = sorted((n for n in scores if n != "00000"), key=lambda n: -scores[n])[:2]
    assert picked == best
    cap = cv2.VideoCapture(str(overlay))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 5


# ---------------------------------------------------------------- bad input
def test_argument_errors_are_one_line(clip, checkpoint, tmp_path, capsys):
    folder, _, m0 = clip
    base = ["--video", folder, "--weights", checkpoint]
    rc, _, err = _run(base + ["--mask", m0, "--mask", m0, "--out", tmp_path / "o"], capsys)
    _one_line_error(rc, err, "--mask given 2 times", "--masks DIR")
    rc, _, err = _run(base + ["--mask", m0, "--masks", tmp_path, "--out", tmp_path / "o"], capsys)
    _one_line_error(rc, err, "not both")
    (tmp_path / "afile").write_text("x")
    rc, _, err = _run(base + ["--mask", m0, "--out", tmp_path / "afile"], capsys)
    _one_line_error(rc, err, "afile is a file")
    text_weights = tmp_path / "weights.txt"
    text_weights.write_text("these are not weights\n")
    rc, _, err = _run(["--video", folder, "--mask", m0, "--weights", text_weights, "--out", tmp_path / "o"],
                      capsys)
    _one_line_error(rc, err, "weights.txt is not a checkpoint")
    rc, _, err = _run(base + ["--mask", m0, "--format", "coco"], capsys)
    _one_line_error(rc, err, "nothing to write")
    rc, _, err = _run(base + ["--mask", m0, "--overlay", tmp_path / "v.mp4", "--format", "coco"], capsys)
    _one_line_error(rc, err, "--format needs --out")
    rc, _, err = _run(base + ["--mask", m0, "--out", tmp_path / "o", "--stream-timeout", "2"], capsys)
    _one_line_error(rc, err, "--stream-timeout applies to cameras")
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as e:
        infer.main(["--video", str(folder), "--mask", str(m0), "--out", "x", "--max-frames", "0"])
    assert e.value.code == 2
    assert "--max-frames" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["rgb", "unknown_frame", "too_many"])
def test_bad_mask_in_folder_keeps_earlier_results(clip, checkpoint, tmp_path, capsys, case):
    folder, truth, m0 = clip
    out = tmp_path / "out"
    for t in range(5):  # an earlier run's masks
        write_mask(str(out / f"{t:05d}.png"), truth[t])
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    masks = tmp_path / "masks"
    write_mask(str(masks / "00000.png"), truth[0])
    extra = []
    if case == "rgb":
        bad = masks / "00002.png"
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(bad)
    elif case == "unknown_frame":
        bad = masks / "frame_99.png"
        write_mask(str(bad), truth[1])
    else:  # budget 40 over 3 x 4 features a frame: 2 objects fit
        bad = masks / "00003.png"
        three = truth[3].copy()
        three[:4, :4] = 3
        write_mask(str(bad), three)
        extra = ["--budget", "40"]
    rc, _, err = _run(["--video", folder, "--masks", masks, "--weights", checkpoint, "--out", out,
                       "--overwrite", *extra], capsys)
    _one_line_error(rc, err, bad.name)
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


def test_stale_folder_overwrite_and_incomplete_marker(clip, checkpoint, tmp_path, capsys):
    folder, truth, m0 = clip
    out = tmp_path / "out"
    argv = ["--video", folder, "--mask", m0, "--weights", checkpoint, "--out", out]
    out.mkdir()
    (out / "old_run.png").write_bytes(b"stale")
    rc, _, err = _run(argv, capsys)
    _one_line_error(rc, err, "--overwrite", "another run")
    assert os.listdir(out) == ["old_run.png"]
    # a corrupt frame part-way: the masks before it stay, marked incomplete with the reason
    (folder / "00003.png").write_bytes(b"not an image")
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    _one_line_error(rc, err, "00003.png")
    assert sorted(os.listdir(out)) == ["00000.png", "00001.png", "00002.png", "INCOMPLETE"]
    marker = (out / "INCOMPLETE").read_text()
    assert "stopped after 3 frames" in marker and "00003.png" in marker
    # fixed: a rerun replaces everything and removes the marker
    Image.fromarray(render_video(0, num_frames=5, size=(H, W))[0][3]).save(folder / "00003.png")
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == [f"{t:05d}.png" for t in range(5)]
    (out / "notes.txt").write_text("mine")
    rc, _, err = _run(argv + ["--overwrite"], capsys)
    _one_line_error(rc, err, "notes.txt")
    assert (out / "notes.txt").exists() and len(os.listdir(out)) == 6


# ---------------------------------------------------------------- live sources
class FakeCapture:
    """A capture giving ``frames`` (BGR), then ending or stalling."""

    def __init__(self, frames, then):
        self.frames, self.then = list(frames), then
        self.unblock = threading.Event()

    def isOpened(self):
        return True

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.frames:
            return True, self.frames.pop(0)
        if self.then == "stall":
            self.unblock.wait(30)  # far past --stream-timeout (the reader thread is a daemon)
        return False, None

    def release(self):
        pass


@pytest.mark.parametrize("then", ["end", "stall"])
def test_live_stream_ends_or_stalls(clip, checkpoint, tmp_path, capsys, monkeypatch, then):
    import afb_urr.io.live as live
    _, truth, m0 = clip
    frames, _ = render_video(0, num_frames=5, size=(H, W))
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames[:3]]
    fake = FakeCapture(bgr, then)
    monkeypatch.setattr(live, "open_capture", lambda path, timeout: fake)
    out = tmp_path / "live"
    rc, text, err = _run(["--video", "rtsp://user:pw@cam/x", "--mask", m0, "--weights", checkpoint,
                          "--out", out, "--stream-timeout", "0.3", "--format", "palette", "coco"], capsys)
    pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    assert pngs == ["00000.png", "00001.png", "00002.png"]
    assert np.array_equal(read_mask(str(out / "00000.png")), truth[0])
    assert "pw" not in text + err
    if then == "end":
        assert rc == 0, err
        assert "ended after 3 frames" in text and not (out / "INCOMPLETE").exists()
    else:
        assert rc == 1 and len(err.strip().splitlines()) == 1 and "stalled after 3 frames" in err
        assert "stalled" in (out / "INCOMPLETE").read_text()
    assert len(dict(read_export(str(out), "coco"))) == 3
    fake.unblock.set()


def test_live_source_refuses_session_options(checkpoint, tmp_path, capsys):
    rc, _, err = _run(["--video", "0", "--masks", tmp_path, "--weights", checkpoint, "--out", tmp_path / "o"],
                      capsys)
    _one_line_error(rc, err, "--masks cannot be used with a live source")
