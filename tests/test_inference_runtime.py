"""The Segmenter's inference copy (BatchNorm folded, compiled) and its precisions
(afb_urr.inference.runtime): the given model is left alone, results match fp32 eager."""
import numpy as np
import pytest
import torch

from afb_urr import AFBURR, Segmenter, load_model
from afb_urr.inference.bench import ProceduralVideo
from afb_urr.inference.demo import demo_weights
from afb_urr.model.fold import count_batchnorm


@pytest.fixture(scope="module")
def demo_model():
    """The committed demo weights: a trained network, whose outputs are well conditioned
    (a random one amplifies float rounding through near-one-hot attention)."""
    return load_model(demo_weights(), device="cpu")


def _run(seg, video, n):
    out = []
    for t in range(n):
        frame, labels = video.frame(t)
        out.append(seg.step(frame, labels if t == 0 else None))
    return out


def test_folded_copy_leaves_the_model_as_it_was(demo_model):
    state = {k: v.clone() for k, v in demo_model.state_dict().items()}
    strides = {n: p.stride() for n, p in demo_model.named_parameters()}
    demo_model.train()
    try:
        seg = Segmenter(demo_model, budget=500)
        plain = Segmenter(demo_model, budget=500, fold_batchnorm=False)
        video = ProceduralVideo(48, 64, 2)
        folded, unfolded = _run(seg, video, 4), _run(plain, video, 4)
        assert demo_model.training  # not put in eval mode, not moved, not folded
    finally:
        demo_model.eval()
    assert count_batchnorm(demo_model) > 0 and count_batchnorm(seg.net) == 0
    assert {n: p.stride() for n, p in demo_model.named_parameters()} == strides  # not channels-last
    for k, v in demo_model.state_dict().items():
        assert torch.equal(v, state[k]), k
    for a, b in zip(folded[1:], unfolded[1:]):
        torch.testing.assert_close(a.probs, b.probs, atol=1e-4, rtol=0)


def test_segmenters_share_the_copy_until_the_weights_change():
    torch.manual_seed(0)
    model = AFBURR("resnet18").eval()
    a, b = Segmenter(model), Segmenter(model)
    assert a.net is b.net and a.net is not model
    with torch.no_grad():
        model.keyval_r4.Key.bias.add_(1.0)
    c = Segmenter(model)
    assert c.net is not a.net
    torch.testing.assert_close(c.net.keyval_r4.Key.bias, model.keyval_r4.Key.bias)


def test_bf16_stores_a_half_bank_and_agrees_with_fp32(demo_model):
    video = ProceduralVideo(48, 64, 2, seed=3)
    ref = _run(Segmenter(demo_model, budget=600), video, 4)
    seg = Segmenter(demo_model, budget=600, precision="bf16")
    got = _run(seg, video, 4)
    assert all(k.dtype == torch.bfloat16 for k in seg.bank.keys + seg.bank.values)
    assert all(s.dtype == torch.float32 for s in seg.bank.scores)
    assert got[-1].probs.dtype == torch.float32
    agree = np.mean([np.mean(a.labels == b.labels) for a, b in zip(ref[1:], got[1:])])
    assert agree >= 0.99
    state = seg.state_dict()
    back = Segmenter(demo_model, budget=600, precision="bf16")
    back.load_state_dict(state)
    assert back.bank.keys[0].dtype == torch.bfloat16


def test_unknown_precision_is_a_one_line_error(light_model):
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16', 'fp16'\), got 'fp8'"):
        Segmenter(light_model, precision="fp8")


def test_compiled_equals_eager(demo_model):
    video = ProceduralVideo(32, 48, 2)
    eager = _run(Segmenter(demo_model, budget=400), video, 3)
    compiled = _run(Segmenter(demo_model, budget=400, compile=True), video, 3)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a.probs, b.probs, atol=1e-4, rtol=0)
        assert np.array_equal(a.labels, b.labels)
