import numpy as np
import pytest
import torch

from afb_urr.training.loop import Trainer
from afb_urr.training.validate import evaluate
from training_toys import ToyClips, flat_params, train_cfg


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


def test_validation_leaves_the_training_model_as_it_was(tmp_path):
    """A Segmenter on CPU puts its model in eval mode and channels-last layout; a
    validation mid-run must leave neither behind: the next training step is
    bit-identical to the step of a run that did not validate."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 32, 48, 3), dtype=np.uint8)
    labels = np.zeros((3, 32, 48), dtype=np.int64)
    labels[:, 8:24, 10:30] = 1

    def one_step(validate: bool):
        torch.manual_seed(0)
        sample = ToyClips(1)[0]
        tr = Trainer(train_cfg(tmp_path / str(validate)), train_set=ToyClips(2), val_videos=[(frames, labels)],
                     device="cpu", progress=False)
        try:
            strides = {n: p.stride() for n, p in tr.model.named_parameters()}
            modes = {n: m.training for n, m in tr.model.named_modules()}
            if validate:
                assert tr.validate() is not None
                assert {n: p.stride() for n, p in tr.model.named_parameters()} == strides
                assert {n: m.training for n, m in tr.model.named_modules()} == modes
            tr.train_clip(sample)
            tr.optimizer_step()
            return flat_params(tr.model)
        finally:
            tr.close()

    assert torch.equal(one_step(True), one_step(False))
