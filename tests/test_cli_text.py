"""tools/infer.py --text end to end: a tiny light LAVT (set to find an object everywhere) and a
vocabulary the test writes, a random ResNet-18 AFB-URR checkpoint, a folder of frames."""
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.cli import infer
from afb_urr.inference import demo
from afb_urr.io import read_mask, write_mask
from afb_urr.referring import save_referring_model
from afb_urr.referring.tokenizer import vocab_digest
from referring_common import LIGHT_VOCAB, write_vocab
from test_inference_text import constant_lavt

H, W = 48, 64


@pytest.fixture(scope="module")
def files(light_model, tmp_path_factory):
    from afb_urr import save_checkpoint
    from afb_urr.data.synthetic import render_video
    root = tmp_path_factory.mktemp("text_cli")
    save_checkpoint(str(root / "r18.pth"), light_model)
    save_referring_model(str(root / "lavt.pth"), constant_lavt(5.0), vocab_digest=vocab_digest(LIGHT_VOCAB))
    write_vocab(root)  # root/vocab.txt
    frames, masks = render_video(5, num_frames=4, size=(H, W), num_objects=2)
    (root / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(root / "frames" / f"f{i}.png")
    write_mask(str(root / "first.png"), masks[0])
    return root, masks


def _run(files, argv, capsys, tmp_path=None, text=("the red ball",)):
    root, _ = files
    args = ["--video", str(root / "frames"), "--weights", str(root / "r18.pth"),
            "--referring-weights", str(root / "lavt.pth"), "--vocab", str(root / "vocab.txt")]
    for t in text:
        args += ["--text", t]
    if tmp_path is not None:
        args += ["--out", str(tmp_path / "out")]
    rc = infer.main(args + list(argv) + ["--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_text_makes_the_first_mask_then_propagation_runs(files, tmp_path, capsys):
    rc, out, err = _run(files, [], capsys, tmp_path, text=("the red ball", "a blue cube"))
    assert rc == 0, err
    assert "text 'the red ball': object 1, confidence 0.99" in out
    assert "text 'a blue cube': no object (outscored everywhere)" in out
    assert "'a blue cube': outscored everywhere" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path / "out")) == [f"f{i}.png" for i in range(4)]
    assert (read_mask(str(tmp_path / "out" / "f0.png")) == 1).all()


def test_text_with_a_mask_numbers_after_its_objects(files, tmp_path, capsys):
    root, masks = files
    rc, out, err = _run(files, ["--mask", str(root / "first.png")], capsys, tmp_path)
    assert rc == 0, err
    assert "object 3" in out
    first = read_mask(str(tmp_path / "out" / "f0.png"))
    assert np.array_equal(first, np.where(masks[0] != 0, masks[0], 3))  # the mask's pixels win


def test_text_at_a_later_frame(files, tmp_path, capsys):
    root, masks = files
    rc, out, err = _run(files, ["--text-frame", "2"], capsys, tmp_path)
    assert rc == 0, err
    assert "masks: 1 frames from --text at frame f2, objects 1; forward" in out
    assert not read_mask(str(tmp_path / "out" / "f1.png")).any()  # forward: nothing before frame 2
    assert (read_mask(str(tmp_path / "out" / "f2.png")) == 1).all()
    rc, out, err = _run(files, ["--text-frame", "2", "--direction", "both"], capsys, tmp_path / "d")
    assert rc == 0, err
    assert read_mask(str(tmp_path / "d" / "out" / "f1.png")).any()  # both: propagated back from frame 2
    rc, out, err = _run(files, ["--text-frame", "2", "--mask", str(root / "first.png")], capsys,
                        tmp_path / "b")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "b" / "out")) == [f"f{i}.png" for i in range(4)]
    assert 3 not in read_mask(str(tmp_path / "b" / "out" / "f1.png"))
    assert 3 in read_mask(str(tmp_path / "b" / "out" / "f2.png"))
    rc, _, err = _run(files, ["--text-frame", "9"], capsys, tmp_path / "c")
    assert rc == 1 and "--text-frame 9: the video has frames 0..3" in err


def test_long_expression_is_truncated_with_a_warning(files, tmp_path, capsys):
    long = " ".join(["the red ball"] * 7)  # 21 word pieces
    rc, out, err = _run(files, [], capsys, tmp_path, text=(long,))
    assert rc == 0, err
    assert re.search(r"^warning: expression .* has 21 word pieces; kept the first 20 ids", err, re.M)


def _one_line_error(rc, err, *parts):
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for p in parts:
        assert p in err, err


