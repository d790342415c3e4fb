import pytest
import torch

from afb_urr.training.config import TrainConfig
from afb_urr.training.loop import Trainer
from afb_urr.training.optim import cosine_factor, param_groups
from training_toys import ToyClips, flat_params, train_cfg


def test_warmup_scales_the_learning_rate_of_the_first_steps(tmp_path):
    # Step 1 of 4 warm-up steps at lr 1e-3 moves the weights exactly as a step at
    # lr 2.5e-4 without warm-up (AdamW: update and decay both scale with lr);
    # the scheduler's rate is left as it was.
    def one_step(lr, warmup, sub):
        torch.manual_seed(0)
        sample = ToyClips(1)[0]
        tr = Trainer(train_cfg(tmp_path / sub, lr=lr, warmup_steps=warmup), train_set=ToyClips(2), val_videos=[],
                     device="cpu", progress=False)
        try:
            start = flat_params(tr.model).clone()
            assert [tr.lr_factor(i) for i in range(5)] == ([0.25, 0.5, 0.75, 1.0, 1.0] if warmup else [1.0] * 5)
            tr.train_clip(sample)
            tr.optimizer_step()
            assert tr.optimizer.param_groups[0]["lr"] == lr
            return start, flat_params(tr.model)
        finally:
            tr.close()

    start_a, warm = one_step(1e-3, 4, "a")
    start_b, plain = one_step(2.5e-4, 0, "b")
    assert torch.equal(start_a, start_b)
    assert not torch.equal(warm, start_a)
    torch.testing.assert_close(warm, plain, rtol=1e-5, atol=1e-8)


def test_cosine_schedule_runs_from_lr_to_zero(tmp_path):
    # 2 epochs of 2 clips: 4 steps; the logged rate of step i is lr x warm-up x cosine(i - 1 of 4).
    tr = Trainer(train_cfg(tmp_path, lr=1e-3, lr_schedule="cosine", warmup_steps=2), train_set=ToyClips(2),
                 val_videos=[], device="cpu", progress=False)
    try:
        assert tr.total_steps == 4
        tr.fit()
        logged = [h["lr"] for h in tr.history]
        expect = [1e-3 * min(1.0, (i + 1) / 2) * cosine_factor(i, 4) for i in range(4)]
        assert logged == pytest.approx(expect, rel=1e-2)
        assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    finally:
        tr.close()
    assert [cosine_factor(s, 4) for s in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


def test_lr_milestones_decay_at_optimiser_steps(tmp_path):
    # 2 epochs of 2 clips = 4 steps; milestones at steps 1 and 3 (not at epoch ends).
    tr = Trainer(train_cfg(tmp_path, lr=1e-3, lr_milestones=[1, 3], lr_gamma=0.5), train_set=ToyClips(2),
                 val_videos=[], device="cpu", progress=False)
    try:
        tr.fit()
        assert [h["lr"] for h in tr.history] == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4])
    finally:
        tr.close()
    for bad in ([0], [3, 2], [2, 2], [1.5]):
        with pytest.raises(ValueError, match="lr_milestones"):
            TrainConfig(lr_milestones=bad)
    with pytest.raises(ValueError, match="lr_milestones"):
        TrainConfig(lr_milestones=[5], lr_schedule="cosine")


def test_param_groups_scale_the_rate_by_name_prefix():
    from afb_urr import AFBURR
    model = AFBURR("resnet18")
    groups = param_groups(model, 1e-3, {"keyval_r4.Key": 0.1, "keyval_r4": 0.5})
    by_name = {g["name"]: g for g in groups}
    assert by_name["keyval_r4.Key"]["lr"] == pytest.approx(1e-4)
    assert by_name["keyval_r4"]["lr"] == pytest.approx(5e-4)
    assert by_name["default"]["lr"] == pytest.approx(1e-3)
    ids = lambda ps: {id(p) for p in ps}
    assert ids(by_name["keyval_r4.Key"]["params"]) == ids(model.keyval_r4.Key.parameters())
    assert ids(by_name["keyval_r4"]["params"]) == ids(model.keyval_r4.Value.parameters())
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len(param_groups(model, 1e-3, {})) == 1
    for typo in ("keyval_r4.Ke", "decoder.nothing"):
        with pytest.raises(ValueError, match="lr_scale"):
            param_groups(model, 1e-3, {typo: 0.1})
    with pytest.raises(ValueError, match="lr_scale"):
        TrainConfig(lr_scale={"keyval_r4.Key": -1})


def test_lr_scale_sets_the_step_size_of_its_parameters(tmp_path):
    """Adam's first step moves every weight by about lr (the sign of its gradient):
    a 0.1 scale on the key head moves it ten times less than the rest."""
    torch.manual_seed(0)
    tr = Trainer(train_cfg(tmp_path, lr=1e-3, max_steps=1, lr_scale={"keyval_r4.Key": 0.1}, weight_decay=0.0),
                 train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    key0 = tr.model.keyval_r4.Key.weight.detach().clone()
    val0 = tr.model.keyval_r4.Value.weight.detach().clone()
    tr.fit()
    tr.close()
    dk = (tr.model.keyval_r4.Key.weight.detach() - key0).abs().max().item()
    dv = (tr.model.keyval_r4.Value.weight.detach() - val0).abs().max().item()
    assert dk == pytest.approx(1e-4, rel=0.05) and dv == pytest.approx(1e-3, rel=0.05)
    assert tr.history[-1]["lr"] == pytest.approx(1e-3)
