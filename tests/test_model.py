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


def _decoder_reference(dec, read, r3, r2, r1, k):
    """The decoder as published, every skip repeated per object and softmax of 2 logits."""
    import torch.nn.functional as F
    from afb_urr import ops
    from afb_urr.model.decoder import uncertainty_map
    rep = lambda t: t.repeat_interleave(k, 0)
    p = dec.ResMM(dec.convFM(read))
    for rf, f in ((dec.RF3, rep(r3)), (dec.RF2, rep(r2))):
        p = rf.ResMM(rf.ResFS(rf.convFS(f)) + F.interpolate(p, scale_factor=2, mode="bilinear",
                                                            align_corners=False))
    logits = F.interpolate(dec.pred2(F.relu(p)), scale_factor=2, mode="bilinear", align_corners=False)
    bk, _, h, w = logits.shape
    rough = F.softmax(F.softmax(logits, dim=1)[:, 1].reshape(bk // k, k, h, w), dim=1)
    unc = uncertainty_map(rough).repeat_interleave(k, 0)
    local, conf = ops.local_refine_reference(rep(r1), rough.reshape(bk, 1, h, w), 7, 1e-8)
    q = dec.local_ResMM(dec.local_convFM(torch.cat([rep(r1), local], 1)))
    logits = logits + unc * conf * dec.local_pred2(F.relu(q))
    logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
    return F.softmax(logits, dim=1)[:, 1].reshape(bk // k, k, 2 * h, 2 * w)


@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_shares_skips_across_objects(light_model, channels_last):
    """Skips given once per frame or repeated per object give the published decoder's output."""
    dec = light_model.decoder
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(2)
    b, k = 2, 3
    read = torch.randn(b * k, 256, 3, 4).contiguous(memory_format=fmt)
    r3, r2, r1 = (torch.randn(b, c, 3 * s, 4 * s).contiguous(memory_format=fmt)
                  for c, s in ((128, 2), (64, 4), (64, 8)))
    with torch.no_grad():
        ref = _decoder_reference(dec, read, r3, r2, r1, k)
        once = dec(read, r3, r2, r1, k)
        repeated = dec(read, *(t.repeat_interleave(k, 0) for t in (r3, r2, r1)), k)
    torch.testing.assert_close(once, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(repeated, ref, rtol=1e-4, atol=1e-5)


def test_memory_encoder_shares_the_frame_across_masks(light_model):
    torch.manual_seed(3)
    frame, masks = torch.rand(1, 3, 32, 48), torch.rand(3, 1, 32, 48)
    enc = light_model.encoder_m
    with torch.no_grad():
        expanded = enc(frame.expand(3, -1, -1, -1), masks)
        repeated = enc(frame.repeat(3, 1, 1, 1), masks)
        shared = enc(frame, masks)
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(expanded, repeated, rtol=1e-5, atol=1e-5)
