import numpy as np
import pytest
import torch

from afb_urr import FeatureBank, Segmenter

H, W = 48, 72


def _video(n=30, h=H, w=W, seed=0):
    """Two textured squares moving over a noisy background; object 2 enters at frame 10."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 255, (h, w + n, 3), dtype=np.uint8)
    tex1 = rng.integers(0, 255, (12, 14, 3), dtype=np.uint8)
    frames, masks = [], []
    for t in range(n):
        f = bg[:, t:t + w].copy()
        m = np.zeros((h, w), np.uint8)
        y, x = 5 + t % 20, 4 + t
        f[y:y + 12, x:x + 14] = tex1
        m[y:y + 12, x:x + 14] = 1
        if t >= 10:
            y2, x2 = 30, 60 - (t - 10)
            f[y2:y2 + 10, x2:x2 + 10] = (250, 30, 30)
            m[y2:y2 + 10, x2:x2 + 10] = 2
        frames.append(f)
        masks.append(m)
    return frames, masks


def _snapshot(seg):
    return (seg.frame_index, list(seg.object_ids), seg.size, [k.clone() for k in seg.bank.keys],
            [s.clone() for s in seg.bank.scores])


def _same(a, b):
    return a[:3] == b[:3] and all(torch.equal(x, y) for x, y in zip(a[3], b[3])) and \
        all(torch.equal(x, y) for x, y in zip(a[4], b[4]))


def test_thirty_frames_two_objects_second_added_at_frame_10(light_model):
    frames, masks = _video()
    seg = Segmenter(light_model, budget=2000)
    for t, f in enumerate(frames):
        mask = masks[0] if t == 0 else (masks[10] if t == 10 else None)
        r = seg.step(f, mask)
        assert r.frame_index == t and r.labels.shape == (H, W) and r.labels.dtype == np.uint8
        k = 2 if t < 10 else 3
        assert r.object_ids == list(range(k)) and r.probs.shape == (k, H, W)
        torch.testing.assert_close(r.probs.sum(0), torch.ones(H, W))
        assert set(np.unique(r.labels)) <= set(r.object_ids)
        if t == 0:
            assert np.array_equal(r.labels, masks[0])
        if t == 10:
            # The new object's given mask wins inside it; the bank restarts from frame 10.
            assert np.all(r.labels[masks[10] == 2] == 2)
            assert all(int(a.min()) == 10 for a in seg.bank.inserted_at)
        assert all(s <= seg.bank.per_object_budget for s in seg.bank.sizes)
    assert seg.bank.num_objects == 3


def test_keep_mode_keeps_earlier_memory(light_model):
    frames, masks = _video(n=12)
    seg = Segmenter(light_model, budget=2000, new_object="keep")
    for t, f in enumerate(frames):
        seg.step(f, masks[0] if t == 0 else (masks[10] if t == 10 else None))
    assert int(seg.bank.inserted_at[1].min()) == 0  # object 1 remembers frame 0
    assert int(seg.bank.inserted_at[2].min()) == 10  # object 2 starts at frame 10


def test_matches_the_published_loop(light_model):
    """Segmenter == memorize / segment / absorb written out by hand (DAVIS protocol)."""
    frames, masks = _video(n=6)
    # The model as it is (no BatchNorm folding, no channels-last): the same arithmetic.
    seg = Segmenter(light_model, budget=2000, update_rate=0.1, fold_batchnorm=False, channels_last=False)
    outs = [seg.step(f, masks[0] if t == 0 else None).probs for t, f in enumerate(frames)]
    x = [torch.from_numpy(f).permute(2, 0, 1).float().div(255)[None] for f in frames]
    lab = torch.from_numpy(masks[0]).long()
    probs = torch.stack([lab == 0, lab == 1]).float()
    bank = FeatureBank(2, budget=2000, update_rate=0.1)
    with torch.no_grad():
        bank.init(*light_model.memorize(x[0], probs), 0)
        for t in range(1, 6):
            logits, counts = light_model.segment(x[t], bank, count_readout=True)
            for i, c in enumerate(counts):
                bank.add_readout(i, c)
            probs = torch.softmax(logits[0], dim=0)
            torch.testing.assert_close(outs[t], probs)
            bank.absorb(*light_model.memorize(x[t], probs), t)


def test_odd_sizes_and_tensor_frames(light_model):
    frames, masks = _video(n=3, h=37, w=53)
    seg = Segmenter(light_model, budget=2000)
    seg.step(torch.from_numpy(frames[0]).permute(2, 0, 1).float() / 255, torch.from_numpy(masks[0]))
    r = seg.step(frames[1])
    assert r.labels.shape == (37, 53) and r.probs.shape == (2, 37, 53)


def test_memory_is_bounded_by_the_budget(light_model):
    frames, masks = _video(n=25)
    # 2 objects -> 24 entries per object, 15 features per frame; no merging (threshold above 1),
    # so every frame appends and the second one already needs evictions.
    seg = Segmenter(light_model, budget=60, merge_threshold=1.1)
    for t, f in enumerate(frames[:10]):
        seg.step(f, masks[0] if t == 0 else None)
        assert all(s <= 24 for s in seg.bank.sizes)
    assert sum(seg.bank.evicted) > 0  # the budget was reached: entries were evicted to stay in it


def test_non_contiguous_label_ids(light_model):
    frames, masks = _video(n=3)
    m = masks[0].copy()
    m[m == 1] = 7
    seg = Segmenter(light_model, budget=2000)
    r = seg.step(frames[0], m)
    assert r.object_ids == [0, 7] and set(np.unique(r.labels)) == {0, 7}
    assert set(np.unique(seg.step(frames[1]).labels)) <= {0, 7}


@pytest.mark.parametrize("make_bad, message", [
    (lambda f, m: (f[:-1], None), "frame size changed"),
    (lambda f, m: (f, m[:-1]), "does not match the frame size"),
    (lambda f, m: (f, m.astype(np.float32)), "integer labels"),
    (lambda f, m: (f, np.where(m == 1, 255, m).astype(np.uint8)), "255"),
    (lambda f, m: (f, m.astype(np.int32) - 1), "negative label"),
    (lambda f, m: (f, m.astype(np.int32) * 300), "labels must be"),
    (lambda f, m: (f.astype(np.float32), None), "uint8"),
    (lambda f, m: (f[..., :2], None), "HxWx3"),
    (lambda f, m: (torch.from_numpy(f).permute(2, 0, 1).float(), None), r"\[0,1\]"),
    (lambda f, m: (f.tolist(), None), "numpy array or a torch tensor"),
    (lambda f, m: (f, m[None]), "HxW label map"),
])
def test_bad_input_is_an_error_and_keeps_state(light_model, make_bad, message):
    frames, masks = _video(n=3)
    seg = Segmenter(light_model, budget=2000)
    seg.step(frames[0], masks[0])
    before = _snapshot(seg)
    bad_frame, bad_mask = make_bad(frames[1], masks[1])
    with pytest.raises((ValueError, TypeError), match=message):
        seg.step(bad_frame, bad_mask)
    assert _same(before, _snapshot(seg))
    seg.step(frames[1])  # still usable
    assert seg.frame_index == 1


def test_first_step_needs_a_mask_with_an_object(light_model):
    frames, masks = _video(n=1)
    seg = Segmenter(light_model)
    with pytest.raises(ValueError, match="needs a mask"):
        seg.step(frames[0])
    with pytest.raises(ValueError, match="no object"):
        seg.step(frames[0], np.zeros((H, W), np.uint8))
    assert seg.frame_index == -1
    seg.step(frames[0], masks[0])
    seg.reset()
    assert seg.frame_index == -1 and seg.size is None
    with pytest.raises(ValueError, match="needs a mask"):
        seg.step(frames[0])


def test_bad_options():
    with pytest.raises(ValueError, match="new_object"):
        Segmenter(torch.nn.Linear(1, 1), new_object="merge", device="cpu")
    with pytest.raises(ValueError, match="eviction"):
        Segmenter(torch.nn.Linear(1, 1), eviction="fifo", device="cpu")


def test_from_config(light_model):
    from afb_urr import load_config
    cfg = load_config("youtube_vos")
    seg = Segmenter.from_config(light_model, cfg.inference, budget=1234)
    assert seg.bank.update_rate == 0.05 and seg.bank.budget == 1234
