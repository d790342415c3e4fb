"""Referring (LAVT) training on the shared trainer: a tiny config learns, resumes exactly,
writes lavt_one checkpoints and scores held-out expressions."""
import shutil

import numpy as np
import pytest
import torch

from afb_urr.config import Config, ReferringConfig, TrainConfig
from afb_urr.referring import load_referring_model, load_tokenizer
from afb_urr.referring.loading import read_checkpoint, vocab_file_for
from afb_urr.training.referring import ReferringTrainer, referring_scores
from afb_urr.training.referring_data import heldout_samples, training_batches

TINY = dict(swin={"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]}, window_size=4,
            bert={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                  "max_position_embeddings": 24}, input_size=(40, 48), num_frames=2, video_size=(60, 108),
            cache_size=8)


def tiny_cfg(out, num_videos=4, batch_size=2, val_videos=0, **train) -> Config:
    tc = dict(lr=3e-3, lr_schedule="poly", no_decay=["norm", "relative_position_bias_table"], epochs=50,
              batchnorm="train", num_workers=0, output_dir=str(out), log_every=1)
    tc.update(train)
    return Config(train=TrainConfig(**tc),
                  referring=ReferringConfig(num_videos=num_videos, batch_size=batch_size, val_videos=val_videos,
                                            **TINY))


def flat(model):
    return torch.cat([v.detach().float().flatten() for v in model.state_dict().values()])


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is as fast


def test_training_batches_follow_the_published_preprocessing(tmp_path):
    cfg = tiny_cfg(tmp_path)
    from afb_urr.training.referring_data import vocabulary
    tok, path = vocabulary(cfg.referring, str(tmp_path))
    data = training_batches(cfg.referring, tok, seed=0)
    assert len(data) == 2
    batch = data[1]
    assert batch["image"].shape == (2, 3, 40, 48) and batch["mask"].shape == (2, 40, 48)
    assert batch["token_ids"].shape == (2, 20) and batch["token_ids"][:, 0].eq(tok.cls).all()
    assert set(batch["mask"].unique().tolist()) <= {0, 1} and batch["mask"].sum() > 0
    data.set_epoch(0)
    assert torch.equal(data[1]["image"], batch["image"])  # a function of (seed, epoch, index)
    data.set_epoch(1)
    assert data[1]["expression"] != batch["expression"] or not torch.equal(data[1]["image"], batch["image"])


def test_kind_sampling_and_contrast_share_reach_the_training_batches(tmp_path):
    cfg = tiny_cfg(tmp_path, num_videos=6)
    cfg.referring.sampling, cfg.referring.contrast_share = "kind", 0.3
    from afb_urr.training.referring_data import vocabulary
    tok, _ = vocabulary(cfg.referring, str(tmp_path))
    data = training_batches(cfg.referring, tok, seed=0)
    assert data.samples.sampling == "kind" and data.samples.contrast_share == 0.3
    batch = data[0]
    pool = {text for entries in data.samples.pool().values() for *_, text in entries}
    assert batch["mask"].shape == (2, 40, 48) and set(batch["expression"]) <= pool


def test_loss_decreases_and_the_checkpoint_loads_as_a_lavt(tmp_path):
    tr = ReferringTrainer(tiny_cfg(tmp_path, num_videos=2, max_steps=25, warmup_steps=0), device="cpu",
                          progress=False)
    tr.fit()
    tr.export(str(tmp_path / "light.pth"))
    tr.close()
    losses = [row["loss"] for row in tr.history]
    assert len(losses) == 25 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    model = load_referring_model(str(tmp_path / "light.pth"))
    assert model.config["input_size"] == [40, 48]
    assert model.vocab_digest == load_tokenizer(vocab_file_for(str(tmp_path / "light.pth"))).digest
    assert torch.allclose(flat(model), flat(tr.model).half().float())
    blob = read_checkpoint(str(tmp_path / "latest.pth"))
    assert blob["step"] == 25 and blob["run_config"]["referring"]["batch_size"] == 2


def test_iou_weight_adds_the_soft_iou_term_to_the_logged_loss(tmp_path):
    cfg = tiny_cfg(tmp_path, num_videos=2, max_steps=2, warmup_steps=0)
    cfg.referring.iou_weight = 2.0
    tr = ReferringTrainer(cfg, device="cpu", progress=False)
    batch = tr.train_set[0]
    tr.net.eval()  # BERT's dropout off: both passes below give the same logits
    loss, ce, _ = tr.clip_loss(batch)
    with torch.no_grad():
        logits = tr.net(batch["image"], batch["token_ids"], batch["attention_mask"])
    from afb_urr.training.loss import referring_loss, soft_iou_loss
    assert ce.item() == pytest.approx(referring_loss(logits, batch["mask"]).item(), rel=1e-5)
    assert loss.item() == pytest.approx(ce.item() + 2.0 * soft_iou_loss(logits, batch["mask"]).item(), rel=1e-5)
    tr.close()


def _exported_tiny(tmp_path, **referring):
    """A tiny referring run's exported fp16 weights (one step), with ``referring`` fields changed."""
    cfg = tiny_cfg(tmp_path / "first", num_videos=2, max_steps=1, warmup_steps=0)
    for k, v in referring.items():
        setattr(cfg.referring, k, v)
    tr = ReferringTrainer(cfg, device="cpu", progress=False)
    tr.fit()
    tr.export(str(tmp_path / "first.pth"))
    tr.close()
    return str(tmp_path / "first.pth")


def test_init_from_a_lavt_of_another_shape_is_a_one_line_error(tmp_path):
    from afb_urr.checkpoint import CheckpointError
    weights = _exported_tiny(tmp_path, swin={"embed_dim": 8, "depths": [1, 1, 2, 1], "num_heads": [1, 1, 2, 2]})
    with pytest.raises(CheckpointError) as e:
        ReferringTrainer(tiny_cfg(tmp_path / "second", num_videos=2, max_steps=1), init=weights, device="cpu",
                         progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "swin.depths (1, 1, 2, 1) vs (1, 1, 1, 1)" in msg, msg


def test_init_at_another_input_size_continues_at_the_configs(tmp_path):
    """The file's model, its position embedding resized as its forward would: same logits at the new size."""
    weights = _exported_tiny(tmp_path, ape=True)
    cfg = tiny_cfg(tmp_path / "second", num_videos=2, max_steps=1)
    cfg.referring.ape, cfg.referring.input_size = True, (56, 64)
    tr = ReferringTrainer(cfg, init=weights, device="cpu", progress=False)
    before = load_referring_model(weights)
    assert before.config["input_size"] == [40, 48] and tr.model.config["input_size"] == [56, 64]
    assert tr.model.backbone.absolute_pos_embed.shape == (1, 8, 14, 16)
    tr.model.eval()
    image, ids, att = torch.randn(2, 3, 56, 64), torch.randint(5, 20, (2, 20)), torch.ones(2, 20, dtype=torch.long)
    with torch.no_grad():
        assert torch.allclose(tr.model(image, ids, att), before(image, ids, att), atol=1e-5)
    tr.close()


def test_resume_reproduces_the_next_steps_exactly(tmp_path):
    saved = {}

    def keep(tr, step):
        if step == 2:
            shutil.copy(tr.latest_path, tmp_path / "step2.pth")
        saved[step] = flat(tr.model).clone()

    full = ReferringTrainer(tiny_cfg(tmp_path / "a", num_videos=6, max_steps=4, checkpoint_steps=1,
                                     warmup_steps=2), device="cpu", progress=False, on_step=keep)
    full.fit()
    full.close()
    resumed = ReferringTrainer(tiny_cfg(tmp_path / "b", num_videos=6, max_steps=4, warmup_steps=2),
                               resume=str(tmp_path / "step2.pth"), device="cpu", progress=False)
    assert (resumed.step, resumed.epoch, resumed.batch) == (2, 0, 2)
    assert torch.equal(flat(resumed.model), saved[2])
    got = {}
    resumed.on_step = lambda tr, step: got.__setitem__(step, flat(tr.model).clone())
    resumed.fit()
    resumed.close()
    assert sorted(got) == [3, 4]
    assert torch.equal(got[4], saved[4])
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history][2:]


def test_validation_scores_heldout_descriptions_on_val_videos(tmp_path):
    rc = tiny_cfg(tmp_path, val_videos=8).referring
    samples = heldout_samples(rc, "train")
    assert samples and all(s["video"].startswith("val_") for s in samples)
    tr = ReferringTrainer(tiny_cfg(tmp_path, val_videos=8, max_steps=1), device="cpu", progress=False)
    tr.fit()
    tr.close()
    row = tr.val_history[-1]
    assert set(row) == {"step", "mIoU", "oIoU", "mIoU_wording"} and 0 <= row["mIoU"] <= 1
    assert open(tmp_path / "val.csv").readline().strip() == "step,epoch,mIoU,oIoU,mIoU_wording"


def test_held_out_videos_can_have_other_object_counts_than_training(tmp_path):
    rc = tiny_cfg(tmp_path, val_videos=12).referring
    assert rc.val_objects == (1, 3)  # default: the training counts
    rc = ReferringConfig(**dict(TINY, min_objects=4, max_objects=5, val_objects=[1, 2], val_videos=12))
    counts = {len(np.unique(s["labels"])) - 1 for s in heldout_samples(rc, "train")}
    assert counts and max(counts) <= 2
    from afb_urr.training.referring_data import vocabulary
    train = training_batches(rc, vocabulary(rc, str(tmp_path))[0], seed=0).samples
    assert min(len(train.videos[i].objects) for i in range(4)) >= 4


def test_scores_match_hand_counted_ious(tmp_path):
    class Half(torch.nn.Module):  # object logit on the left half of the input, whatever the words
        config = {"input_size": [40, 48]}

        def forward(self, image, ids, mask):
            out = torch.zeros(image.shape[0], 2, *image.shape[-2:])
            out[:, 1, :, :24] = 1.0
            return out

    left = np.zeros((40, 48), bool)
    left[:, :24] = True
    top = np.zeros((40, 48), bool)
    top[:20] = True
    frame = np.zeros((40, 48, 3), np.uint8)
    samples = [{"image": frame, "mask": m, "expression": "the shape"} for m in (left, top, np.zeros_like(top))]
    from afb_urr.data.referring import write_vocab
    write_vocab(str(tmp_path / "vocab.txt"))
    tok = load_tokenizer(str(tmp_path / "vocab.txt"))
    s = referring_scores(Half(), samples, tok, "cpu")
    # IoUs: left 1, top 480 / 1440 = 1/3, empty truth 0 (the prediction is not empty)
    assert s["mIoU"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert s["oIoU"] == pytest.approx((960 + 480) / (960 + 1440 + 960))
    assert s["P@0.5"] == pytest.approx(1 / 3) and s["samples"] == 3
    assert s["picked"] == [None, None, None]  # no label maps given
    # objects 1 (all of it in the left half), 2 (4 of its 10 columns there), 3 (none of it)
    labels = np.zeros((40, 48), np.uint8)
    labels[:10, :10], labels[:10, 20:30], labels[30:, 30:40] = 1, 2, 3
    picked = [dict(samples[0], mask=labels == k, labels=labels, label=k) for k in (1, 2, 3)]
    assert referring_scores(Half(), picked, tok, "cpu")["picked"] == [True, False, False]
    from afb_urr.training.referring import picks_the_object
    pred = torch.from_numpy(left)
    assert not picks_the_object(torch.zeros_like(pred), torch.from_numpy(labels), 1)  # an empty mask picks nothing
    labels[:10, :10] = 0  # without object 1, object 2 is the one covered most
    assert picks_the_object(pred, torch.from_numpy(labels), 2)

