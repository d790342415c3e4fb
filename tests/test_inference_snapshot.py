"""afb_urr.inference.snapshot (run snapshots: atomic writes, checks, the step wrapper) and
stream.FramesFrom / segment_stream(start=...) that a resumed run reads its frames with."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.inference import Segmenter, segment_stream
from afb_urr.inference import snapshot as snap
from afb_urr.inference.stream import FramesFrom
from afb_urr.io import FolderSource

H, W = 32, 48


def _video(n):
    from afb_urr.data.synthetic import render_video
    return render_video(5, num_frames=n, size=(H, W), num_objects=2)


@pytest.fixture
def segmenter(light_model):
    return Segmenter(light_model, device="cpu", budget=60, merge_threshold=1.5)


def _identity(video="clip|frames=6|size=32x48"):
    return snap.RunIdentity(video, "abc", None)


def test_atomic_write_keeps_previous_snapshot_on_a_failed_write(segmenter, tmp_path, monkeypatch):
    frames, masks = _video(3)
    segmenter.step(frames[0], masks[0])
    path = str(tmp_path / snap.SNAPSHOT_NAME)
    snap.save_snapshot(path, segmenter, _identity(), 1, 1, "f0")
    before = open(path, "rb").read()
    segmenter.step(frames[1])

    def broken_save(obj, f, *a, **k):  # dies halfway through the bytes
        f.write(b"\x80\x02partial")
        raise OSError("disk full")
    monkeypatch.setattr(snap.torch, "save", broken_save)
    with pytest.raises(OSError):
        snap.save_snapshot(path, segmenter, _identity(), 2, 2, "f1")
    monkeypatch.undo()
    assert open(path, "rb").read() == before and os.path.isfile(path + ".tmp")
    (tmp_path / "f0.png").write_bytes(b"")
    fresh = Segmenter(segmenter.model, device="cpu", budget=60, merge_threshold=1.5)
    resumed = snap.load_snapshot(path, fresh, _identity(), str(tmp_path))
    assert (resumed.position, resumed.written, resumed.last_name) == (1, 1, "f0")
    assert fresh.frame_index == 0


def test_load_checks_before_changing_anything(segmenter, tmp_path):
    frames, masks = _video(2)
    segmenter.step(frames[0], masks[0])
    path = str(tmp_path / snap.SNAPSHOT_NAME)
    snap.save_snapshot(path, segmenter, _identity(), 1, 1, "f0")
    fresh = Segmenter(segmenter.model, device="cpu")
    with pytest.raises(ValueError, match="another video"):
        snap.load_snapshot(path, fresh, _identity("other|frames=6|size=32x48"))
    with pytest.raises(ValueError, match="f0.png.*missing"):
        snap.load_snapshot(path, fresh, _identity(), str(tmp_path))
    with pytest.raises(ValueError, match="nothing to resume"):
        snap.load_snapshot(str(tmp_path / "none.pt"), fresh, _identity())
    assert fresh.frame_index == -1


def test_with_snapshots_positions_and_cleanup(segmenter, tmp_path):
    frames, masks = _video(7)
    names = [f"f{i}" for i in range(7)]
    path = str(tmp_path / snap.SNAPSHOT_NAME)
    steps = segment_stream(segmenter, list(zip(names, frames)), masks={"f0": masks[0]}, progress=False)
    seen = []
    for step in snap.with_snapshots(steps, segmenter, path, _identity(), every=3):
        state = torch.load(path, weights_only=True)
        seen.append((step.index, state["position"], state["segmenter"]["frame_index"]))
    # position 0 before anything; after frame 2 (position 3) and frame 5 (position 6)
    assert seen == [(0, 0, -1), (1, 0, -1), (2, 0, -1), (3, 3, 2), (4, 3, 2), (5, 3, 2), (6, 6, 5)]
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match=">= 1"):
        next(snap.with_snapshots(iter([]), segmenter, path, _identity(), every=0))


def test_resumed_stream_matches_the_uninterrupted_one(light_model, tmp_path):
    frames, masks = _video(6)
    names = [f"f{i}" for i in range(6)]
    make = lambda: Segmenter(light_model, device="cpu", budget=60, merge_threshold=1.5)  # noqa: E731
    full = [s.result.labels for s in segment_stream(make(), list(zip(names, frames)),
                                                    masks={"f0": masks[0]}, progress=False)]
    a = make()
    for s in segment_stream(a, list(zip(names, frames)), masks={"f0": masks[0]}, progress=False):
        if s.index == 2:
            state = a.state_dict()
            break
    b = make()
    b.load_state_dict(state)
    rest = list(segment_stream(b, list(zip(names, frames)), masks={"f0": masks[0]}, progress=False,
                               start=3))
    assert [s.index for s in rest] == [3, 4, 5] and [s.name for s in rest] == names[3:]
    for s in rest:
        assert np.array_equal(s.result.labels, full[s.index])


def test_frames_from_skips_without_decoding_a_folder(tmp_path):
    for i in range(4):
        Image.fromarray(np.full((H, W, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
    source = FolderSource(str(tmp_path))
    part = FramesFrom(source, 2)
    os.remove(tmp_path / "0.png")  # a skipped frame is not read
    assert len(part) == 2 and [(n, int(f[0, 0, 0])) for n, f in part] == [("2", 2), ("3", 3)]
    assert [n for n, _ in FramesFrom([("a", 1), ("b", 2), ("c", 3)], 1)] == ["b", "c"]
