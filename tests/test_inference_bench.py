"""Benchmark helpers (afb_urr.inference.bench): the table's layout, a filled bank's bytes
and the read-out's share of a step."""
import re

import numpy as np
import torch

from afb_urr import AFBURR, Segmenter
from afb_urr.inference.bench import LoopedVideo, ProceduralVideo, Row, bank_bytes, fill_bank, format_header, format_row, run_timed


def test_header_columns_are_separated():
    header = format_header()
    row = format_row(Row(100, 12.5, 80.0, 0.25, 123456, 1.5, 900.0, 950.0, 1004.0))
    assert len(header.split("  ")) >= 9
    assert [len(c) for c in re.split(r"(?<=\S)(?=  )", header)] == [len(c) for c in re.split(r"(?<=\S)(?=  )", row)]


def test_readout_share_and_bank_bytes():
    torch.manual_seed(0)
    seg = Segmenter(AFBURR("resnet18").eval(), budget=240, merge_threshold=2.0, eviction="minimal")
    video = ProceduralVideo(32, 48, 2)
    nxt = fill_bank(seg, video, 10 ** 9)
    assert 240 - 18 < len(seg.bank) <= 240
    assert bank_bytes(seg.bank) == len(seg.bank) * (160 * 4 + 12)
    rows = run_timed(seg, video, 2, [2], start=nxt)
    assert rows[0].bank_entries == len(seg.bank) and 0 < rows[0].readout_share < 1


def test_looped_video_replays_its_first_frames():
    video = ProceduralVideo(32, 48, 2)
    looped = LoopedVideo(video, 3)
    for t in (0, 1, 2, 3, 7):
        frame, labels = looped.frame(t)
        want_frame, want_labels = video.frame(t % 3)
        assert np.array_equal(frame, want_frame) and np.array_equal(labels, want_labels)
    assert looped.frame(4)[0] is looped.frame(1)[0]  # rendered once
