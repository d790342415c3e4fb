"""The measurement tools on tiny inputs: bench_uncertainty (Spearman of per-frame scores with
1 - J) and bench_eviction (J per eviction mode over a video whose bank must evict)."""
import json

import numpy as np
import pytest

from afb_urr.cli import bench_eviction, bench_uncertainty
from afb_urr.evaluation.metrics import spearman


@pytest.fixture(scope="module")
def checkpoint(light_model, tmp_path_factory):
    from afb_urr import save_checkpoint
    path = tmp_path_factory.mktemp("ckpt") / "r18.pth"
    save_checkpoint(str(path), light_model)
    return str(path)


def test_spearman_ranks_with_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    # ties take average ranks: x ranks 1.5 1.5 3 4, the Pearson correlation of those ranks
    x, y = [5, 5, 6, 7], [1, 2, 3, 4]
    rx, ry = np.array([1.5, 1.5, 3, 4]), np.array([1, 2, 3, 4.0])
    assert spearman(x, y) == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_bench_uncertainty_prints_every_score(checkpoint, tmp_path, capsys):
    cfg = tmp_path / "val.yaml"
    cfg.write_text("val:\n  videos: 2\n  frames: 4\n  size: [32, 48]\n  max_objects: 2\n")
    rc = bench_uncertainty.main(["--config", str(cfg), "--videos", "2", "--weights", checkpoint,
                                 "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "2 held-out videos of 4 frames at 32x48: 6 frames" in out
    for name in bench_uncertainty.SCORES:
        assert any(line.startswith(name) for line in out.splitlines()), name
    assert "target >= 0.65" in out


def test_bench_eviction_runs_both_modes_and_evicts(checkpoint, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    rc = bench_eviction.main(["--frames", "6", "--size", "32x48", "--budget", "60", "--weights",
                              checkpoint, "--no-progress", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0
    results = json.loads(out_json.read_text())["results"]
    assert set(results) == {"threshold", "minimal"}
    for mode, rows in results.items():
        assert rows[0]["frames"] == 6 and rows[0]["evicted"] > 0, mode
        assert 0.0 <= rows[0]["J"] <= 1.0 and f"{mode}: mean J over 1 video(s) of 6 frames" in out
    # minimal eviction keeps the bank full; the published loop drops more
    assert results["minimal"][0]["entries_last"] >= results["threshold"][0]["entries_last"]
