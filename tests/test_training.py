import csv
import os

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from afb_urr import load_model
from afb_urr.config import Config, ModelConfig, load_config
from afb_urr.data import DataConfig
from afb_urr.training.config import TrainConfig, ValConfig
from afb_urr.training.distributed import ResumableSampler
from afb_urr.training.loss import uncertainty_loss, vos_loss
from afb_urr.training.batchnorm import set_train_mode
from afb_urr.training.trainer import ClipStep, Trainer, cosine_factor
from afb_urr.training.validate import evaluate

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


class ToyClips(Dataset):
    """Clips of two coloured squares moving over a noisy background (random per call)."""

    def __init__(self, n=4, frames=3, size=32):
        self.n, self.frames, self.size = n, frames, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        t, s = self.frames, self.size
        frames = torch.rand(3, 1, 1) * 0.3 + 0.1 * torch.rand(t, 3, s, s)
        labels = torch.zeros(t, s, s, dtype=torch.long)
        for obj, colour in ((1, (1.0, 0.2, 0.2)), (2, (0.2, 0.3, 1.0))):
            y, x = (int(v) for v in torch.randint(0, s // 2, (2,)))
            for f in range(t):
                yy, xx = y + f, x + f
                frames[f, :, yy:yy + s // 3, xx:xx + s // 3] = torch.tensor(colour).view(3, 1, 1)
                labels[f, yy:yy + s // 3, xx:xx + s // 3] = obj
        masks = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
        return {"frames": frames.clamp(0, 1), "masks": masks, "num_objects": 2, "info": {"index": i}}


def _cfg(tmp_path, **train):
    kw = dict(lr=1e-4, epochs=2, lr_step=1, pretrained=False, num_workers=0, log_every=1, batchnorm="track",
              output_dir=str(tmp_path / "run"), bank_budget=100000, decoder_init_std=1.0)
    kw.update(train)
    return Config(model=ModelConfig("resnet18"),
                  train=TrainConfig(**kw), data=DataConfig(), val=ValConfig())


def test_uncertainty_loss_matches_definition():
    torch.manual_seed(0)
    s = torch.rand(2, 3, 5, 7)
    p = torch.softmax(s, dim=1)
    top = p.sort(dim=1, descending=True).values
    u = torch.exp(1 - top[:, 0] / (top[:, 1] + 1e-8))
    want = torch.stack([u[i].norm() / (5 * 7) ** 0.5 for i in range(2)]).mean()
    assert torch.allclose(uncertainty_loss(s), want, atol=1e-6)
    # Equal probabilities: U = 1 everywhere, loss 1.
    assert uncertainty_loss(torch.full((1, 2, 4, 4), 0.5)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="K >= 2"):
        uncertainty_loss(torch.rand(1, 1, 4, 4))


def test_vos_loss_combines_ce_and_uncertainty():
    torch.manual_seed(0)
    logits, s = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    loss, ce, unc = vos_loss(logits, s, onehot)
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert loss.item() == pytest.approx(ce.item() + 0.5 * unc.item())
    assert vos_loss(logits, s, labels)[0].item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="do not match"):
        vos_loss(logits, s, onehot[:, :2])


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


def test_from_scratch_init_normalises_activations():
    from afb_urr import AFBURR
    from afb_urr.training.batchnorm import calibrate
    from afb_urr.training.trainer import check_clip, normalise_decoder
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


def test_one_step_lowers_loss_on_fixed_batch(tmp_path):
    torch.manual_seed(0)
    sample = ToyClips(1)[0]
    trainer = Trainer(_cfg(tmp_path), train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    try:
        before = trainer.train_clip(sample)[0].item()
        trainer.optimizer_step()
        trainer.optimizer.zero_grad()
        with torch.no_grad():
            after = trainer.clip_loss(sample)[0].item()
    finally:
        trainer.close()
    assert after < before - 1e-3, (before, after)


def test_warmup_scales_the_learning_rate_of_the_first_steps(tmp_path):
    # Step 1 of 4 warm-up steps at lr 1e-3 moves the weights exactly as a step at
    # lr 2.5e-4 without warm-up (AdamW: update and decay both scale with lr);
    # the scheduler's rate is left as it was.
    def one_step(lr, warmup, sub):
        torch.manual_seed(0)
        sample = ToyClips(1)[0]
        tr = Trainer(_cfg(tmp_path / sub, lr=lr, warmup_steps=warmup), train_set=ToyClips(2), val_videos=[],
                     device="cpu", progress=False)
        try:
            start = _params(tr.model).clone()
            assert [tr.lr_factor(i) for i in range(5)] == ([0.25, 0.5, 0.75, 1.0, 1.0] if warmup else [1.0] * 5)
            tr.train_clip(sample)
            tr.optimizer_step()
            assert tr.optimizer.param_groups[0]["lr"] == lr
            return start, _params(tr.model)
        finally:
            tr.close()

    start_a, warm = one_step(1e-3, 4, "a")
    start_b, plain = one_step(2.5e-4, 0, "b")
    assert torch.equal(start_a, start_b)
    assert not torch.equal(warm, start_a)
    torch.testing.assert_close(warm, plain, rtol=1e-5, atol=1e-8)


def test_cosine_schedule_runs_from_lr_to_zero(tmp_path):
    # 2 epochs of 2 clips: 4 steps; the logged rate of step i is lr x warm-up x cosine(i - 1 of 4).
    tr = Trainer(_cfg(tmp_path, lr=1e-3, lr_schedule="cosine", warmup_steps=2), train_set=ToyClips(2),
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
    tr = Trainer(_cfg(tmp_path, lr=1e-3, lr_milestones=[1, 3], lr_gamma=0.5), train_set=ToyClips(2),
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


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _state(model):
    return torch.cat([t.detach().float().flatten() for t in model.state_dict().values()])


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_resume_reproduces_next_step_exactly(tmp_path, schedule):
    # 3 clips per epoch, 2 per optimiser step (the last step of an epoch takes 1).
    # The checkpoint after step 1 is mid-epoch; the resumed run then does step 2
    # (end of epoch 1, StepLR decay) and step 3 (epoch 2).
    full = Trainer(_cfg(tmp_path / "a", checkpoint_steps=1, accumulate=2, max_steps=3, warmup_steps=3,
                        lr_schedule=schedule),
                   train_set=ToyClips(3), val_videos=[], device="cpu", progress=False)
    saved = {}

    def keep(tr, step):
        if step == 1:
            import shutil
            shutil.copy(tr.latest_path, tmp_path / "step1.pth")
        saved[step] = _state(tr.model).clone()

    full.on_step = keep
    full.fit()
    full.close()
    resumed = Trainer(_cfg(tmp_path / "b", accumulate=2, max_steps=3, warmup_steps=3, lr_schedule=schedule),
                      train_set=ToyClips(3),
                      val_videos=[],
                      resume=str(tmp_path / "step1.pth"), device="cpu", progress=False)
    assert (resumed.step, resumed.epoch, resumed.batch) == (1, 0, 2)
    assert torch.equal(_state(resumed.model), saved[1])
    got = {}
    resumed.on_step = lambda tr, step: got.__setitem__(step, _state(tr.model).clone())
    resumed.fit()
    resumed.close()
    assert sorted(got) == [2, 3]
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(full.optimizer.param_groups[0]["lr"])
    # step: halved once at the end of epoch 1; cosine: 0 after the last of 3 steps
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-4 if schedule == "step" else 0.0)
    for step in (2, 3):
        assert torch.equal(got[step], saved[step]), f"step {step} differs after resume"
    assert not torch.equal(saved[3], saved[2])


def test_checkpoint_format_and_logs(tmp_path):
    trainer = Trainer(_cfg(tmp_path, accumulate=2, epochs=1), train_set=ToyClips(3), val_videos=[],
                      device="cpu", progress=False)
    trainer.fit()
    trainer.export(str(tmp_path / "half.pth"))
    trainer.close()
    blob = torch.load(trainer.latest_path, weights_only=True)
    assert {"epoch", "model", "optimizer", "loss", "seed"} <= set(blob)
    assert blob["epoch"] == 1 and blob["step"] == 2  # 3 clips, 2 per step: 2 steps
    model = load_model(trainer.latest_path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k])
    half = torch.load(tmp_path / "half.pth", weights_only=True)
    assert half["optimizer"] is None
    assert all(v.dtype == torch.float16 for v in half["model"].values() if v.is_floating_point())
    assert load_model(str(tmp_path / "half.pth")).backbone == "resnet18"
    with open(os.path.join(trainer.out_dir, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert set(rows[0]) == {"step", "epoch", "loss", "ce", "uncertainty", "lr", "clips_per_s"}
    assert all(float(r["loss"]) > 0 for r in rows)


def test_init_and_resume_errors(tmp_path):
    from afb_urr import AFBURR, save_checkpoint
    path = str(tmp_path / "plain.pth")
    save_checkpoint(path, AFBURR("resnet18"))
    with pytest.raises(ValueError, match="cannot be resumed"):
        Trainer(_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], resume=path, device="cpu")
    # --init accepts a plain weights file; a different backbone is named.
    Trainer(_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], init=path, device="cpu").close()
    cfg = _cfg(tmp_path)
    cfg.model.backbone = "resnet34"
    with pytest.raises(ValueError, match="resnet18 network but the config asks for resnet34"):
        Trainer(cfg, train_set=ToyClips(1), val_videos=[], init=path, device="cpu")


def test_imagenet_init_failure_is_clear(tmp_path, monkeypatch):
    import torchvision

    def offline(name, weights=None, **kw):
        if weights is not None:
            raise OSError("network unreachable")
        return get_model(name, weights=None, **kw)

    get_model = torchvision.models.get_model
    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(RuntimeError, match="could not fetch ImageNet weights for resnet18"):
        Trainer(_cfg(tmp_path, pretrained=True), train_set=ToyClips(1), val_videos=[], device="cpu")


def test_bad_sample_is_named(tmp_path):
    trainer = Trainer(_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], device="cpu", progress=False)
    sample = ToyClips(1)[0]
    sample["masks"] = sample["masks"][:, :, :5]
    with pytest.raises(ValueError, match="masks must be T x K x H x W"):
        trainer.train_clip(sample)
    trainer.close()


def test_sampler_resume_and_ranks():
    full = ResumableSampler(7, seed=3)
    full.set_epoch(2)
    order = list(full)
    part = ResumableSampler(7, seed=3)
    part.set_epoch(2, start=4)
    assert list(part) == order[4:] and len(part) == 3
    ranks = [ResumableSampler(7, rank=r, world_size=2, seed=3) for r in range(2)]
    for s in ranks:
        s.set_epoch(2)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 4 and set(a) | set(b) == set(range(7))


def test_evaluate_scores_against_truth(monkeypatch):
    from afb_urr.training import validate
    frames = np.zeros((5, 32, 48, 3), dtype=np.uint8)
    labels = np.zeros((5, 32, 48), dtype=np.int64)
    labels[:, 8:24, 10:30] = 1
    labels[:, 2:6, 2:6] = 2
    pred = {"out": labels.astype(np.uint8)}
    monkeypatch.setattr(validate, "segment_video", lambda *a, **k: pred["out"])
    s = evaluate(None, [(frames, labels)])
    assert (s.J, s.F, s.JF) == (1.0, 1.0, 1.0)
    assert s.num_objects == [2]
    wrong = labels.copy()
    wrong[1:4][wrong[1:4] == 2] = 0  # object 2 lost in every scored frame (1..3)
    pred["out"] = wrong.astype(np.uint8)
    s = evaluate(None, [(frames, labels)])
    assert s.J == pytest.approx(0.5) and s.JF == pytest.approx(0.5)
    wrong[4] = 0  # the last frame is not scored (DAVIS protocol)
    pred["out"] = wrong.astype(np.uint8)
    assert evaluate(None, [(frames, labels)]).J == pytest.approx(0.5)


def test_evaluate_runs_the_segmenter(light_model):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 32, 48, 3), dtype=np.uint8)
    labels = np.zeros((4, 32, 48), dtype=np.int64)
    labels[:, 8:24, 10:30] = 1
    s = evaluate(light_model, [(frames, labels), (torch.from_numpy(frames).permute(0, 3, 1, 2) / 255.0,
                                                  labels)])
    assert 0.0 <= s.J <= 1.0 and 0.0 <= s.F <= 1.0 and len(s.per_video) == 2
    assert s.per_video[0] == pytest.approx(s.per_video[1])
    with pytest.raises(ValueError, match="no object"):
        evaluate(light_model, [(frames, np.zeros_like(labels))])


@pytest.mark.parametrize("name", ["train_stage0", "train_davis17", "train_youtube_vos", "train_synthetic",
                                  "train_synthetic_gpu"])
def test_train_configs_load(name):
    cfg = load_config(os.path.join(CONFIGS, name + ".yaml"))
    tc, dc = cfg.train, cfg.data
    assert isinstance(tc, TrainConfig) and isinstance(dc, DataConfig)
    assert isinstance(cfg.val, ValConfig)
    if name == "train_stage0":
        assert (tc.lr, tc.lr_step, tc.epochs, dc.dataset) == (1e-5, 3, 12, "static")
    if name == "train_davis17":
        assert (tc.lr, tc.lr_step, tc.epochs, dc.dataset) == (4e-6, 200, 1000, "davis")
    if name == "train_youtube_vos":
        assert (tc.lr, tc.lr_step, tc.epochs, dc.dataset) == (4e-6, 30, 150, "youtube_vos")
    if name == "train_synthetic":
        assert cfg.model.backbone == "resnet18" and dc.dataset == "synthetic"
    if name == "train_synthetic_gpu":  # the CPU recipe with more steps: nothing else may drift
        cpu = load_config(os.path.join(CONFIGS, "train_synthetic.yaml"))
        ctc = cpu.train
        scaled = {"epochs", "lr_step", "num_workers", "output_dir", "checkpoint_steps", "log_every"}
        for key in vars(ctc):
            if key not in scaled:
                assert getattr(tc, key) == getattr(ctc, key), key
        assert (tc.epochs, tc.lr_step) == (20, 14)
        assert dc == cpu.data and cfg.model == cpu.model


def test_same_trunk_init_copies_the_query_trunk(tmp_path):
    """same_trunk_init starts the memory trunk as a copy of the query trunk; the mask
    convs keep their own init; without it the two random trunks differ."""
    torch.manual_seed(0)
    ref = Trainer(_cfg(tmp_path / "ref"), train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    torch.manual_seed(0)
    tr = Trainer(_cfg(tmp_path / "run", same_trunk_init=True), train_set=ToyClips(2), val_videos=[],
                 device="cpu", progress=False)
    q, m = tr.model.encoder_q.state_dict(), tr.model.encoder_m.state_dict()
    assert torch.equal(q["res4.0.conv1.weight"], m["res4.0.conv1.weight"])
    assert torch.equal(q["conv1.weight"], m["conv1.weight"])
    assert not torch.equal(ref.model.encoder_q.state_dict()["res4.0.conv1.weight"],
                           ref.model.encoder_m.state_dict()["res4.0.conv1.weight"])
    torch.testing.assert_close(tr.model.encoder_m.conv1_m.weight, ref.model.encoder_m.conv1_m.weight)
    with pytest.raises(ValueError, match="decoder_init_std"):
        TrainConfig(decoder_init_std=-1.0)


def test_param_groups_scale_the_rate_by_name_prefix():
    from afb_urr import AFBURR
    from afb_urr.training.trainer import param_groups
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
    tr = Trainer(_cfg(tmp_path, lr=1e-3, max_steps=1, lr_scale={"keyval_r4.Key": 0.1}, weight_decay=0.0),
                 train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    key0 = tr.model.keyval_r4.Key.weight.detach().clone()
    val0 = tr.model.keyval_r4.Value.weight.detach().clone()
    tr.fit()
    tr.close()
    dk = (tr.model.keyval_r4.Key.weight.detach() - key0).abs().max().item()
    dv = (tr.model.keyval_r4.Value.weight.detach() - val0).abs().max().item()
    assert dk == pytest.approx(1e-4, rel=0.05) and dv == pytest.approx(1e-3, rel=0.05)
    assert tr.history[-1]["lr"] == pytest.approx(1e-3)
