"""The benchmark command (afb_urr.cli.benchmark): its table's figures, the filled bank and
the peak-memory check."""
import re

import pytest

from afb_urr.cli import benchmark
from afb_urr.inference.bench import Row


def _table(out: str) -> list[list[float]]:
    """The numeric rows of the printed table (lines made of numbers and '-')."""
    rows = []
    for line in out.splitlines():
        cells = line.split()
        if cells and all(re.fullmatch(r"-|[0-9.]+", c) for c in cells):
            rows.append([float("nan") if c == "-" else float(c) for c in cells])
    return rows


def test_benchmark_prints_figures_of_its_run(capsys):
    assert benchmark.main(["--frames", "4", "--size", "32x48", "--budget", "500"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["frame", "fps", "step"]
    (row,) = _table(out)
    frame, fps, step_ms, readout_pct, bank, bank_mib, rss, peak, cuda = row
    assert frame == 4 and fps > 0 and 0 < rss <= peak and cuda != cuda  # no CUDA: '-'
    # 3 objects (background included) x 2x3 features per frame: frame 0 gives 18 entries,
    # frames 1 and 2 add at most 18 each (the last frame is not memorised).
    assert 18 <= bank <= 54
    assert "frame 500" not in out  # no memory comparison without a frame-500 row


def test_fill_mode_reports_a_full_bank_and_its_bytes(capsys):
    assert benchmark.main(["--fill", "--frames", "3", "--size", "32x48", "--budget", "300"]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert len(rows) == 1  # the table is printed once, one row per checkpoint
    frame, fps, step_ms, readout_pct, entries, bank_mib = rows[0][:6]
    assert frame == 3 and fps > 0 and step_ms == pytest.approx(1e3 / fps, rel=0.02)
    # 32x48 -> 2x3 features per object and frame; 3 objects, budget 300 -> 100 each.
    assert 300 - 3 * 6 < entries <= 300
    # resnet18: 32 key + 128 value floats, an int64 frame index and a float32 score per entry.
    assert bank_mib == pytest.approx(entries * (160 * 4 + 8 + 4) / 2**20, abs=0.051)
    assert 0 < readout_pct < 100


def test_memory_check_needs_frame_500(capsys):
    rows = [Row(100, 1, 1, 0, 1, 1, 1, 100.0, None), Row(200, 1, 1, 0, 1, 1, 1, 200.0, None)]
    assert benchmark.report_check(rows, cuda=False) and capsys.readouterr().out == ""
    rows = [Row(500, 1, 1, 0, 1, 1, 1, 100.0, None), Row(2000, 1, 1, 0, 1, 1, 1, 125.0, None)]
    assert not benchmark.report_check(rows, cuda=False)
    assert "+25.0%): NOT within 10%" in capsys.readouterr().out
    rows[1].peak_rss_mib = 105.0
    assert benchmark.report_check(rows, cuda=False)
    assert benchmark.main(["--frames", "20", "--check"]) == 1  # --check without frame 500: an error
    assert "needs --frames above 500" in capsys.readouterr().err


def test_precision_halves_the_bank_bytes(capsys):
    assert benchmark.main(["--fill", "--frames", "2", "--size", "32x48", "--budget", "300",
                           "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "| bf16 |" in out
    entries, bank_mib = _table(out)[0][4:6]
    # 160 bf16 features, an int64 frame index and a float32 score per entry.
    assert bank_mib == pytest.approx(entries * (160 * 2 + 8 + 4) / 2**20, abs=0.051)


def test_compare_precision_prints_agreement_and_j_change(capsys):
    from afb_urr.inference.demo import demo_weights
    argv = ["--compare-precision", "--weights", demo_weights(), "--videos", "2", "--frames", "3",
            "--size", "48x64", "--floor"]
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\s*(bf16|fp16|fp32-control)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([-+][\d.]+)\s+(met|NOT met)$",
                      out, re.M)
    assert [r[0] for r in rows] == ["bf16", "fp16", "fp32-control"], out
    assert float(rows[2][1]) >= 99.9  # folding BatchNorm is a rounding-level change
    assert re.search(r"^bf16: furthest video #[01]: [\d.]+% agree, dJ [-+][\d.]+; dJ of the other 1 videos", out, re.M)
    for _, agree, j_ref, j, dj, _ in rows:
        assert 90.0 <= float(agree) <= 100.0 and 0 <= float(j_ref) <= 1 and 0 <= float(j) <= 1
        assert float(dj) == pytest.approx(float(j) - float(j_ref), abs=2e-4)
    assert "targets: >= 99.5% of pixels agree, |dJ| <= 0.005" in out


def test_calibrated_random_model_has_measured_batchnorm_statistics():
    from afb_urr.training.batchnorm import batchnorms
    args = benchmark.build_parser().parse_args(["--compare-precision", "--size", "32x48", "--calibrate-batchnorm", "1"])
    seg = benchmark._factory(args)("fp32")
    plain = benchmark._factory(benchmark.build_parser().parse_args(["--compare-precision", "--size", "32x48"]))("fp32")
    bns = batchnorms(seg.model.encoder_q)
    assert bns and all(int(bn.num_batches_tracked) >= 5 for bn in bns)  # a pass per frame at least
    assert not any(bn.training for bn in batchnorms(seg.model))
    spread = [float(bn.running_var.mean()) for bn in bns]
    assert max(abs(v - 1.0) for v in spread) > 0.1  # no longer the identity statistics
    assert all(float(bn.running_var.mean()) == 1.0 for bn in batchnorms(plain.model.encoder_q))


def test_calibrate_batchnorm_is_for_the_random_model(capsys):
    from afb_urr.inference.demo import demo_weights
    assert benchmark.main(["--compare-precision", "--weights", demo_weights(), "--calibrate-batchnorm", "2"]) == 1
    assert "--calibrate-batchnorm is for the random model" in capsys.readouterr().err
