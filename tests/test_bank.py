import math

import pytest
import torch
import torch.nn.functional as F

from afb_urr import FeatureBank


def _bank(keys, values, budget=1000, t=0, **kw):
    """A one-object bank holding the given key/value columns."""
    bank = FeatureBank(1, budget=budget, **kw)
    bank.init(torch.tensor(keys, dtype=torch.float32).T[None], torch.tensor(values, dtype=torch.float32).T[None], t)
    return bank


def test_per_object_budget():
    assert FeatureBank.object_budget(300000, 3) == 100000
    assert FeatureBank.object_budget(300000, 2) == 120000  # x0.8 when K == 2 (published)
    assert FeatureBank.object_budget(100, 1) == 100


def test_two_new_features_merge_into_one_entry():
    bank = _bank([[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [1.0, 0.0]], update_rate=0.1)
    new_k = torch.tensor([[1.0, 0.1], [1.0, -0.1]]).T[None]  # both ~0.995 similar to entry 0
    new_v = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).T[None]
    appended = bank.absorb(new_k, new_v, 1)
    assert appended == [0] and bank.sizes == [2]
    # mean of normalised new keys = (1/sqrt(1.01), 0); key = |2| * (0.9 * (1,0) + 0.1 * mean)
    expected_key = 2 * (0.9 + 0.1 / math.sqrt(1.01))
    torch.testing.assert_close(bank.keys[0][:, 0], torch.tensor([expected_key, 0.0]))
    # values merged with the key assignment: |3| * (0.9 * (0,1) + 0.1 * (0.5, 0.5))
    torch.testing.assert_close(bank.values[0][:, 0], torch.tensor([0.15, 2.85]))
    # untouched entry unchanged
    torch.testing.assert_close(bank.keys[0][:, 1], torch.tensor([0.0, 1.0]))


