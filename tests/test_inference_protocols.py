"""Dataset protocol runners (afb_urr/inference/protocols.py) through the infer command's --dataset,
on tiny generated DAVIS-2017 / YouTube-VOS / long-video folders and a random ResNet-18."""
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from afb_urr.io import read_mask, write_mask

from afb_urr.cli import infer

H, W = 32, 48




@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch
    from afb_urr import AFBURR
    from afb_urr.checkpoint import save_checkpoint
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "r18.pth"
    save_checkpoint(str(path), AFBURR("resnet18").eval())
    return str(path)


def _frame(seed):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _mask(*boxes):
    m = np.zeros((H, W), np.uint8)
    for label, (y0, y1, x0, x1) in boxes:
        m[y0:y1, x0:x1] = label
    return m


def _write_frames(folder, names, seed):
    os.makedirs(folder, exist_ok=True)
    for i, n in enumerate(names):
        Image.fromarray(_frame(seed * 100 + i)).save(os.path.join(folder, n + ".jpg"), quality=90)


def _run(argv, capsys):
    rc = infer.main(list(argv) + ["--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def _check_pngs(folder, names):
    assert sorted(f for f in os.listdir(folder) if f.endswith(".png")) == sorted(n + ".png" for n in names)
    for n in names:
        with Image.open(os.path.join(folder, n + ".png")) as img:
            assert img.mode == "P" and img.size == (W, H)


def _mtimes(folder):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, fs in os.walk(folder) for f in fs}


@pytest.fixture
def davis_root(tmp_path):
    root = tmp_path / "DAVIS"
    seqs = {"bear": 4, "car": 5}
    for k, (seq, n) in enumerate(seqs.items()):
        names = [f"{i:05d}" for i in range(n)]
        _write_frames(root / "JPEGImages" / "480p" / seq, names, k)
        first = _mask((1, (2, 14, 3, 20)), (2, (16, 30, 25, 45)))
        first[0, :] = 255  # void -> background
        write_mask(str(root / "Annotations" / "480p" / seq / "00000.png"), first)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("bear\ncar\n")
    return root, seqs


def test_davis_all_frames_resume_and_redo(davis_root, checkpoint, tmp_path, capsys):
    root, seqs = davis_root
    out = tmp_path / "res"
    argv = ["--dataset", "davis17", "--root", str(root), "--split", "val", "--weights", checkpoint,
            "--out", str(out)]
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    for seq, n in seqs.items():
        _check_pngs(out / seq, [f"{i:05d}" for i in range(n)])
        assert (out / seq / ".done").is_file()
    given = read_mask(str(root / "Annotations" / "480p" / "bear" / "00000.png"))
    given[given == 255] = 0
    assert np.array_equal(read_mask(str(out / "bear" / "00000.png")), given)
    assert "2 sequence(s) segmented, 0 skipped" in text and "frames: 9" in text
    assert "fps" in text and "peak memory:" in text and "MiB" in text

    before = _mtimes(out)
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    assert "0 sequence(s) segmented, 2 skipped" in text and "frames: 0" in text
    assert _mtimes(out) == before

    # a sequence stopped part-way (no marker, a PNG missing) is redone from its first frame
    os.remove(out / "car" / ".done")
    os.remove(out / "car" / "00004.png")
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    assert "1 sequence(s) segmented, 1 skipped" in text and "frames: 5" in text
    _check_pngs(out / "car", [f"{i:05d}" for i in range(5)])
    after = _mtimes(out)
    assert all(after[p] == before[p] for p in before if os.sep + "bear" + os.sep in p)


def test_davis_missing_inputs_are_one_line_errors(davis_root, checkpoint, tmp_path, capsys):
    root, _ = davis_root
    base = ["--dataset", "davis17", "--root", str(root), "--weights", checkpoint, "--out", str(tmp_path / "o")]
    rc, _, err = _run(base + ["--split", "test-dev"], capsys)
    assert rc == 1 and os.path.join("ImageSets", "2017", "test-dev.txt") in err and len(err.strip().splitlines()) == 1
    os.remove(root / "Annotations" / "480p" / "bear" / "00000.png")  # the first sequence: fails at once
    rc, _, err = _run(base, capsys)
    assert rc == 1 and "first-frame mask not found" in err and os.path.join("bear", "00000.png") in err
    (root / "ImageSets" / "2017" / "val.txt").write_text("nope\ncar\n")
    rc, _, err = _run(base, capsys)
    assert rc == 1 and os.path.join("480p", "nope") in err


@pytest.fixture
def ytvos_root(tmp_path):
    root = tmp_path / "YTVOS"
    base = root / "valid"
    # video A: object 1 from 00000, object 2 appears at 00010; 00020 is not listed
    names_a = ["00000", "00005", "00010", "00015", "00020"]
    _write_frames(base / "JPEGImages" / "vidA", names_a, 1)
    write_mask(str(base / "Annotations" / "vidA" / "00000.png"), _mask((1, (2, 14, 3, 20))))
    late = _mask((1, (2, 14, 3, 20)), (2, (18, 30, 28, 44)))  # holds object 1 too: only 2 starts here
    write_mask(str(base / "Annotations" / "vidA" / "00010.png"), late)
    # video B: its only object starts at the second frame; the first frame is not listed
    names_b = ["00000", "00005", "00010", "00015"]
    _write_frames(base / "JPEGImages" / "vidB", names_b, 2)
    write_mask(str(base / "Annotations" / "vidB" / "00005.png"), _mask((3, (5, 20, 10, 30))))
    meta = {"videos": {
        "vidA": {"objects": {"1": {"frames": ["00000", "00005", "00010", "00015"]},
                             "2": {"frames": ["00010", "00015"]}}},
        "vidB": {"objects": {"3": {"frames": ["00005", "00010", "00015"]}}}}}
    (base / "meta.json").write_text(json.dumps(meta))
    return root, late


def test_youtube_vos_late_objects_listed_frames_zip_resume(ytvos_root, checkpoint, tmp_path, capsys):
    root, late = ytvos_root
    out = tmp_path / "yt"
    argv = ["--dataset", "youtube_vos", "--root", str(root), "--split", "valid", "--weights", checkpoint,
            "--out", str(out)]
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    listed = {"vidA": ["00000", "00005", "00010", "00015"], "vidB": ["00005", "00010", "00015"]}
    for vid, names in listed.items():
        _check_pngs(out / "Annotations" / vid, names)
    # vidA: all 5 frames (00020 unlisted but segmented); vidB starts at its first listed frame: 3
    assert "2 sequence(s) segmented, 0 skipped" in text and "frames: 8" in text and "7 PNGs" in text
    a = {n: read_mask(str(out / "Annotations" / "vidA" / f"{n}.png")) for n in listed["vidA"]}
    assert not (a["00000"] == 2).any() and not (a["00005"] == 2).any()
    assert np.array_equal(a["00010"] == 2, late == 2)  # the late object is forced to its given mask
    assert set(np.unique(a["00015"]).tolist()) <= {0, 1, 2}
    b0 = read_mask(str(out / "Annotations" / "vidB" / "00005.png"))
    assert np.array_equal(b0, _mask((3, (5, 20, 10, 30))))
    with zipfile.ZipFile(out / "submission.zip") as z:
        assert sorted(z.namelist()) == sorted(f"Annotations/{v}/{n}.png" for v, ns in listed.items() for n in ns)
        assert z.read("Annotations/vidA/00010.png") == (out / "Annotations" / "vidA" / "00010.png").read_bytes()
    assert "submission zip:" in text

    pngs_before = {p: t for p, t in _mtimes(out / "Annotations").items()}
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    assert "0 sequence(s) segmented, 2 skipped" in text
    assert _mtimes(out / "Annotations") == pngs_before
    assert (out / "submission.zip").is_file()


def test_youtube_vos_missing_meta(tmp_path, checkpoint, capsys):
    (tmp_path / "r" / "valid").mkdir(parents=True)
    rc, _, err = _run(["--dataset", "youtube_vos", "--root", str(tmp_path / "r"), "--weights", checkpoint,
                       "--out", str(tmp_path / "o")], capsys)
    assert rc == 1 and os.path.join("valid", "meta.json") in err


def test_long_video_config_all_frames_resume(tmp_path, checkpoint, capsys, monkeypatch):
    root = tmp_path / "LV"
    vids = {"blueboy": 5, "dog": 4}
    for k, (vid, n) in enumerate(vids.items()):
        names = [f"{i:05d}" for i in range(n)]
        _write_frames(root / "JPEGImages" / vid, names, 10 + k)
        write_mask(str(root / "Annotations" / vid / "00000.png"), _mask((1, (4, 20, 6, 30))))
        write_mask(str(root / "Annotations" / vid / f"{n - 1:05d}.png"), _mask((1, (6, 22, 8, 32))))  # sparse GT
    rates = []
    real = infer.build_segmenter_factory

    def spy(args, weights):
        make = real(args, weights)

        def factory():
            seg = make()
            rates.append(seg.bank.update_rate)
            return seg
        return factory
    monkeypatch.setattr(infer, "build_segmenter_factory", spy)
    out = tmp_path / "lv"
    argv = ["--dataset", "long_video", "--root", str(root), "--weights", checkpoint, "--out", str(out)]
    rc, text, err = _run(argv, capsys)
    assert rc == 0, err
    assert rates == [pytest.approx(0.05)] * 2  # configs/long_video.yaml by default
    for vid, n in vids.items():
        _check_pngs(out / vid, [f"{i:05d}" for i in range(n)])
    assert "frames: 9" in text and "peak memory:" in text
    rc, text, err = _run(argv, capsys)
    assert rc == 0 and "0 sequence(s) segmented, 2 skipped" in text
    rc, _, err = _run(argv + ["--split", "val"], capsys)
    assert rc == 1 and "--split" in err
