"""tools/bench_urr.py: prints one row per case with both timings, the ratio and the error."""
import re

from conftest import load_tool


def test_bench_urr_prints_a_row_per_case(capsys):
    bench = load_tool("bench_urr")
    assert bench.main(["--sizes", "480p", "--modes", "fwd", "fwd+bwd", "--objects", "1", "--channels", "2",
                       "--kernel-size", "3", "--repeats", "1", "--warmup", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^1x2x240x432\s+(fwd\+bwd|fwd)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+-\s+-\s+(\S+)$", out, re.M)
    assert [r[0] for r in rows] == ["fwd", "fwd+bwd"], out
    for _, t_ref, t_fused, ratio, err in rows:
        assert float(t_ref) > 0 and float(t_fused) > 0 and float(ratio) > 0
        assert float(err) < 1e-5  # fused and reference agree (either backend)


def test_bench_urr_milliseconds_keep_three_digits():
    bench = load_tool("bench_urr")
    assert bench._ms(0.000312).strip() == "0.312"
    assert bench._ms(0.6115).strip() == "611.5"
