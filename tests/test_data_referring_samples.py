"""Referring samples: per object and balanced over kinds of description, deterministic, splits apart."""
import collections

import numpy as np
import pytest

from afb_urr.data.clips import NoObjectError
from afb_urr.data.referring import replay_objects
from afb_urr.data.referring_samples import ReferringSamples

SIZE = (96, 160)


def test_samples_deterministic_and_split_apart():
    train = ReferringSamples("train", 4, num_frames=6, size=SIZE, max_objects=3, seed=1)
    val = ReferringSamples("val", 4, style="heldout", frames="first", num_frames=6, size=SIZE, seed=1)
    assert not {train.videos.seed(i) for i in range(4)} & {val.videos.seed(i) for i in range(4)}
    a, b = train[2], ReferringSamples("train", 4, num_frames=6, size=SIZE, max_objects=3, seed=1)[2]
    assert a["expression"] == b["expression"] and a["frame"] == b["frame"] and np.array_equal(a["mask"], b["mask"])
    video = train.videos[2]
    assert np.array_equal(a["mask"], video.masks[a["frame"]] == a["label"])
    assert a["expression"] in train.expressions(2, a["frame"])[a["label"]]
    for i in range(4):
        try:
            s = val[i]
        except NoObjectError:
            continue
        assert s["frame"] == 0 and s["expression"] in val.expressions(i, 0)[s["label"]]
    with pytest.raises(ValueError, match="template style"):
        ReferringSamples("train", 1, style="poetry")
    with pytest.raises(ValueError, match="referring sampling"):
        ReferringSamples("train", 1, sampling="rare")
    with pytest.raises(ValueError, match="contrast share"):
        ReferringSamples("train", 1, contrast_share=1.5)


def test_kind_sampling_balances_the_kinds_of_description():
    common = dict(num_frames=4, size=SIZE, min_objects=1, max_objects=3, seed=3, cache_size=40)
    by_object = ReferringSamples("train", 40, **common)
    by_kind = ReferringSamples("train", 40, sampling="kind", **common)
    pool = by_kind.pool()
    assert len(pool) >= 4 and sum(map(len, pool.values())) > 40
    for kind, entries in pool.items():  # every entry is an expression of its object in its frame
        for index, t, label, text in entries[:5]:
            assert (text, kind) in by_kind.described(index, t)[label]
    draws = {name: collections.Counter() for name in ("object", "kind")}
    for epoch in range(6):
        for data, name in ((by_object, "object"), (by_kind, "kind")):
            data.set_epoch(epoch)
            for i in range(len(data)):
                s = data[i]
                assert s["video"] == data.videos[s["index"]].name
                pairs = dict(data.described(s["index"], s["frame"])[s["label"]])
                draws[name][pairs[s["expression"]]] += 1
    rarest = min(pool, key=lambda k: len(pool[k]))
    total = {name: sum(c.values()) for name, c in draws.items()}
    assert draws["kind"][rarest] / total["kind"] > 2 * draws["object"][rarest] / total["object"]
    assert max(draws["kind"].values()) < 3 * min(draws["kind"][k] for k in pool)  # about uniform over kinds
    a, b = by_kind[5], ReferringSamples("train", 40, sampling="kind", **common)
    b.set_epoch(5)
    assert a["expression"] == b[5]["expression"] and np.array_equal(a["mask"], b[5]["mask"])


def test_samples_read_the_objects_their_rendering_drew():
    """The grammar's objects come from the rendering (no second pass): the same kinds, hues
    and trajectories as replaying the video's random stream."""
    data = ReferringSamples("train", 4, num_frames=3, size=(60, 108), cache_size=4)
    for index in range(4):
        n = data.videos.spec(index)[0]
        again = replay_objects(data.videos.seed(index), 3, (60, 108), n)
        drawn = data.replay(index)
        assert [r.shape for r in drawn] == [r.shape for r in again]
        assert [r.hue for r in drawn] == [r.hue for r in again]
        for a, b in zip(drawn, again):
            np.testing.assert_array_equal(a.obj.centre, b.obj.centre)
            np.testing.assert_array_equal(a.obj.texture, b.obj.texture)


def test_contrast_share_draws_samples_whose_filter_matters():
    common = dict(num_frames=4, size=SIZE, min_objects=2, max_objects=3, seed=2, cache_size=40)
    plain, mixed = ReferringSamples("train", 40, **common), ReferringSamples("train", 40, contrast_share=0.5, **common)
    pool = set(mixed.contrast_pool())
    assert pool and all((text, kind) in mixed.described(i, t)[label]
                        for i, t, label, text in pool for kind in [dict(mixed.described(i, t)[label])[text]])
    hits = {"plain": 0, "mixed": 0}
    for epoch in range(4):
        for data, name in ((plain, "plain"), (mixed, "mixed")):
            data.set_epoch(epoch)
            for i in range(len(data)):
                s = data[i]
                hits[name] += (s["index"], s["frame"], s["label"], s["expression"]) in pool
    assert hits["mixed"] >= 0.4 * 160 > 4 * hits["plain"]
    again = ReferringSamples("train", 40, contrast_share=0.5, **common)
    again.set_epoch(3)
    assert [mixed[i]["expression"] for i in range(8)] == [again[i]["expression"] for i in range(8)]
