import pytest
import torch

from afb_urr.training.loop import Trainer
from training_toys import ToyClips, flat_state, train_cfg


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_resume_reproduces_next_step_exactly(tmp_path, schedule):
    # 3 clips per epoch, 2 per optimiser step (the last step of an epoch takes 1).
    # The checkpoint after step 1 is mid-epoch; the resumed run then does step 2
    # (end of epoch 1, StepLR decay) and step 3 (epoch 2).
    full = Trainer(train_cfg(tmp_path / "a", checkpoint_steps=1, accumulate=2, max_steps=3, warmup_steps=3,
                             lr_schedule=schedule),
                   train_set=ToyClips(3), val_videos=[], device="cpu", progress=False)
    saved = {}

    def keep(tr, step):
        if step == 1:
            import shutil
            shutil.copy(tr.latest_path, tmp_path / "step1.pth")
        saved[step] = flat_state(tr.model).clone()

    full.on_step = keep
    full.fit()
    full.close()
    resumed = Trainer(train_cfg(tmp_path / "b", accumulate=2, max_steps=3, warmup_steps=3, lr_schedule=schedule),
                      train_set=ToyClips(3),
                      val_videos=[],
                      resume=str(tmp_path / "step1.pth"), device="cpu", progress=False)
    assert (resumed.step, resumed.epoch, resumed.batch) == (1, 0, 2)
    assert torch.equal(flat_state(resumed.model), saved[1])
    got = {}
    resumed.on_step = lambda tr, step: got.__setitem__(step, flat_state(tr.model).clone())
    resumed.fit()
    resumed.close()
    assert sorted(got) == [2, 3]
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(full.optimizer.param_groups[0]["lr"])
    # step: halved once at the end of epoch 1; cosine: 0 after the last of 3 steps
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-4 if schedule == "step" else 0.0)
    for step in (2, 3):
        assert torch.equal(got[step], saved[step]), f"step {step} differs after resume"
    assert not torch.equal(saved[3], saved[2])