def test_feature_below_threshold_is_appended():
    bank = _bank([[2.0, 0.0]], [[1.0, 1.0]], t=0)
    bank.scores[0] += 3.0
    appended = bank.absorb(torch.tensor([[1.0, 1.0]]).T[None], torch.tensor([[5.0, 6.0]]).T[None], 4)
    assert appended == [1] and bank.sizes == [2]
    torch.testing.assert_close(bank.keys[0][:, 1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(bank.values[0][:, 1], torch.tensor([5.0, 6.0]))
    assert bank.inserted_at[0].tolist() == [0, 4]
    assert bank.scores[0].tolist() == [3.0, 0.0]
    torch.testing.assert_close(bank.keys[0][:, 0], torch.tensor([2.0, 0.0]))  # no merge happened


def _four_entry_bank(eviction):
    keys = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]
    bank = _bank(keys, keys, budget=4, eviction=eviction)
    bank.scores[0] = torch.tensor([5.0, 1.0, 3.0, 0.5])
    return bank


def test_eviction_threshold_loop_drops_by_lfu():
    bank = _four_entry_bank("threshold")
    new = torch.tensor([[0.0, -1.0, 0.0]]).T[None]  # orthogonal/opposite to all: appended
    bank.absorb(new, new, 1)
    # LFU = score / 1 -> threshold int(0.5) + 1 = 1 drops entries with LFU <= 1 (1.0 and 0.5)
    assert bank.sizes == [3]
    assert bank.scores[0].tolist() == [5.0, 3.0, 0.0]
    assert bank.evicted == [2]


def test_eviction_minimal_drops_only_what_is_needed():
    bank = _four_entry_bank("minimal")
    new = torch.tensor([[0.0, -1.0, 0.0]]).T[None]
    bank.absorb(new, new, 1)
    assert bank.sizes == [4]
    assert bank.scores[0].tolist() == [5.0, 1.0, 3.0, 0.0]


def test_lfu_divides_by_age():
    bank = _four_entry_bank("minimal")
    bank.inserted_at[0] = torch.tensor([0, 0, 8, 0])
    # at t = 10: LFU = [0.5, 0.1, 1.5, 0.05]
    torch.testing.assert_close(bank.lfu(0, 10), torch.tensor([0.5, 0.1, 1.5, 0.05]))
    assert bank.evict(0, 2, 10) == 2
    assert bank.scores[0].tolist() == [5.0, 3.0]


def test_threshold_loop_repeats_until_room():
    keys = [[float(i == j) for j in range(6)] for i in range(6)]
    bank = _bank(keys, keys, budget=6)
    bank.scores[0] = torch.tensor([0.5, 1.5, 2.5, 3.5, 10.0, 20.0])
    # needs 4 free: round 1 drops LFU <= 1 (one entry), round 2 <= 2 (one), round 3 <= 3 (one),
    # round 4 <= 4 (one) -> 2 left
    assert bank.evict(0, 4, 1) == 4
    assert bank.scores[0].tolist() == [10.0, 20.0]


def _loop_absorb(keys, values, new_k, new_v, r, thr):
    """Plain per-feature reference of absorb's merge/append split for one object."""
    nk = F.normalize(keys, dim=0)
    groups, append = {}, []
    for j in range(new_k.shape[1]):
        q = F.normalize(new_k[:, j], dim=0)
        sims = nk.T @ q
        best = int(torch.argmax(sims))
        if sims[best] > thr:
            groups.setdefault(best, []).append(j)
        else:
            append.append(j)
    keys, values = keys.clone(), values.clone()
    for e, js in groups.items():
        mk = torch.stack([F.normalize(new_k[:, j], dim=0) for j in js]).mean(0)
        mv = torch.stack([F.normalize(new_v[:, j], dim=0) for j in js]).mean(0)
        ok, ov = keys[:, e].clone(), values[:, e].clone()
        keys[:, e] = ok.norm() * ((1 - r) * ok / ok.norm() + r * mk)
        values[:, e] = ov.norm() * ((1 - r) * ov / ov.norm() + r * mv)
    keys = torch.cat([keys, new_k[:, append]], 1)
    values = torch.cat([values, new_v[:, append]], 1)
    return keys, values


@pytest.mark.parametrize("chunk_bytes", [256 * 2**20, 64])
def test_absorb_matches_per_feature_loop(chunk_bytes):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 40, generator=g)
    keys = base + 0.01 * torch.randn(8, 40, generator=g)
    values = torch.randn(16, 40, generator=g)
    # half of the new features are near-copies of bank entries (merge), half random (append)
    pick = torch.randint(0, 40, (30,), generator=g)
    new_k = torch.cat([base[:, pick] + 0.05 * torch.randn(8, 30, generator=g),
                       torch.randn(8, 30, generator=g)], 1)
    new_v = torch.randn(16, 60, generator=g)
    bank = FeatureBank(1, budget=10000, update_rate=0.1, merge_threshold=0.95, chunk_bytes=chunk_bytes)
    bank.init(keys[None], values[None], 0)
    bank.absorb(new_k[None], new_v[None], 1)
    ref_k, ref_v = _loop_absorb(keys, values, new_k, new_v, 0.1, 0.95)
    assert 40 < bank.sizes[0] < 100  # some merged, some appended
    torch.testing.assert_close(bank.keys[0], ref_k, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bank.values[0], ref_v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eviction", ["threshold", "minimal"])
def test_budget_never_exceeded(eviction):
    g = torch.Generator().manual_seed(1)
    k = 3
    bank = FeatureBank(k, budget=150, eviction=eviction)
    bank.init(torch.randn(k, 8, 20, generator=g), torch.randn(k, 4, 20, generator=g), 0)
    for t in range(1, 40):
        bank.add_readout(0, torch.randint(0, 5, (bank.sizes[0],), generator=g))
        bank.absorb(torch.randn(k, 8, 20, generator=g), torch.randn(k, 4, 20, generator=g), t)
        assert all(s <= bank.per_object_budget for s in bank.sizes), bank.sizes
        assert all(len(a) == s == len(sc) == v.shape[1]
                   for a, s, sc, v in zip(bank.inserted_at, bank.sizes, bank.scores, bank.values))
    assert sum(bank.evicted) > 0


def test_scores_are_clamped():
    bank = _bank([[1.0, 0.0]], [[1.0, 0.0]], score_max=2.0)
    bank.add_readout(0, torch.tensor([100]))
    bank.absorb(torch.tensor([[0.0, 1.0]]).T[None], torch.tensor([[0.0, 1.0]]).T[None], 1)
    assert bank.scores[0].tolist() == [2.0, 0.0]


def test_too_small_budget_is_a_clear_error_and_keeps_state():
    bank = FeatureBank(2, budget=20)
    bank.init(torch.randn(2, 4, 5), torch.randn(2, 4, 5), 0)
    with pytest.raises(ValueError, match="budget too small"):
        bank.absorb(torch.randn(2, 4, 50), torch.randn(2, 4, 50), 1)
    assert bank.sizes == [5, 5]


def test_add_objects_keeps_old_memory_within_new_budget():
    bank = FeatureBank(2, budget=100, eviction="minimal")
    bank.init(torch.randn(2, 4, 40), torch.randn(2, 4, 40), 0)
    assert bank.per_object_budget == 40 and bank.sizes == [40, 40]
    bank.add_objects(torch.randn(1, 4, 10), torch.randn(1, 4, 10), 3)
    assert bank.num_objects == 3 and bank.per_object_budget == 33
    assert bank.sizes == [33, 33, 10]
    assert bank.inserted_at[2].tolist() == [3] * 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="eviction"):
        FeatureBank(2, eviction="lru")
    with pytest.raises(ValueError, match="budget"):
        FeatureBank(2, budget=0)
    bank = FeatureBank(2, budget=100)
    bank.init(torch.randn(2, 4, 5), torch.randn(2, 4, 5), 0)
    with pytest.raises(ValueError, match="2 objects"):
        bank.absorb(torch.randn(3, 4, 5), torch.randn(3, 4, 5), 1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_bank_keeps_its_dtype_and_merges_in_fp32(dtype):
    keys = [[2.0, 0.0], [0.0, 1.0]]
    ref = _bank(keys, keys, update_rate=0.1)
    half = FeatureBank(1, budget=1000, update_rate=0.1)
    half.init(ref.keys[0][None].to(dtype), ref.values[0][None].to(dtype), 0)
    # cosine 0.953 with entry 0 (just above the 0.95 threshold): merges in both
    new = torch.tensor([[1.0, 0.3175]]).T[None]
    assert ref.absorb(new, new, 1) == [0] and half.absorb(new.to(dtype), new.to(dtype), 1) == [0]
    assert half.keys[0].dtype == dtype and half.values[0].dtype == dtype
    torch.testing.assert_close(half.keys[0].float(), ref.keys[0], rtol=1e-2, atol=0)
    far = torch.tensor([[0.0, -1.0]]).T[None]  # appended
    assert half.absorb(far.to(dtype), far.to(dtype), 2) == [1] and half.keys[0].dtype == dtype
