import numpy as np
import pytest

from afb_urr import Segmenter
from afb_urr.data.synthetic import render_video
from afb_urr.inference import VideoSession

N, SIZE = 10, (32, 48)


@pytest.fixture(scope="module")
def video():
    """Two objects; object 2 enters at frame 3."""
    return render_video(7, num_frames=N, size=SIZE, num_objects=2, first_frames=[0, 3])


def _only(mask, obj):
    return np.where(mask == obj, obj, 0).astype(np.uint8)


def _run(model, frames, mask):
    """Plain Segmenter over ``frames`` starting from ``mask``: label maps after the first."""
    seg = Segmenter(model, new_object="keep")
    out = [seg.step(frames[0], mask).labels]
    out += [seg.step(f, memorize=i < len(frames) - 2).labels for i, f in enumerate(frames[1:])]
    return out


def test_forward_with_an_object_entering_later_then_a_correction(light_model, video, tmp_path):
    frames, masks = video
    s = VideoSession(list(frames), light_model, work_dir=str(tmp_path))
    assert s.config.new_object == "keep"
    assert s.add_mask(0, _only(masks[0], 1)) == [1]
    assert s.add_mask(3, _only(masks[3], 2)) == [2]
    out = dict(s.propagate("forward"))
    assert sorted(out) == list(range(N))
    # run from 0 segments 1..9; run from 3 (object 2, with object 1 as it stood at 3) 4..9
    assert s.frames_computed == 9 + 6 and sorted(s.last_computed) == sorted([*range(1, N), *range(4, N)])
    for t, r in out.items():
        assert r.labels.shape == SIZE and r.labels.dtype == np.uint8
        assert r.uncertainty.shape == SIZE and 0 <= r.uncertainty.min() <= r.uncertainty.max() <= 1
        assert r.score >= 0 and set(r.objects) == set(np.unique(r.labels)) - {0}
        assert np.array_equal(s.labels(t), r.labels)
        if t < 3:
            assert 2 not in r.labels
    assert np.array_equal(out[0].labels, _only(masks[0], 1)) and out[0].score == 0
    assert np.all(out[3].labels[masks[3] == 2] == 2) and out[3].objects[2].confidence == 1.0
    # The run of object 1 alone equals a plain Segmenter over the video.
    assert np.array_equal(out[2].labels, _run(light_model, frames[:3], _only(masks[0], 1))[2])

    # A correction of object 1 at 6: only 7..9 are segmented again, the rest is kept.
    fix = _only(masks[6], 1)
    s.add_mask(6, fix)
    again = dict(s.propagate("forward"))
    assert s.last_computed == [7, 8, 9]
    for t in range(6):
        assert np.array_equal(again[t].labels, out[t].labels)
    r6 = again[6].labels
    assert np.all(r6[fix == 1] == 1)
    kept2 = (out[6].labels == 2) & (fix == 0)  # object 2 keeps its propagated pixels outside the given ones
    assert np.all(r6[kept2] == 2) and again[6].given == (1,)
    assert len(s.suggest(3)) == 3 and not set(s.suggest(3)) & {0, 3, 6}
    s.close()


def test_backward_and_both_follow_the_nearest_annotation(light_model, video):
    frames, masks = video
    m9 = _only(masks[9], 1)
    with VideoSession(list(frames), light_model) as s:
        s.add_mask(9, m9)
        out = dict(s.propagate("backward", start=6))
        assert sorted(out) == [6, 7, 8, 9] and s.last_computed == [8, 7, 6]
        ref = _run(light_model, frames[6:][::-1], m9)[::-1]
        assert all(np.array_equal(out[6 + i].labels, ref[i]) for i in range(4))

    m2, m7 = _only(masks[2], 1), _only(masks[7], 1)
    with VideoSession(list(frames), light_model) as s:
        s.add_mask(2, m2)
        s.add_mask(7, m7)
        out = dict(s.propagate("both"))
        assert sorted(out) == list(range(N))
        # 3, 4 from 2 (4 is nearer 2 ... tie 4.5 -> earlier), 5, 6 from 7; 0, 1 from 2 backward; 8, 9 from 7.
        assert sorted(s.last_computed) == [0, 1, 3, 4, 5, 6, 8, 9]
        fwd2 = _run(light_model, frames[2:5], m2)
        bwd7 = _run(light_model, frames[5:8][::-1], m7)
        assert np.array_equal(out[4].labels, fwd2[2]) and np.array_equal(out[5].labels, bwd7[2])
        # read forward, only the run forward from 2 must go farther (it restarts at 2: 3..6)
        list(s.propagate("forward"))
        assert s.last_computed == [3, 4, 5, 6]


def test_remove_object_at_a_frame_and_everywhere(light_model, video):
    frames, masks = video
    with VideoSession(list(frames), light_model, result_cache_bytes=4 * SIZE[0] * SIZE[1]) as s:
        s.add_mask(3, masks[3])
        before = {t: r.labels for t, r in s.propagate("forward")}
        assert s.results.spilled > 0  # the store holds about four maps: the rest went to disk
        s.remove_object(2, 6)
        after = {t: r.labels for t, r in s.propagate("forward")}
        assert s.last_computed == []  # nothing to segment: object 2 is absent from 6 on
        assert all(np.array_equal(after[t], before[t]) for t in range(6))
        assert all(2 not in after[t] for t in range(6, N))
        s.remove_object(2)
        assert s.objects == [1]
        again = dict(s.propagate("forward"))
        assert s.last_computed == [4, 5, 6, 7, 8, 9]  # the run from 3 changed: object 1 alone
        assert all(2 not in r.labels for r in again.values())
        with pytest.raises(ValueError, match="object 5 is not in this video"):
            s.remove_object(5, 2)


def test_bad_input_is_refused_and_leaves_the_session_intact(light_model, video):
    frames, masks = video
    with VideoSession(list(frames), light_model) as s:
        with pytest.raises(ValueError, match="no object given yet"):
            list(s.propagate())
        s.add_mask(0, _only(masks[0], 1))
        with pytest.raises(ValueError, match="does not match the frame size"):
            s.add_mask(2, np.ones((SIZE[0], SIZE[1] + 1), np.uint8))
        with pytest.raises(ValueError, match="holds no object"):
            s.add_mask(2, np.zeros(SIZE, np.uint8))
        with pytest.raises(ValueError, match="out of range"):
            s.add_mask(N, masks[0])
        with pytest.raises(ValueError, match="direction must be one of"):
            list(s.propagate("sideways"))
        with pytest.raises(ValueError, match="is not propagated"):
            s.result(4)
        assert s.annotated_frames == [0] and s.objects == [1]
        out = dict(s.propagate("forward", start=2, end=4))
        assert sorted(out) == [2, 3, 4] and s.last_computed == [1, 2, 3, 4]