def test_bad_text_inputs_are_one_line_errors(files, tmp_path, capsys):
    root, _ = files
    rc, _, err = _run(files, [], capsys, tmp_path, text=("",))
    _one_line_error(rc, err, "empty --text expression")
    rc, _, err = _run(files, [], capsys, tmp_path, text=("  ",))
    _one_line_error(rc, err, "empty --text expression")
    rc, _, err = _run(files, ["--vocab", str(tmp_path / "none.txt")], capsys, tmp_path)
    _one_line_error(rc, err, "BERT vocabulary not found", "none.txt")
    write_vocab(tmp_path, LIGHT_VOCAB + ["extra"])
    rc, _, err = _run(files, ["--vocab", str(tmp_path / "vocab.txt")], capsys, tmp_path)
    _one_line_error(rc, err, "vocabulary has 20 tokens but the referring model expects 19")
    write_vocab(tmp_path, LIGHT_VOCAB[:5] + LIGHT_VOCAB[6:] + LIGHT_VOCAB[5:6])
    rc, _, err = _run(files, ["--vocab", str(tmp_path / "vocab.txt")], capsys, tmp_path)
    _one_line_error(rc, err, "not the vocabulary the referring model was trained with")


def test_missing_vocabulary_and_swapped_checkpoints(files, tmp_path, capsys):
    root, _ = files
    argv = ["--video", str(root / "frames"), "--text", "the ball", "--device", "cpu", "--no-progress",
            "--out", str(tmp_path / "out")]
    rc = infer.main(argv + ["--weights", str(root / "r18.pth"), "--referring-weights", str(root / "lavt.pth")])
    _one_line_error(rc, capsys.readouterr()[1], "--vocab is required", "lavt_vocab.txt")
    rc = infer.main(argv + ["--weights", str(root / "r18.pth"), "--referring-weights", str(root / "r18.pth"),
                            "--vocab", str(root / "vocab.txt")])
    _one_line_error(rc, capsys.readouterr()[1], "r18.pth is an AFB-URR (segmentation) checkpoint", "--weights")
    rc = infer.main(argv + ["--weights", str(root / "lavt.pth"), "--referring-weights", str(root / "lavt.pth"),
                            "--vocab", str(root / "vocab.txt")])
    _one_line_error(rc, capsys.readouterr()[1], "lavt.pth is a referring (LAVT) checkpoint",
                    "--referring-weights")
    rc = infer.main(argv + ["--weights", str(root / "r18.pth")])
    _one_line_error(rc, capsys.readouterr()[1], "--referring-weights is required with --text")
    rc = infer.main(["--dataset", "davis17", "--root", str(root), "--weights", str(root / "r18.pth"),
                     "--out", str(tmp_path), "--text", "the ball"])
    _one_line_error(rc, capsys.readouterr()[1], "--text cannot be combined with --dataset")


def test_demo_text_prints_mean_j_of_its_outputs(files, tmp_path, monkeypatch, capsys):
    from afb_urr.data.synthetic import DEMO_SEED, render_video
    root, _ = files
    monkeypatch.setattr(demo, "DEMO_SIZE", (96, 160))
    monkeypatch.setattr(demo, "DEMO_FRAMES", 3)
    rc = infer.main(["--demo", "--text", "--weights", str(root / "r18.pth"), "--referring-weights",
                     str(root / "lavt.pth"), "--vocab", str(root / "vocab.txt"), "--out", str(tmp_path),
                     "--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    _, truth = render_video(DEMO_SEED, num_frames=3, size=(96, 160), num_objects=2)
    sentences = demo.demo_sentences(truth)
    assert len(sentences) == 2 and f"text {sentences[0]!r}: object 1" in out
    m = re.search(r"^mean J: (\d\.\d{3})$", out, re.M)
    assert m, out
    # the constant model puts object 1 everywhere: its first-frame J is object 1's area share
    first = (truth[0] == 1).sum() / truth[0].size / 2
    assert f"first-frame J of the text masks: {first:.3f}" in out
    scores = []
    for t in (1, 2):
        pred = read_mask(str(tmp_path / f"{t:05d}.png"))
        for obj in (1, 2):
            a, b = pred == obj, truth[t] == obj
            scores.append((a & b).sum() / max((a | b).sum(), 1))
    assert float(m.group(1)) == pytest.approx(np.mean(scores), abs=6e-4)


def test_demo_text_without_weights_says_how_to_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_REFERRING_WEIGHTS", str(tmp_path / "absent.pth"))
    rc = infer.main(["--demo", "--text", "--device", "cpu", "--no-progress"])
    _one_line_error(rc, capsys.readouterr()[1], "absent.pth",
                    "python tools/train.py --config configs/train_referring_synthetic.yaml")


def test_committed_light_weights_find_the_demo_objects(monkeypatch, capsys):
    # `python tools/infer.py --demo --text`: the committed fp16 light LAVT and its vocabulary
    # make both first masks from the grammar's sentences; a short propagation keeps them.
    path = demo.demo_weights(referring=True)
    assert os.path.isfile(path), f"{path} is missing: the light referring weights must be committed"
    assert os.path.getsize(path) + os.path.getsize(path.replace(".pth", "_vocab.txt")) <= 25 * 2 ** 20
    monkeypatch.setattr(demo, "DEMO_FRAMES", 4)
    torch.manual_seed(0)
    rc = infer.main(["--demo", "--text", "--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "text 'the rectangle': object 1" in out and "text 'the ellipse': object 2" in out
    assert float(re.search(r"^mean J: (\d\.\d{3})$", out, re.M).group(1)) > 0.6, out
