import os

import pytest
import torch

from afb_urr import AFBURR, FeatureBank
from afb_urr.model.network import crop_padding, pad_to_multiple

# The published state_dict: every key with its shape (a copy of the reference table).
KEY_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checkpoint_keys.tsv")


def _reference_keys():
    keys = {}
    path = KEY_TABLE
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            k, shape = line.rstrip("\n").split("\t")
            keys[k] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return keys


def test_state_dict_matches_published_keys_and_shapes():
    ref = _reference_keys()
    ours = {k: tuple(v.shape) for k, v in AFBURR("resnet50").state_dict().items()}
    assert set(ours) == set(ref)
    assert ours == ref
    assert len(ours) == 562
    assert sum(torch.Size(s).numel() for s in ours.values()) == pytest.approx(33.1e6, rel=2e-3)


def test_light_variant_has_same_structure(light_model):
    full = set(AFBURR("resnet50").state_dict())
    light = set(light_model.state_dict())
    # Same modules outside the trunk; the trunk differs only in block internals.
    strip = lambda ks: {k for k in ks if not k.startswith(("encoder_m.res", "encoder_q.res"))}
    assert strip(full) == strip(light)
    assert light_model.key_dim == 32 and light_model.value_dim == 128


@pytest.mark.parametrize("h,w", [(16, 32), (17, 31), (33, 50), (1, 1)])
def test_pad_and_crop_roundtrip(h, w):
    x = torch.randn(2, 3, h, w)
    p, pad = pad_to_multiple(x)
    assert p.shape[-2] % 16 == 0 and p.shape[-1] % 16 == 0
    left, right, top, bottom = pad
    assert left <= right <= left + 1 and top <= bottom <= top + 1
    assert torch.equal(crop_padding(p, pad), x)
    assert p[..., :top, :].abs().sum() == 0 and p[..., :, :left].abs().sum() == 0


@pytest.mark.parametrize("h,w", [(40, 56), (37, 53)])
def test_memorize_and_segment_shapes(light_model, h, w):
    torch.manual_seed(1)
    frame = torch.rand(1, 3, h, w)
    probs = torch.softmax(torch.randn(3, h, w), dim=0)
    with torch.no_grad():
        keys, values = light_model.memorize(frame, probs)
        n = -(-h // 16) * -(-w // 16)
        assert keys.shape == (3, 32, n) and values.shape == (3, 128, n)
        bank = FeatureBank(3, budget=10000)
        bank.init(keys, values, 0)
        logits, s = light_model.segment(torch.rand(2, 3, h, w), bank, return_probs=True)
    assert logits.shape == (2, 3, h, w) and s.shape == (2, 3, h, w)
    assert torch.all((s >= 0) & (s <= 1))
    c = s.clamp(1e-7, 1 - 1e-7)
    torch.testing.assert_close(logits, torch.log(c / (1 - c)))


def test_segment_is_differentiable(light_model):
    model = AFBURR("resnet18")
    frames = torch.rand(3, 3, 32, 32)
    masks = torch.softmax(torch.randn(2, 32, 32), 0)
    keys, values = model.memorize(frames[:1], masks)
    bank = FeatureBank(2, budget=10000)
    bank.init(keys, values, 0)
    logits = model.segment(frames[1:], bank, count_readout=False)
    logits.mean().backward()
    assert model.encoder_m.conv1_m.weight.grad is not None
    assert model.decoder.local_pred2.weight.grad.abs().sum() > 0


def test_unknown_backbone_is_an_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        AFBURR("vgg16")
