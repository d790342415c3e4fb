"""afb_urr.inference.stream: driving a Segmenter over frames, writing what it yields."""
import numpy as np
import pytest

from afb_urr.inference import segment_stream, with_last, write_outputs
from afb_urr.io import read_mask, write_mask

H, W = 32, 48


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


class _FakeSegmenter:
    """Records the calls; labels = the mask given at frame 0 shifted by the frame index."""

    def __init__(self):
        self.calls = []
        self.bank = type("B", (), {"sizes": [0]})()

    def step(self, frame, mask=None, memorize=True):
        self.calls.append((frame.shape, None if mask is None else mask.copy(), memorize))
        self.bank.sizes = [len(self.calls)]
        return type("R", (), {"labels": np.zeros(frame.shape[:2], np.uint8)})()


def test_with_last():
    assert list(with_last([])) == []
    assert list(with_last([1])) == [(1, True)]
    assert list(with_last(iter([1, 2, 3]))) == [(1, False), (2, False), (3, True)]


def test_segment_stream_masks_and_last_frame(tmp_path):
    frames = [(f"{i:05d}", f) for i, f in enumerate(_frames(4))]
    first = np.zeros((H, W), np.uint8)
    first[1:5, 1:5] = 1
    later = tmp_path / "later.png"
    lab = np.zeros((H, W), np.uint8)
    lab[10:12, 10:12] = 2
    lab[0, 0] = 255  # void -> background when read from a file
    write_mask(str(later), lab)
    seg = _FakeSegmenter()
    steps = list(segment_stream(seg, frames, masks={"00002": str(later)}, first_mask=first,
                                progress=False))
    assert [s.name for s in steps] == ["00000", "00001", "00002", "00003"]
    assert [c[2] for c in seg.calls] == [True, True, True, False]  # last frame not memorised
    assert np.array_equal(seg.calls[0][1], first)
    assert seg.calls[1][1] is None and seg.calls[3][1] is None
    assert seg.calls[2][1][0, 0] == 0 and seg.calls[2][1][10, 10] == 2

    seg = _FakeSegmenter()
    steps = list(segment_stream(seg, frames, first_mask=first, max_frames=2, progress=False))
    assert len(steps) == 2 and [c[2] for c in seg.calls] == [True, False]


def test_segment_stream_mask_errors():
    frames = [("a", _frames(1)[0]), ("b", _frames(1)[0])]
    with pytest.raises(ValueError, match="first frame"):
        list(segment_stream(_FakeSegmenter(), frames, progress=False))
    with pytest.raises(ValueError, match="mask m.png is 4x4 but frame a"):
        list(segment_stream(_FakeSegmenter(), frames, first_mask=np.zeros((4, 4), np.uint8),
                            first_mask_name="mask m.png", progress=False))


def test_write_outputs_names_pngs_after_frames(tmp_path):
    frames = [(f"f{i}", f) for i, f in enumerate(_frames(3))]
    first = np.zeros((H, W), np.uint8)
    first[2:6, 2:6] = 1
    steps = segment_stream(_FakeSegmenter(), frames, first_mask=first, progress=False)
    assert write_outputs(steps, str(tmp_path / "out")) == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f0.png", "f1.png", "f2.png"]
    assert read_mask(str(tmp_path / "out" / "f1.png")).shape == (H, W)
