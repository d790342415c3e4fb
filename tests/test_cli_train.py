"""The train command (afb_urr.cli.train) --evaluate: a checkpoint's J&F on the held-out
synthetic videos."""
import re

import pytest

from afb_urr.cli import train as train_tool


@pytest.fixture
def setup(light_model, tmp_path):
    from afb_urr import save_checkpoint
    ckpt = tmp_path / "r18.pth"
    save_checkpoint(str(ckpt), light_model)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  backbone: resnet18\nval:\n  videos: 2\n  frames: 4\n  size: [48, 80]\n"
                   "  min_objects: 1\n  max_objects: 3\n")
    return str(cfg), str(ckpt)


def _run(argv, capsys):
    rc = train_tool.main(list(argv) + ["--device", "cpu", "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_evaluate_prints_the_scores_of_evaluate(setup, light_model, capsys):
    from afb_urr.config import ValConfig
    from afb_urr.training.validate import build_val_videos
    from afb_urr.training.validate import evaluate
    cfg, ckpt = setup
    rc, out, err = _run(["--config", cfg, "--evaluate", ckpt, "--val-videos", "3"], capsys)
    assert rc == 0, err
    videos = build_val_videos(ValConfig(videos=3, frames=4, size=(48, 80)))
    want = evaluate(light_model, videos, device="cpu")
    assert f"J&F {want.JF:.4f} (J {want.J:.4f}, F {want.F:.4f}, 3 videos)" in out
    rows = re.findall(r"^\| (\d) \| (\d+) \| ([0-9.]+) \| ([0-9.]+) \|$", out, flags=re.M)
    counts = sorted(int(v[1][0].max()) for v in videos)
    assert sum(int(r[1]) for r in rows) == 3
    assert sorted(int(r[0]) for r in rows) == sorted(set(counts))
    assert all(0.0 <= float(r[2]) <= 1.0 and 0.0 <= float(r[3]) <= 1.0 for r in rows)


def test_evaluate_errors_are_one_line(setup, tmp_path, capsys):
    cfg, ckpt = setup
    rc, _, err = _run(["--config", cfg, "--evaluate", str(tmp_path / "none.pth")], capsys)
    assert rc == 1 and "checkpoint not found" in err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    rc, _, err = _run(["--config", cfg, "--evaluate", str(bad)], capsys)
    assert rc == 1 and "bad.pth" in err
    rc, _, err = _run(["--config", cfg, "--evaluate", ckpt, "--val-videos", "0"], capsys)
    assert rc == 1 and "--val-videos" in err
    rc, _, err = _run(["--config", cfg, "--evaluate", ckpt, "--val-videos", "-1"], capsys)
    assert rc == 1 and "--val-videos" in err
    with pytest.raises(SystemExit):
        train_tool.main(["--config", cfg, "--evaluate", ckpt, "--init", ckpt])


def test_evaluate_passes_precision_and_compile(setup, monkeypatch, capsys):
    import afb_urr.training.validate as validate
    seen = {}

    def fake_evaluate(model, videos, inference, device, progress=False):
        seen.update(precision=inference.precision, compile=inference.compile)
        return validate.Scores(J=0.5, F=0.5, JF=0.5, per_video=[(0.5, 0.5)], num_objects=[1])

    monkeypatch.setattr(validate, "evaluate", fake_evaluate)
    cfg, ckpt = setup
    rc, out, err = _run(["--config", cfg, "--evaluate", ckpt, "--precision", "bf16", "--compile"], capsys)
    assert rc == 0, err
    assert seen == {"precision": "bf16", "compile": True}
