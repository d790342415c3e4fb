import itertools
import os

import cv2
import numpy as np
import pytest

from afb_urr.io.errors import InputError
from afb_urr.io.frame_cache import FrameCache
from afb_urr.io.frames import VideoFileSource
from afb_urr.inference.plan import governed_spans, governor
from afb_urr.inference.results import ResultStore
from afb_urr.inference.uncertainty import frame_score, object_stats, suggest_frames


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
def test_spans_agree_with_the_governor_frame_by_frame(direction):
    n = 9
    for k in range(1, 4):
        for anchors in itertools.combinations(range(n), k):
            anchors = list(anchors)
            by_span = {t: a for a, lo, hi in governed_spans(anchors, n, direction)
                       for t in range(lo, hi + 1)}
            for t in range(n):
                g = governor(anchors, t, direction)
                assert by_span.get(t, t if t in anchors else None) == g, (anchors, t)
    assert governor([2, 5], 3, "both") == 2 and governor([2, 6], 4, "both") == 2  # ties: earlier
    assert governor([2, 6], 5, "both") == 6 and governor([4], 1, "forward") is None


def test_result_store_spills_to_disk_and_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    maps = {("run", 3, "forward", i): rng.integers(0, 5, (10, 12), dtype=np.uint8) for i in range(8)}
    maps["rgb"] = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    store = ResultStore(str(tmp_path / "spill"), max_bytes=3 * 120)
    for key, arr in maps.items():
        store.put(key, arr)
    assert store.memory_bytes <= 3 * 120 and store.spilled >= 5 and len(store) == 9
    assert len(os.listdir(tmp_path / "spill")) == store.spilled
    for key, arr in maps.items():
        assert np.array_equal(store.get(key), arr)
    store.discard(("run", 3, "forward", 0))
    assert ("run", 3, "forward", 0) not in store
    with pytest.raises(KeyError):
        store.get(("run", 3, "forward", 0))
    with pytest.raises(ValueError, match="uint8"):
        store.put("x", np.zeros((4, 4), np.float32))


def test_scores_confidence_and_suggestions():
    labels = np.array([[0, 1, 1], [2, 2, 0]], np.uint8)
    unc = np.array([[0.5, 0.0, 0.25], [1.0, 0.0, 0.25]], np.float32)
    assert frame_score(unc, labels) == pytest.approx(2.0 / 4)
    assert frame_score(unc, np.zeros_like(labels)) == pytest.approx(2.0)  # no foreground: area 1
    conf = np.array([[0.1, 0.9, 0.7], [1.0, 0.5, 0.2]], np.float32)
    stats = object_stats(labels, conf)
    assert set(stats) == {1, 2} and stats[1].area == 2 and stats[1].confidence == pytest.approx(0.8)
    scores = {0: 0.1, 1: 0.9, 2: 0.8, 3: 0.85, 4: 0.2, 5: 0.7}
    assert suggest_frames(scores, 3) == [1, 3, 2]
    assert suggest_frames(scores, 3, exclude=[1]) == [3, 2, 5]
    assert suggest_frames(scores, 3, min_gap=1) == [1, 3, 5]


def _write_video(path, n=12, size=(32, 48)):
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    rng = np.random.default_rng(1)
    for _ in range(n):
        out.write(rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    out.release()


def test_frame_cache_random_access_within_its_budget(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path)
    frames = [f for _, f in VideoFileSource(str(path))]
    cache = FrameCache(str(path), max_bytes=3 * frames[0].nbytes)
    assert len(cache) == 12 and cache.size == (32, 48)
    for t in [11, 10, 9, 3, 0, 7, 6, 5, 11, 2]:  # backward, jumps, forward
        assert np.array_equal(cache[t], frames[t]), t
        assert cache._bytes <= cache.max_bytes
    with pytest.raises(IndexError, match="out of range 0..11"):
        cache[12]
    listed = FrameCache(frames[:4], max_bytes=0)
    assert len(listed) == 4 and listed[3] is frames[3] and listed.names[0] == "00000"
    with pytest.raises(InputError, match="uint8 RGB"):
        FrameCache([np.zeros((4, 4), np.uint8)])
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:3]):
        cv2.imwrite(str(folder / f"f{i}.png"), f[..., ::-1])
    assert np.array_equal(FrameCache(str(folder))[2], frames[2])
