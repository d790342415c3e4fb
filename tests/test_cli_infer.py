"""The infer command (afb_urr.cli.infer, tools/infer.py) end to end on tiny inputs with a
randomly initialised ResNet-18 checkpoint."""
import os
import re

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.cli import infer
from afb_urr.inference import demo
from afb_urr.io import read_mask, write_mask

H, W = 64, 96


@pytest.fixture
def checkpoint(light_checkpoint):
    return light_checkpoint


def _video(n, seed=0):
    from afb_urr.data.synthetic import render_video
    return render_video(seed, num_frames=n, size=(H, W), num_objects=2)


@pytest.fixture
def frame_folder(tmp_path):
    frames, masks = _video(4)
    folder = tmp_path / "frames"
    folder.mkdir()
    names = [f"cam_{i * 3}" for i in range(len(frames))]  # names are kept in the outputs
    for name, f in zip(names, frames):
        Image.fromarray(f).save(folder / f"{name}.png")
    write_mask(str(tmp_path / "first.png"), masks[0])
    return folder, tmp_path / "first.png", names, masks


def _run(argv, capsys):
    rc = infer.main(list(argv) + ["--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_folder_to_palette_pngs_and_overlay(frame_folder, checkpoint, tmp_path, capsys):
    folder, mask, names, truth = frame_folder
    out_dir, overlay = tmp_path / "out", tmp_path / "check.mp4"
    rc, out, err = _run(["--video", str(folder), "--mask", str(mask), "--weights", checkpoint,
                         "--out", str(out_dir), "--overlay", str(overlay)], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out_dir)) == sorted(n + ".png" for n in names)
    for name in names:
        with Image.open(out_dir / f"{name}.png") as img:
            assert img.mode == "P" and img.size == (W, H)
        labels = read_mask(str(out_dir / f"{name}.png"))
        assert set(np.unique(labels).tolist()) <= {0, 1, 2}
    # the first frame's output is the given mask
    assert np.array_equal(read_mask(str(out_dir / f"{names[0]}.png")), truth[0])
    cap = cv2.VideoCapture(str(overlay))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == len(names)
    assert "segmented 4 frames" in out


def test_video_file_input_and_max_frames(checkpoint, tmp_path, capsys):
    frames, masks = _video(5, seed=1)
    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    write_mask(str(tmp_path / "m.png"), masks[0])
    rc, _, err = _run(["--video", str(path), "--mask", str(tmp_path / "m.png"), "--weights", checkpoint,
                       "--out", str(tmp_path / "out"), "--max-frames", "3"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["00000.png", "00001.png", "00002.png"]


def test_davis_sequence_uses_first_annotation(checkpoint, tmp_path, capsys):
    frames, masks = _video(3, seed=2)
    seq = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "toy"
    ann = tmp_path / "DAVIS" / "Annotations" / "480p" / "toy"
    seq.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(seq / f"{i:05d}.jpg", quality=95)
    first = masks[0].copy()
    first[0, :] = 255  # DAVIS void: treated as background
    write_mask(str(ann / "00000.png"), first)
    rc, _, err = _run(["--video", str(seq), "--weights", checkpoint, "--out", str(tmp_path / "res")],
                      capsys)
    assert rc == 0, err
    out0 = read_mask(str(tmp_path / "res" / "00000.png"))
    expected = masks[0].copy()
    expected[0, :] = 0
    assert np.array_equal(out0, expected)
    assert len(os.listdir(tmp_path / "res")) == 3


def test_config_and_overrides_reach_the_segmenter(checkpoint):
    args = infer.build_parser().parse_args(["--weights", checkpoint, "--device", "cpu",
                                            "--config", "long_video"])
    seg = infer.build_segmenter(args, checkpoint)
    assert seg.bank.budget == 300000 and seg.bank.update_rate == pytest.approx(0.05)
    args = infer.build_parser().parse_args(["--weights", checkpoint, "--device", "cpu",
                                            "--budget", "5000", "--update-rate", "0.2"])
    seg = infer.build_segmenter(args, checkpoint)
    assert seg.bank.budget == 5000 and seg.bank.update_rate == pytest.approx(0.2)
    assert seg.config.precision == "fp32" and not seg.config.compile
    args = infer.build_parser().parse_args(["--weights", checkpoint, "--device", "cpu",
                                            "--precision", "bf16", "--compile"])
    seg = infer.build_segmenter(args, checkpoint)
    assert seg.config.precision == "bf16" and seg.config.compile and seg.dtype == torch.bfloat16


def test_demo_without_weights_says_how_to_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_WEIGHTS", str(tmp_path / "absent.pth"))
    rc, out, err = _run(["--demo"], capsys)
    assert rc == 1
    assert "python tools/train.py --config configs/train_synthetic.yaml" in err
    assert "absent.pth" in err and "mean J" not in out
    assert len(err.strip().splitlines()) == 1


def test_demo_with_missing_given_weights_is_an_error(tmp_path, capsys):
    rc, _, err = _run(["--demo", "--weights", str(tmp_path / "gone.pth")], capsys)
    assert rc == 1 and "gone.pth" in err and "Traceback" not in err


def test_demo_prints_mean_j_of_its_outputs(checkpoint, tmp_path, monkeypatch, capsys):
    from afb_urr.data.synthetic import DEMO_SEED, render_video
    monkeypatch.setattr(demo, "DEMO_SIZE", (H, W))
    monkeypatch.setattr(demo, "DEMO_FRAMES", 4)
    rc, out, err = _run(["--demo", "--weights", checkpoint, "--out", str(tmp_path / "demo")], capsys)
    assert rc == 0, err
    m = re.search(r"^mean J: (\d\.\d{3})$", out, re.M)
    assert m, out
    # recompute J from the written masks against the generator's truth
    _, truth = render_video(DEMO_SEED, num_frames=4, size=(H, W), num_objects=2)
    scores = []
    for t in range(1, 4):
        pred = read_mask(str(tmp_path / "demo" / f"{t:05d}.png"))
        for obj in (1, 2):
            a, b = pred == obj, truth[t] == obj
            union = (a | b).sum()
            scores.append(1.0 if union == 0 else (a & b).sum() / union)
    assert float(m.group(1)) == pytest.approx(np.mean(scores), abs=6e-4)


def test_committed_demo_weights_segment_the_demo(monkeypatch, capsys):
    # The README's first command: the committed fp16 demo checkpoint, found without
    # --weights, segments the first frames of the demo video well above chance
    # (a frame-0-only model or one with broken weights scores near 0).
    path = demo.demo_weights()
    assert os.path.isfile(path), f"{path} is missing: the demo checkpoint must be committed"
    assert os.path.getsize(path) <= 25 * 2 ** 20
    monkeypatch.setattr(demo, "DEMO_FRAMES", 6)
    rc, out, err = _run(["--demo"], capsys)
    assert rc == 0, err
    m = re.search(r"^mean J: (\d\.\d{3})$", out, re.M)
    assert m, out
    assert float(m.group(1)) > 0.5, out


@pytest.mark.parametrize("content", [b"not a png at all", "rgb"])
def test_bad_mask_is_a_one_line_error(frame_folder, checkpoint, tmp_path, capsys, content):
    folder = frame_folder[0]
    bad = tmp_path / "badmask.png"
    if content == "rgb":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(bad)
    else:
        bad.write_bytes(content)
    rc, _, err = _run(["--video", str(folder), "--mask", str(bad), "--weights", checkpoint,
                       "--out", str(tmp_path / "o")], capsys)
    assert rc != 0
    assert err.startswith("error: ") and "badmask.png" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_mask_size_mismatch_names_the_mask(frame_folder, checkpoint, tmp_path, capsys):
    small = tmp_path / "small.png"
    write_mask(str(small), np.ones((8, 8), np.uint8))
    rc, _, err = _run(["--video", str(frame_folder[0]), "--mask", str(small), "--weights", checkpoint,
                       "--out", str(tmp_path / "o")], capsys)
    assert rc == 1 and "small.png is 8x8" in err


def test_unreadable_video_and_debug(frame_folder, checkpoint, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 300)
    argv = ["--video", str(bad), "--mask", str(frame_folder[1]), "--weights", checkpoint,
            "--out", str(tmp_path / "o")]
    rc, _, err = _run(argv, capsys)
    assert rc == 1 and "broken.mp4" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="broken.mp4"):
        infer.main(argv + ["--debug", "--device", "cpu"])


def test_missing_arguments_are_errors(frame_folder, checkpoint, tmp_path, capsys):
    folder, mask = frame_folder[0], frame_folder[1]
    rc, _, err = _run(["--video", str(folder), "--mask", str(mask), "--weights", checkpoint], capsys)
    assert rc == 1 and "nothing to write" in err
    rc, _, err = _run(["--video", str(folder), "--weights", checkpoint, "--out", str(tmp_path / "o")],
                      capsys)
    assert rc == 1 and "--mask is required" in err
    rc, _, err = _run(["--video", str(folder), "--mask", str(mask), "--weights", checkpoint,
                       "--out", str(folder)], capsys)
    assert rc == 1 and "input frame folder" in err


def test_train_config_is_read_for_its_inference_sections(checkpoint):
    # A training config has data/train/val sections the infer command does not use.
    args = infer.build_parser().parse_args(["--weights", checkpoint, "--device", "cpu",
                                            "--config", "configs/train_synthetic.yaml"])
    seg = infer.build_segmenter(args, checkpoint)
    assert seg.bank.budget == 300000 and seg.config.update_rate == pytest.approx(0.1)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        infer.main(["--dataset", "nope"])
    assert e.value.code == 2
