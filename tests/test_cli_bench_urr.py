"""The bench_urr command (afb_urr.cli.bench_urr): one row per case with both timings, the ratio
and the error; a one-line error when the compiled kernel is missing."""
import re

import pytest

from afb_urr import ops
from afb_urr.cli import bench_urr


@pytest.mark.skipif(ops.backend("cpu") == "torch",
                    reason="the compiled CPU kernel is not built (the table would compare the reference with itself)")
def test_bench_urr_prints_a_row_per_case(capsys):
    assert bench_urr.main(["--sizes", "480p", "--modes", "fwd", "fwd+bwd", "--objects", "1", "--channels", "2",
                           "--kernel-size", "3", "--repeats", "1", "--warmup", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^1x2x240x432\s+(fwd\+bwd|fwd)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+-\s+-\s+(\S+)$", out, re.M)
    assert [r[0] for r in rows] == ["fwd", "fwd+bwd"], out
    for _, t_ref, t_fused, ratio, err in rows:
        assert float(t_ref) > 0 and float(t_fused) > 0 and float(ratio) > 0
        assert float(err) < 1e-5  # fused and reference agree


def test_bench_urr_without_the_kernel_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(ops, "backend", lambda device: "torch")
    assert bench_urr.main(["--sizes", "480p", "--repeats", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "compiled kernel" in err and len(err.strip().splitlines()) == 1


def test_bench_urr_milliseconds_keep_three_digits():
    assert bench_urr._ms(0.000312).strip() == "0.312"
    assert bench_urr._ms(0.6115).strip() == "611.5"
