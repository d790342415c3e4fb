"""The eval command (afb_urr.cli.eval) and bench_eval end to end on tiny DAVIS-shaped and
long-video folders."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from afb_urr.cli import bench_eval
from afb_urr.cli import eval as eval_cli



@pytest.fixture(scope="module")
def eval_tool():
    return eval_cli


def _save(arr, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(np.asarray(arr, np.uint8), mode="L").convert("P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * 756)
    im.save(path)


def _square(H, W, y, x, size, label=1, out=None):
    m = np.zeros((H, W), np.uint8) if out is None else out
    m[y:y + size, x:x + size] = label
    return m


def make_davis(tmp_path):
    """Sequences 'good' (results = ground truth) and 'poor' (object 2 one px off,
    object 1 missing in frame 2). Frames 0..4; 1..3 are scored."""
    root, results = tmp_path / "DAVIS", tmp_path / "res"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("good\npoor\n")
    H, W = 30, 40
    for t in range(5):
        g = _square(H, W, 5 + t, 5, 8)
        _save(g, str(root / "Annotations" / "480p" / "good" / f"{t:05d}.png"))
        _save(g, str(results / "good" / f"{t:05d}.png"))
        p = _square(H, W, 20, 20, 6, 2, _square(H, W, 3, 3, 6))
        _save(p, str(root / "Annotations" / "480p" / "poor" / f"{t:05d}.png"))
        r = _square(H, W, 20, 21, 6, 2, _square(H, W, 3, 3, 6) if t != 2 else None)
        _save(r, str(results / "poor" / f"{t:05d}.png"))
    return str(root), str(results)


def test_eval_cli_writes_davis_csvs_tables_and_plot(tmp_path, eval_tool, capsys):
    root, results = make_davis(tmp_path)
    out = tmp_path / "out"
    assert eval_tool.main(["--results", results, "--davis", root, "--set", "val", "--out", str(out),
                           "--worst", "1", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "Global results for val" in printed and "poor_2" in printed
    g = (out / "global_results-val.csv").read_text().splitlines()
    s = (out / "per-sequence_results-val.csv").read_text().splitlines()
    assert g[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert s[0] == "Sequence,J-Mean,F-Mean"
    # good_1 is perfect; poor_1 is missing in 1 of 3 scored frames: J, F = 2/3;
    # poor_2 is one pixel off on every frame: J = 30/42, F = 1 (tolerance 1 px).
    assert s[1:] == ["good_1,1.000,1.000", "poor_1,0.667,0.667", "poor_2,0.714,1.000"]
    jm = (1 + 2 / 3 + 30 / 42) / 3
    fm = (1 + 2 / 3 + 1) / 3
    values = [float(v) for v in g[1].split(",")]
    assert values[0] == pytest.approx(round((jm + fm) / 2, 3), abs=1e-9)
    assert values[1] == pytest.approx(round(jm, 3), abs=1e-9)
    assert all(len(v.split(".")[1]) == 3 for v in g[1].split(","))
    plot = out / "jf_summary-val.png"
    with Image.open(plot) as im:
        assert im.size[0] == 1200 and im.size[1] > 200


def test_eval_cli_long_video_mode(tmp_path, eval_tool, capsys):
    root, results = tmp_path / "long", tmp_path / "res"
    for t in (0, 10, 20):  # sparse ground truth
        _save(_square(30, 40, 5, 5 + t, 8), str(root / "Annotations" / "v" / f"{t:05d}.png"))
    for t in range(21):
        _save(_square(30, 40, 5, 5 + t, 8) if t != 20 else np.zeros((30, 40)), str(results / "v" / f"{t:05d}.png"))
    assert eval_tool.main(["--results", str(results), "--davis", str(root), "--long-video", "--set", "long",
                           "--no-plot", "--quiet"]) == 0
    s = (results / "per-sequence_results-long.csv").read_text().splitlines()
    # frames 10 and 20 scored (the last annotated one included): 10 perfect, 20 empty
    assert s[1] == "v_1,0.500,0.500"
    assert not (results / "jf_summary-long.png").exists()
    assert "Per sequence" not in capsys.readouterr().out


def test_eval_cli_help_and_errors(tmp_path, eval_tool, capsys):
    text = eval_tool.build_parser().format_help()
    for word in ("--results", "--davis", "--set", "--long-video", "sparse", "first and the last"):
        assert word in text
    root, results = make_davis(tmp_path)
    os.remove(os.path.join(results, "poor", "00002.png"))
    argv = ["--results", results, "--davis", root, "--no-plot", "--quiet"]
    assert eval_tool.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "poor/00002.png" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(FileNotFoundError, match=r"poor/00002\.png"):
        eval_tool.main(argv + ["--debug"])


def test_bench_tool_agrees_with_ours_on_a_small_folder(tmp_path, capsys):
    assert bench_eval.main(["--sequences", "2", "--frames", "5", "--height", "40", "--width", "64",
                       "--max-objects", "3", "--repeat", "1", "--dir", str(tmp_path), "--skip-package"]) == 0
    out = capsys.readouterr().out
    assert "reference (package algorithm)" in out and "MISMATCH" not in out
