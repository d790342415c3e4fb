"""The training loop (afb_urr.training.loop) and the training configs."""
import csv
import os

import pytest
import torch

from afb_urr import load_model
from afb_urr.config import load_config
from afb_urr.data import DataConfig
from afb_urr.training.config import TrainConfig, ValConfig
from afb_urr.training.loop import Trainer
from training_toys import ToyClips, train_cfg

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def test_one_step_lowers_loss_on_fixed_batch(tmp_path):
    torch.manual_seed(0)
    sample = ToyClips(1)[0]
    trainer = Trainer(train_cfg(tmp_path), train_set=ToyClips(2), val_videos=[], device="cpu", progress=False)
    try:
        before = trainer.train_clip(sample)[0].item()
        trainer.optimizer_step()
        trainer.optimizer.zero_grad()
        with torch.no_grad():
            after = trainer.clip_loss(sample)[0].item()
    finally:
        trainer.close()
    assert after < before - 1e-3, (before, after)


def test_checkpoint_format_and_logs(tmp_path):
    trainer = Trainer(train_cfg(tmp_path, accumulate=2, epochs=1), train_set=ToyClips(3), val_videos=[],
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
        Trainer(train_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], resume=path, device="cpu")
    # --init accepts a plain weights file; a different backbone is named.
    Trainer(train_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], init=path, device="cpu").close()
    cfg = train_cfg(tmp_path)
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
        Trainer(train_cfg(tmp_path, pretrained=True), train_set=ToyClips(1), val_videos=[], device="cpu")


def test_bad_sample_is_named(tmp_path):
    trainer = Trainer(train_cfg(tmp_path), train_set=ToyClips(1), val_videos=[], device="cpu", progress=False)
    sample = ToyClips(1)[0]
    sample["masks"] = sample["masks"][:, :, :5]
    with pytest.raises(ValueError, match="masks must be T x K x H x W"):
        trainer.train_clip(sample)
    trainer.close()


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
