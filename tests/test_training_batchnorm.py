import pytest
import torch

from afb_urr.training.batchnorm import set_train_mode
from afb_urr.training.step import ClipStep
from training_toys import ToyClips


def test_batchnorm_stays_frozen():
    from afb_urr import AFBURR
    model = set_train_mode(AFBURR("resnet18"), "frozen")
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert model.decoder.training
    before = [b.running_mean.clone() for b in bns]
    ClipStep(model)(*[ToyClips(1)[0][k] for k in ("frames", "masks")])
    assert all(torch.equal(b.running_mean, m) for b, m in zip(bns, before))
    with pytest.raises(ValueError, match="BatchNorm mode"):
        set_train_mode(model, "freeze")


def test_batchnorm_track_mode_uses_and_follows_running_stats():
    from afb_urr import AFBURR
    from afb_urr.training.batchnorm import stop_tracking
    torch.manual_seed(0)
    model = set_train_mode(AFBURR("resnet18"), "track")
    bn = model.encoder_q.bn1
    assert not bn.training  # forward uses the running statistics, as at inference
    x = torch.rand(2, 3, 32, 32) * 3 + 1
    with torch.no_grad():  # no-grad passes (inference) leave the statistics alone
        model.encoder_q(x)
    assert torch.equal(bn.running_mean, torch.zeros(64))
    # First tracked batch: the batch's own statistics (cumulative average).
    want = model.encoder_q.conv1((x - model.encoder_q.mean) / model.encoder_q.std)
    model.encoder_q(x)
    c = want.detach().transpose(0, 1).reshape(64, -1)
    assert torch.allclose(bn.running_mean, c.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var, c.var(1, unbiased=False), rtol=1e-4, atol=1e-6)
    # Second batch: average of the two; the variance around the running mean.
    y = torch.rand(2, 3, 32, 32)
    m1, v1 = bn.running_mean.clone(), bn.running_var.clone()
    d = model.encoder_q.conv1((y - model.encoder_q.mean) / model.encoder_q.std).detach()
    d = d.transpose(0, 1).reshape(64, -1)
    model.encoder_q(y)
    assert torch.allclose(bn.running_mean, (m1 + d.mean(1)) / 2, atol=1e-5)
    assert torch.allclose(bn.running_var, (v1 + (d - m1[:, None]).pow(2).mean(1)) / 2, rtol=1e-4)
    stop_tracking(model)
    m2 = bn.running_mean.clone()
    model.encoder_q(y)
    assert torch.equal(bn.running_mean, m2)
