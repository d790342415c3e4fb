import datetime

import pytest
import torch

from afb_urr import AFBURR, load_model, save_checkpoint
from afb_urr.checkpoint import CheckpointError, infer_backbone


def test_published_format_roundtrip(tmp_path, light_model):
    path = tmp_path / "ckpt.pth"
    opt = torch.optim.AdamW(light_model.parameters(), lr=1e-5)
    save_checkpoint(str(path), light_model, epoch=3, optimizer=opt, loss=0.25, seed=7)
    blob = torch.load(path, weights_only=True)
    assert {"epoch", "model", "optimizer", "loss", "seed"} <= set(blob)
    assert blob["epoch"] == 3 and blob["seed"] == 7 and blob["loss"] == 0.25
    model = load_model(str(path))
    assert model.backbone == "resnet18" and not model.training
    for k, v in light_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_resnet50_backbone_inferred_and_module_prefix_stripped(tmp_path):
    model = AFBURR("resnet50")
    state = {"module." + k: v for k, v in model.state_dict().items()}  # DDP-wrapped save
    path = tmp_path / "published.pth"
    torch.save({"epoch": 0, "model": state, "optimizer": None, "loss": 0.0, "seed": 0}, path)
    loaded = load_model(str(path))
    assert loaded.backbone == "resnet50"
    assert torch.equal(loaded.keyval_r4.Key.weight, model.keyval_r4.Key.weight)


def test_fp16_checkpoint_loads_as_fp32(tmp_path, light_model):
    path = tmp_path / "half.pth"
    save_checkpoint(str(path), light_model, half=True)
    assert torch.load(path, weights_only=True)["model"]["keyval_r4.Key.weight"].dtype == torch.float16
    model = load_model(str(path))
    assert model.keyval_r4.Key.weight.dtype == torch.float32
    torch.testing.assert_close(model.keyval_r4.Key.weight, light_model.keyval_r4.Key.weight,
                               rtol=1e-3, atol=1e-3)


def test_checkpoint_of_another_model_names_keys(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    path = tmp_path / "other.pth"
    torch.save({"model": other.state_dict()}, path)
    with pytest.raises(CheckpointError, match="not an AFB-URR checkpoint"):
        load_model(str(path))


def test_missing_and_unexpected_keys_are_listed(tmp_path, light_model):
    state = dict(light_model.state_dict())
    del state["decoder.pred2.bias"]
    state["decoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as e:
        load_model(str(path))
    assert "missing keys: decoder.pred2.bias" in str(e.value)
    assert "unexpected keys: decoder.extra.weight" in str(e.value)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        load_model(str(bad))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_model(str(tmp_path / "nope.pth"))


def test_text_file_is_not_a_checkpoint_in_one_line(tmp_path):
    text = tmp_path / "weights.txt"
    text.write_text("model: resnet50\nepochs: 10\n")
    with pytest.raises(CheckpointError) as e:
        load_model(str(text))
    assert "weights.txt is not a checkpoint" in str(e.value) and "\n" not in str(e.value)
    # a torch file that weights_only refuses: the first line of PyTorch's advice only
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"model": datetime.date(2020, 1, 1)}, unsafe)
    with pytest.raises(CheckpointError) as e:
        load_model(str(unsafe))
    assert "unsafe.pth" in str(e.value) and "\n" not in str(e.value)


def test_infer_backbone(light_model):
    assert infer_backbone(light_model.state_dict()) == "resnet18"
    with pytest.raises(CheckpointError):
        infer_backbone({"foo": torch.zeros(1)})
