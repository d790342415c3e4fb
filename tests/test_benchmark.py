import re

import pytest
import torch

from afb_urr import AFBURR, Segmenter
from afb_urr.bench import ProceduralVideo, Row, bank_bytes, fill_bank, format_header, format_row, run_timed

from conftest import load_tool


def _table(out: str) -> list[list[float]]:
    """The numeric rows of the printed table (lines made of numbers and '-')."""
    rows = []
    for line in out.splitlines():
        cells = line.split()
        if cells and all(re.fullmatch(r"-|[0-9.]+", c) for c in cells):
            rows.append([float("nan") if c == "-" else float(c) for c in cells])
    return rows


def test_fill_mode_reports_a_full_bank_and_its_bytes(capsys):
    bench = load_tool("benchmark")
    assert bench.main(["--fill", "--frames", "3", "--size", "32x48", "--budget", "300"]) == 0
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
    assert "frame 500" not in out  # no memory comparison without a frame-500 row


def test_header_columns_are_separated():
    header = format_header()
    row = format_row(Row(100, 12.5, 80.0, 0.25, 123456, 1.5, 900.0, 950.0, 1004.0))
    assert len(header.split("  ")) >= 9
    assert [len(c) for c in re.split(r"(?<=\S)(?=  )", header)] == [len(c) for c in re.split(r"(?<=\S)(?=  )", row)]


def test_memory_check_needs_frame_500(capsys):
    bench = load_tool("benchmark")
    rows = [Row(100, 1, 1, 0, 1, 1, 1, 100.0, None), Row(200, 1, 1, 0, 1, 1, 1, 200.0, None)]
    assert bench.report_check(rows, cuda=False) and capsys.readouterr().out == ""
    rows = [Row(500, 1, 1, 0, 1, 1, 1, 100.0, None), Row(1000, 1, 1, 0, 1, 1, 1, 115.0, None)]
    assert not bench.report_check(rows, cuda=False)
    assert "+15.0%" in capsys.readouterr().out
    assert bench.main(["--frames", "20", "--check"]) == 1  # --check without frame 500: an error


def test_readout_share_and_bank_bytes():
    torch.manual_seed(0)
    seg = Segmenter(AFBURR("resnet18").eval(), budget=240, merge_threshold=2.0, eviction="minimal")
    video = ProceduralVideo(32, 48, 2)
    nxt = fill_bank(seg, video, 10 ** 9)
    assert 240 - 18 < len(seg.bank) <= 240
    assert bank_bytes(seg.bank) == len(seg.bank) * (160 * 4 + 12)
    rows = run_timed(seg, video, 2, [2], start=nxt)
    assert rows[0].bank_entries == len(seg.bank) and 0 < rows[0].readout_share < 1
