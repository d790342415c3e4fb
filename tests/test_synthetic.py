"""Procedural videos: determinism, labels, late objects, visibility, split seeds."""
import numpy as np
import pytest

from afb_urr.data import DEMO_SEED, SyntheticVideos, render_video, split_seed


def test_render_video_shapes_and_determinism():
    f1, m1 = render_video(3, num_frames=6, size=(48, 64), num_objects=3)
    f2, m2 = render_video(3, num_frames=6, size=(48, 64), num_objects=3)
    f3, _ = render_video(4, num_frames=6, size=(48, 64), num_objects=3)
    assert f1.shape == (6, 48, 64, 3) and f1.dtype == np.uint8
    assert m1.shape == (6, 48, 64) and m1.dtype == np.uint8
    assert np.array_equal(f1, f2) and np.array_equal(m1, m2)
    assert not np.array_equal(f1, f3)
    assert set(np.unique(m1).tolist()) <= {0, 1, 2, 3}


def test_render_video_does_not_touch_global_rng():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    render_video(1, num_frames=3, size=(32, 32))
    assert np.random.random() == before


def test_every_object_visible_and_moving():
    frames, masks = render_video(11, num_frames=30, size=(120, 160), num_objects=3)
    for k in (1, 2, 3):
        area = (masks == k).reshape(30, -1).sum(1)
        assert area.min() > 0, f"object {k} vanished"
    centres = [np.argwhere(masks[t] == 1).mean(0) for t in (0, 29)]
    assert np.abs(centres[0] - centres[1]).sum() > 1.0  # the object moves
    # objects are textured: not a flat colour
    assert frames[0][masks[0] == 1].std(0).max() > 5


def test_late_objects_enter_at_their_first_frame():
    _, masks = render_video(5, num_frames=10, size=(48, 64), num_objects=3, first_frames=[0, 4, 7])
    present = [(masks == k).reshape(10, -1).any(1) for k in (1, 2, 3)]
    assert present[0].all()
    assert not present[1][:4].any() and present[1][4:].all()
    assert not present[2][:7].any() and present[2][7:].all()


def test_render_video_bad_arguments():
    with pytest.raises(ValueError, match="first_frames"):
        render_video(0, num_frames=4, size=(32, 32), num_objects=2, first_frames=[0])
    with pytest.raises(ValueError, match="size"):
        render_video(0, size=(8, 8))


def test_splits_never_share_seeds():
    train = SyntheticVideos("train", num_videos=3, num_frames=4, size=(32, 48))
    val = SyntheticVideos("val", num_videos=3, num_frames=4, size=(32, 48))
    seeds_t = {train.seed(i) for i in range(3)}
    seeds_v = {val.seed(i) for i in range(3)}
    assert not seeds_t & seeds_v and DEMO_SEED not in seeds_t | seeds_v
    assert split_seed("train", 5) != split_seed("val", 5)
    v0 = train[0]
    assert v0.frames.shape == (4, 32, 48, 3) and v0.name == "train_00000"
    assert not np.array_equal(v0.frames, val[0].frames)
    assert train[0] is v0  # cached
    with pytest.raises(ValueError, match="split"):
        SyntheticVideos("test")
    with pytest.raises(IndexError):
        train[3]


def test_late_object_prob_gives_late_entries():
    vids = SyntheticVideos("train", num_videos=20, num_frames=8, size=(32, 48), min_objects=3, max_objects=3,
                           late_object_prob=1.0)
    n, first = vids.spec(0)
    assert n == 3 and first[0] == 0 and all(f >= 1 for f in first[1:])
    v = vids[0]
    assert not (v.masks[: first[1]] == 2).any() and (v.masks[first[1]] == 2).any()
