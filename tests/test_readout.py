import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from afb_urr import FeatureBank
from afb_urr.readout import read_bank, read_object


def _plain_read(keys, values, qk):
    """Unchunked formulation: P = softmax_M(K^T q / sqrt(Ck)), read = V P."""
    p = torch.softmax(keys.t() @ qk / math.sqrt(keys.shape[0]), dim=1)  # B x M x N
    return values @ p, p


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 10**9])
def test_chunked_read_equals_unchunked(chunk_bytes):
    g = torch.Generator().manual_seed(0)
    keys, values = torch.randn(16, 300, generator=g), torch.randn(24, 300, generator=g)
    qk = torch.randn(2, 16, 77, generator=g)
    read, counts = read_object(keys, values, qk, chunk_bytes=chunk_bytes, threshold=1e-3)
    ref, p = _plain_read(keys, values, qk)
    torch.testing.assert_close(read, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(counts, (p > 1e-3).sum(dim=(0, 2)))


def test_chunked_read_gradients_match():
    g = torch.Generator().manual_seed(1)
    keys = torch.randn(8, 50, generator=g, requires_grad=True)
    values = torch.randn(12, 50, generator=g, requires_grad=True)
    qk = torch.randn(1, 8, 33, generator=g, requires_grad=True)
    read, _ = read_object(keys, values, qk, chunk_bytes=2000)
    grads = torch.autograd.grad(read.square().sum(), (keys, values, qk))
    ref, _ = _plain_read(keys, values, qk)
    ref_grads = torch.autograd.grad(ref.square().sum(), (keys, values, qk))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_readout_counting_by_hand():
    # Entry 0 matches both queries strongly, entry 1 neither, entry 2 only the second query.
    keys = torch.tensor([[20.0, 0.0], [-20.0, -20.0], [0.0, 20.0]]).T  # Ck=2, M=3
    values = torch.eye(3)
    qk = torch.tensor([[[1.0, 1.0], [0.0, 0.9]]])  # B=1, Ck=2, N=2: q0=(1,0), q1=(1,0.9)
    bank = FeatureBank(1, budget=100)
    bank.init(keys[None], values[None], 0)
    _, counts = read_bank(bank, qk, torch.zeros(1, 1, 2), count=True)
    p = torch.softmax(keys.t() @ qk[0] / math.sqrt(2), dim=0)
    assert (p > 1e-3).sum(1).tolist() == [2, 0, 1]
    assert [c.tolist() for c in counts] == [[2, 0, 1]]
    assert bank.scores[0].tolist() == [0.0, 0.0, 0.0]  # the read never writes the bank
    bank.add_readout(0, counts[0])
    torch.testing.assert_close(bank.scores[0], torch.log(torch.tensor([3.0, 1.0, 2.0])))
    _, none = read_bank(bank, qk, torch.zeros(1, 1, 2), count=False)
    assert none is None
    torch.testing.assert_close(bank.scores[0], torch.log(torch.tensor([3.0, 1.0, 2.0])))


def test_read_bank_concatenates_query_value_per_object():
    g = torch.Generator().manual_seed(2)
    bank = FeatureBank(3, budget=1000)
    bank.init(torch.randn(3, 8, 20, generator=g), torch.randn(3, 6, 20, generator=g), 0)
    bank.absorb(torch.randn(3, 8, 20, generator=g), torch.randn(3, 6, 20, generator=g), 1)
    qk, qv = torch.randn(2, 8, 10, generator=g), torch.randn(2, 6, 10, generator=g)
    out, _ = read_bank(bank, qk, qv)
    assert out.shape == (2, 3, 12, 10)
    for i in range(3):
        ref, _ = _plain_read(bank.keys[i], bank.values[i], qk)
        torch.testing.assert_close(out[:, i, :6], ref, rtol=1e-5, atol=1e-5)
        assert torch.equal(out[:, i, 6:], qv)


class _LargestAllocation(TorchDispatchMode):
    """Records the largest tensor any op creates."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


def test_large_bank_at_480p_stays_within_chunk_bytes():
    # 10,000 entries for one object, 480x854 query (30 x 54 positions at 1/16), published dims.
    g = torch.Generator().manual_seed(3)
    keys, values = torch.randn(128, 10000, generator=g), torch.randn(512, 10000, generator=g)
    qk = torch.randn(1, 128, 30 * 54, generator=g)
    chunk = 8 * 2**20  # the full attention would be 10000 x 1620 x 4 B = 65 MB
    with torch.no_grad(), _LargestAllocation() as probe:
        read, counts = read_object(keys, values, qk, chunk_bytes=chunk, threshold=1e-3)
    assert probe.largest <= chunk, probe.largest
    assert read.shape == (1, 512, 1620) and counts.shape == (10000,)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_bank_read_takes_its_softmax_in_fp32(dtype):
    g = torch.Generator().manual_seed(4)
    keys, values = torch.randn(16, 300, generator=g).to(dtype), torch.randn(24, 300, generator=g).to(dtype)
    qk = torch.randn(1, 16, 50, generator=g).to(dtype)
    seen = []

    class Exps(TorchDispatchMode):  # the dtype the softmax's exp runs in
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.startswith("exp"):
                seen.append(args[0].dtype)
            return func(*args, **(kwargs or {}))

    with Exps():
        read, counts = read_object(keys, values, qk, chunk_bytes=4096, threshold=1e-3)
    assert read.dtype == dtype and seen and set(seen) == {torch.float32}
    ref, p = _plain_read(keys.float(), values.float(), qk.float())
    torch.testing.assert_close(read.float(), ref, rtol=0, atol=0.05)
    agree = (counts == (p > 1e-3).sum(dim=(0, 2))).float().mean()
    assert agree > 0.95


def test_fp16_bank_with_large_logits_stays_finite():
    """fp16 overflows at 65504: the logits of an fp16 bank are taken in fp32, also under autocast."""
    g = torch.Generator().manual_seed(5)
    keys, values = 200 * torch.randn(16, 200, generator=g), torch.randn(24, 200, generator=g)
    qk = 200 * torch.randn(1, 16, 30, generator=g)
    assert float((keys.t() @ qk[0]).abs().max()) / 4 > 65504
    with torch.autocast("cpu", dtype=torch.float16):
        read, _ = read_object(keys.half(), values.half(), qk.half())
    assert torch.isfinite(read).all()
    ref, _ = _plain_read(keys.half().float(), values.half().float(), qk.half().float())
    torch.testing.assert_close(read.float(), ref, rtol=0, atol=0.05)
