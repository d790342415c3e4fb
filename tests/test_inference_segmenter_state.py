import io

import numpy as np
import pytest
import torch

from afb_urr import AFBURR, Segmenter
from afb_urr.data.synthetic import render_video
from afb_urr.model.decoder import uncertainty_map


@pytest.fixture(scope="module")
def video():
    return render_video(11, num_frames=7, size=(32, 48), num_objects=2, first_frames=[0, 2])


def test_uncertainty_is_the_urr_formula_on_the_prediction(light_model, video):
    frames, masks = video
    seg = Segmenter(light_model)
    first = seg.step(frames[0], np.where(masks[0] == 1, 1, 0).astype(np.uint8))
    assert first.uncertainty.shape == (32, 48) and first.uncertainty.max() == 0  # given: certain
    r = seg.step(frames[1])
    assert r.uncertainty.dtype == np.float32 and r.uncertainty.shape == (32, 48)
    assert 0 <= r.uncertainty.min() and r.uncertainty.max() <= 1
    top = r.probs.topk(2, dim=0).values
    expect = torch.exp(1 - top[0] / (top[1] + 1e-8))
    np.testing.assert_allclose(r.uncertainty, expect.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(r.uncertainty, uncertainty_map(r.probs[None])[0, 0].numpy())


def test_state_dict_round_trip_gives_identical_outputs(light_model, video):
    frames, masks = video
    a = Segmenter(light_model, budget=300, new_object="keep", eviction="minimal")  # evicts
    for t in range(4):
        a.step(frames[t], masks[t] if t in (0, 2) else None)
    buf = io.BytesIO()
    torch.save(a.state_dict(video="clip-7"), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = Segmenter(light_model)
    b.load_state_dict(state, video="clip-7")
    assert (b.frame_index, b.object_ids, b.size, b.new_object) == (3, [0, 1, 2], (32, 48), "keep")
    assert b.bank.budget == 300 and b.bank.eviction == "minimal" and b.bank.evicted == a.bank.evicted
    for t in range(4, 7):
        ra, rb = a.step(frames[t]), b.step(frames[t])
        assert torch.equal(ra.probs, rb.probs) and np.array_equal(ra.labels, rb.labels)
        assert all(torch.equal(x, y) for x, y in zip(a.bank.scores, b.bank.scores))


def test_bad_snapshots_are_refused_and_leave_the_segmenter_unchanged(light_model, video):
    frames, masks = video
    a = Segmenter(light_model)
    a.step(frames[0], masks[0])
    state = a.state_dict(video="clip-7")
    b = Segmenter(light_model)
    b.step(frames[0], np.where(masks[0] == 1, 1, 0).astype(np.uint8))
    keep = (b.object_ids, b.frame_index, [k.clone() for k in b.bank.keys])
    with pytest.raises(ValueError, match="snapshot is of video 'clip-7', not 'other.mp4'"):
        b.load_state_dict(state, video="other.mp4")
    with pytest.raises(ValueError, match="snapshot version 99 is not supported"):
        b.load_state_dict({**state, "version": 99})
    with pytest.raises(ValueError, match="not a Segmenter snapshot"):
        b.load_state_dict({"model": {}})
    with pytest.raises(ValueError, match="missing bank.keys"):
        b.load_state_dict({**state, "bank": {k: v for k, v in state["bank"].items() if k != "keys"}})
    torch.manual_seed(1)
    with pytest.raises(ValueError, match="another model"):
        Segmenter(AFBURR("resnet18").eval()).load_state_dict(state)
    assert (b.object_ids, b.frame_index) == keep[:2]
    assert all(torch.equal(x, y) for x, y in zip(b.bank.keys, keep[2]))
