import pytest
import torch

from afb_urr.training.batchnorm import set_train_mode
from afb_urr.training.config import TrainConfig
from afb_urr.training.loop import Trainer
from afb_urr.training.init import normalise_decoder
from afb_urr.training.step import ClipStep, check_clip
from training_toys import ToyClips, train_cfg


def test_from_scratch_init_normalises_activations():
    from afb_urr import AFBURR
    from afb_urr.training.batchnorm import calibrate
    torch.manual_seed(0)
    model = set_train_mode(AFBURR("resnet18"), "track")
    step = ClipStep(model)
    clips = [ToyClips(1)[0] for _ in range(3)]
    with torch.no_grad():
        assert calibrate(model, lambda c: step(*check_clip(c)), clips) == 3
    bn = model.encoder_q.bn1
    assert bn.momentum == 0.1 and not bn.training and int(bn.num_batches_tracked) == 3
    assert not torch.equal(bn.running_var, torch.ones(64))
    with torch.no_grad():
        _, s_before = step(*check_clip(clips[0]))
    scales = normalise_decoder(step, clips[0], "cpu", output_std=2.0)
    assert len(scales) == sum(isinstance(m, torch.nn.Conv2d) for m in model.decoder.modules())
    seen = {}
    model.decoder.pred2.register_forward_hook(lambda m, i, o: seen.__setitem__("pred2", o.std().item()))
    model.decoder.convFM.register_forward_hook(lambda m, i, o: seen.__setitem__("convFM", o.std().item()))
    with torch.no_grad():
        _, s = step(*check_clip(clips[0]))
    assert seen["convFM"] == pytest.approx(1.0, rel=0.05)
    assert seen["pred2"] == pytest.approx(2.0, rel=0.05)
    saturated = lambda p: ((p < 1e-6) | (p > 1 - 1e-6)).float().mean().item()
    assert saturated(s) < 0.01 < saturated(s_before)


def test_same_trunk_init_copies_the_query_trunk(tmp_path):
    """same_trunk_init starts the memory trunk as a copy of the query trunk; the mask
    convs keep their own init; without it the two random trunks differ."""
    torch.manual_seed(0)
    ref = Trainer(train_cfg(tmp_path / "ref"), train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    torch.manual_seed(0)
    tr = Trainer(train_cfg(tmp_path / "run", same_trunk_init=True), train_set=ToyClips(2), val_videos=[],
                 device="cpu", progress=False)
    q, m = tr.model.encoder_q.state_dict(), tr.model.encoder_m.state_dict()
    assert torch.equal(q["res4.0.conv1.weight"], m["res4.0.conv1.weight"])
    assert torch.equal(q["conv1.weight"], m["conv1.weight"])
    assert not torch.equal(ref.model.encoder_q.state_dict()["res4.0.conv1.weight"],
                           ref.model.encoder_m.state_dict()["res4.0.conv1.weight"])
    torch.testing.assert_close(tr.model.encoder_m.conv1_m.weight, ref.model.encoder_m.conv1_m.weight)
    with pytest.raises(ValueError, match="decoder_init_std"):
        TrainConfig(decoder_init_std=-1.0)
