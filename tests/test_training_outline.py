"""Outline pretraining: the teacher and trunk networks, distillation, the graft into a LAVT,
and the trainer (tiny runs)."""
import numpy as np
import pytest
import torch
from torch import nn

from afb_urr.checkpoint import CheckpointError
from afb_urr.config import Config, OutlineConfig, ReferringConfig, TrainConfig
from afb_urr.referring import load_referring_model
from afb_urr.referring.loading import vocab_file_for
from afb_urr.training.outline import OutlineTrainer, graft, is_trunk_key
from afb_urr.training.outline_nets import OutlineTeacher, OutlineTrunk, distill_loss, object_hits
from referring_common import light_lavt, tokens

TINY = dict(swin={"embed_dim": 8, "depths": [1, 1, 2, 1], "num_heads": [1, 1, 2, 2]}, window_size=4,
            bert={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                  "max_position_embeddings": 24}, input_size=(40, 72), video_size=(60, 108), ape=True,
            batch_size=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is as fast


def tiny_cfg(out, net="teacher", teacher="", val_videos=2, **train) -> Config:
    tc = dict(lr=3e-3, no_decay=["norm", "bias"], epochs=1, batchnorm="train", num_workers=0,
              output_dir=str(out), log_every=1)
    tc.update(train)
    return Config(train=TrainConfig(**tc), referring=ReferringConfig(val_videos=0, **TINY),
                  outline=OutlineConfig(net=net, teacher=teacher, teacher_widths=(8, 8, 16, 16), num_videos=3,
                                        val_videos=val_videos))


def test_teacher_maps_lie_on_the_swin_stages_grids():
    lavt = light_lavt(window=4)
    for size in ((96, 168), (70, 90)):
        image = torch.randn(1, 3, *size)
        logits, maps = OutlineTeacher()(image)
        trunk_logits, trunk_maps = OutlineTrunk(lavt)(image)
        assert logits.shape == trunk_logits.shape == (1, 4, *size)
        assert [m.shape[-2:] for m in maps] == [m.shape[-2:] for m in trunk_maps]
        assert [m.shape[1] for m in maps] == [32, 64, 96, 128]


def test_a_lavt_with_closed_gates_feeds_its_stages_the_trunks_maps():
    lavt = light_lavt(window=4, ape=True, input_size=(64, 96))
    closed = graft(lavt)
    seen = []
    hooks = [s.fusion.register_forward_hook(lambda m, args, out: seen.append(args[0])) for s in closed.backbone.layers]
    ids, mask = tokens("the red ball", "a small cube on the left")
    image = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        closed(image, ids, mask)
        maps = closed.backbone.visual_maps(image)
    for h in hooks:
        h.remove()
    for x, m in zip(seen, maps):  # PWAM's visual input = the Swin blocks' output of that stage
        assert torch.allclose(x.transpose(1, 2).reshape(m.shape), m, atol=1e-6)
    seen.clear()  # with the gates open (as built) the second stage saw language: other inputs
    lavt.backbone.layers[1].fusion.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        lavt(image, ids, mask)
    assert torch.allclose(lavt.backbone.visual_maps(image)[1], maps[1])  # the trunk is the same
    assert not torch.allclose(seen[0].transpose(1, 2).reshape(maps[1].shape), maps[1], atol=1e-4)


def test_graft_takes_the_trunk_from_one_lavt_and_the_rest_as_asked():
    trunk, base = light_lavt(seed=1, window=4), light_lavt(seed=2, window=4)
    t, b = trunk.state_dict(), base.state_dict()
    for parts in ("text", "all"):
        out = graft(trunk, base, parts).state_dict()
        for k, v in out.items():
            if ".res_gate.2." in k:
                assert not v.any(), k
            elif is_trunk_key(k):
                assert torch.equal(v, t[k]), k
            elif k.startswith("text_encoder.") or parts == "all":
                assert torch.equal(v, b[k]), k
            else:
                assert torch.equal(v, t[k]), k
    assert is_trunk_key("backbone.layers.2.blocks.0.attn.qkv.weight") and not is_trunk_key("backbone.norm0.weight")
    from afb_urr.referring import LAVT
    from referring_common import LIGHT_BERT, LIGHT_SWIN
    narrow = LAVT(swin=LIGHT_SWIN, window_size=4, bert_config=dict(LIGHT_BERT, hidden_size=16))
    with pytest.raises(ValueError, match="graft: text_encoder.*in the base LAVT"):
        graft(trunk, narrow, "text")


def test_distill_loss_is_the_mean_of_variance_scaled_errors():
    maps = [torch.randn(2, 3, 4, 5), torch.randn(2, 3, 2, 3)]
    targets = [3 * torch.randn(2, 3, 4, 5), torch.randn(2, 3, 2, 3) + 1]
    ident = nn.ModuleList([nn.Identity(), nn.Identity()])
    want = np.mean([((m - t) ** 2).mean().item() / t.var().item() for m, t in zip(maps, targets)])
    assert distill_loss(ident, maps, targets).item() == pytest.approx(want, rel=1e-5)
    assert distill_loss(ident, targets, targets).item() == 0


def test_object_hits_names_each_object_by_its_summed_logits():
    instance = torch.tensor([[[0, 1, 1, 2], [0, 1, 3, 2]]])
    label = torch.tensor([[[0, 2, 2, 3], [0, 2, 1, 3]]])
    logits = torch.zeros(1, 4, 2, 4)
    logits[0, 0] = 9.0                            # background is never a kind
    logits[0, 2, 0, 1] = logits[0, 2, 1, 1] = 1   # object 1 (a rectangle): rectangle 2 in all ...
    logits[0, 3, 0, 2] = 5                        # ... polygon 5 from one pixel: named a polygon
    logits[0, 1, :, 3] = 1                        # object 2 (a polygon): named an ellipse
    logits[0, 1, 1, 2] = 1                        # object 3 (an ellipse, one pixel): named right
    assert object_hits(logits, label, instance, min_pixels=1) == (1, 3)
    logits[0, 3, 0, 2] = 1                        # now object 1: rectangle 2 > polygon 1
    assert object_hits(logits, label, instance, min_pixels=1) == (2, 3)
    assert object_hits(logits, label, instance, min_pixels=2) == (1, 2)


def test_teacher_then_distilled_trunk_then_a_lavt_to_start_from(tmp_path):
    tr = OutlineTrainer(tiny_cfg(tmp_path / "teacher", max_steps=3, warmup_steps=0), device="cpu", progress=False)
    before = tr.validate()["object_accuracy"]
    tr.fit()
    with pytest.raises(ValueError, match="teacher"):
        tr.export(str(tmp_path / "x.pth"))
    tr.close()
    assert 0 <= before <= 1 and len(tr.val_history) == 2 and tr.history[-1]["uncertainty"] == 0
    teacher = str(tmp_path / "teacher" / "latest.pth")
    cfg = tiny_cfg(tmp_path / "trunk", net="trunk", teacher=teacher, max_steps=2, warmup_steps=0)
    cfg.outline.distill_weight = 2.0
    tr = OutlineTrainer(cfg, device="cpu", progress=False)
    batch = tr.train_set[0]
    loss, ce, kd = tr.clip_loss(batch)
    assert kd > 0 and loss.item() == pytest.approx(ce.item() + 2.0 * kd.item(), rel=1e-5)
    tr.fit()
    assert "LAVT" in tr.export(str(tmp_path / "grafted.pth"))
    tr.close()
    lavt = load_referring_model(str(tmp_path / "grafted.pth"))
    trained = tr.model.lavt.state_dict()
    for k, v in lavt.state_dict().items():
        if is_trunk_key(k):
            assert torch.equal(v, trained[k]), k
    assert not lavt.backbone.layers[1].res_gate[2].weight.any()
    assert open(vocab_file_for(str(tmp_path / "grafted.pth"))).read() == open(tr.vocab_path).read()


def test_resume_continues_exactly(tmp_path):
    whole = OutlineTrainer(tiny_cfg(tmp_path / "a", max_steps=4, val_videos=0), device="cpu", progress=False)
    whole.fit()
    whole.close()
    half = OutlineTrainer(tiny_cfg(tmp_path / "b", max_steps=2, val_videos=0), device="cpu", progress=False)
    half.fit()
    half.close()
    rest = OutlineTrainer(tiny_cfg(tmp_path / "b", max_steps=4, val_videos=0), resume=str(tmp_path / "b" / "latest.pth"),
                          device="cpu", progress=False)
    rest.fit()
    rest.close()
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, rest.model.state_dict()[k]), k


def test_bad_outline_settings_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="outline.net"):
        OutlineConfig(net="cnn")
    with pytest.raises(ValueError, match="outline.graft"):
        OutlineConfig(graft="bert")
    with pytest.raises(ValueError, match="needs an 'outline' and a 'referring'"):
        OutlineTrainer(Config(train=TrainConfig(output_dir=str(tmp_path)), outline=OutlineConfig()), device="cpu")
    with pytest.raises(FileNotFoundError, match="outline.graft_from not found"):
        cfg = tiny_cfg(tmp_path / "g", net="trunk")
        cfg.outline.graft_from = str(tmp_path / "missing.pth")
        OutlineTrainer(cfg, device="cpu", progress=False)
    lavt_file = tmp_path / "lavt.pth"
    from afb_urr.referring import save_referring_model
    save_referring_model(str(lavt_file), light_lavt())
    with pytest.raises(CheckpointError, match="not an outline OutlineTeacher") as e:
        OutlineTrainer(tiny_cfg(tmp_path / "t", net="trunk", teacher=str(lavt_file)), device="cpu", progress=False)
    assert "\n" not in str(e.value)
