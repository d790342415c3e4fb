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


REFERRING_YAML = """referring:
  swin: {embed_dim: 8, depths: [1, 1, 1, 1], num_heads: [1, 1, 2, 2]}
  window_size: 4
  bert: {hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32,
         max_position_embeddings: 24}
  input_size: [40, 48]
  num_frames: 2
  video_size: [60, 108]
"""


def test_evaluate_referring_prints_scores_per_kind_of_description(tmp_path, capsys):
    import torch
    from afb_urr.config import load_config
    from afb_urr.data.referring import write_vocab
    from afb_urr.referring import load_tokenizer, save_referring_model
    from afb_urr.referring.loading import vocab_file_for
    from afb_urr.training.referring import build_lavt
    cfg = tmp_path / "ref.yaml"
    cfg.write_text(REFERRING_YAML)
    ckpt = str(tmp_path / "lavt.pth")
    write_vocab(vocab_file_for(ckpt))
    torch.manual_seed(0)
    rc = load_config(str(cfg)).referring
    save_referring_model(ckpt, build_lavt(rc, load_tokenizer(vocab_file_for(ckpt)).vocab_size))
    rc_, out, err = _run(["--config", str(cfg), "--evaluate", ckpt, "--val-videos", "3", "--seen-descriptions",
                          "--threads", "1"], capsys)
    assert rc_ == 0, err
    heads = re.findall(r"lavt\.pth (\w+): mIoU ([0-9.]+) .*\((\d+) samples\)$", out, flags=re.M)
    assert [h[0] for h in heads] == ["mIoU", "mIoU_wording", "mIoU_seen"]
    tables = out.split("| kind of description | samples | mIoU | right object |")[1:]
    assert len(tables) == 3
    for (name, miou, n), table in zip(heads, tables):  # the kinds' rows add up to the line above them
        rows = re.findall(r"^\| ([a-z+]+) \| (\d+) \| ([0-9.]+) \| ([0-9.]+) \|$", table, flags=re.M)
        assert rows and sum(int(r[1]) for r in rows) == int(n)
        assert sum(int(r[1]) * float(r[2]) for r in rows) / int(n) == pytest.approx(float(miou), abs=2e-3)
        assert all(0.0 <= float(r[3]) <= 1.0 for r in rows)
    seen = set(re.findall(r"^\| ([a-z+]+) \|", tables[2], flags=re.M))
    assert {"colour", "shape"} <= seen  # one-attribute descriptions are all training ones
    rc_, _, err = _run(["--config", str(cfg), "--seen-descriptions"], capsys)
    assert rc_ == 1 and "--seen-descriptions" in err and len(err.strip().splitlines()) == 1
