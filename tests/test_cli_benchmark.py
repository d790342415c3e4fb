"""The benchmark command (afb_urr.cli.benchmark): its table's figures and the peak-memory check."""
import re

from afb_urr.cli import benchmark


def test_benchmark_prints_figures_of_its_run(capsys):
    assert benchmark.main(["--frames", "4", "--size", "32x48", "--budget", "500"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[1:3]
    assert header.split()[:3] == ["frame", "fps", "RSS"]
    m = re.fullmatch(r"\s*4\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+-\s+(\d+)", row)
    assert m, out
    fps, rss, peak, bank = float(m[1]), float(m[2]), float(m[3]), int(m[4])
    assert fps > 0 and 0 < rss <= peak
    # 3 objects (background included) x 2x3 features per frame: frame 0 gives 18 entries,
    # frames 1 and 2 add at most 18 each (the last frame is not memorised).
    assert 18 <= bank <= 54
    assert re.search(r"^peak RSS at frame 4: [\d.]+ MiB vs [\d.]+ MiB at frame 4 \(\+0\.0%\): within 10%$",
                     out, re.M), out


def test_peak_memory_check_flags_growth(capsys):
    rows = [dict(frame=500, peak=100.0, cuda=None), dict(frame=2000, peak=125.0, cuda=None)]
    assert not benchmark.report_check(rows, cuda=False)
    assert "+25.0%): NOT within 10%" in capsys.readouterr().out
    rows[1]["peak"] = 105.0
    assert benchmark.report_check(rows, cuda=False)
