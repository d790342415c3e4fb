"""load_referring_model: both released layouts, safe Namespace loading, strictness, errors."""
import argparse
import datetime

import pytest
import torch

from afb_urr.referring import LAVT, ReferringCheckpointError, load_referring_model, save_referring_model
from afb_urr.referring.loading import infer_config, model_from_state_dict
from afb_urr.referring.text import BERT_BASE
from referring_common import light_lavt, tokens, single_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def _outputs(model):
    ids, mask = tokens("the red ball on the left", "a small cube")
    image = torch.randn(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(image, ids, mask)


@pytest.mark.parametrize("layout", ["lavt_one", "lavt"])
def test_round_trip_both_layouts_with_namespace(tmp_path, layout):
    model = light_lavt(5)
    path = str(tmp_path / f"{layout}.pth")
    args = argparse.Namespace(lr=5e-5, swin_type="custom", window12=False, epochs=40)
    save_referring_model(path, model, layout=layout, args=args, epoch=3)
    blob = torch.load(path, map_location="cpu", weights_only=False)
    assert isinstance(blob["args"], argparse.Namespace)
    if layout == "lavt":
        assert not any(k.startswith("text_encoder.") for k in blob["model"])
        assert all(k.startswith(("embeddings.", "encoder.")) for k in blob["bert_model"])
    with pytest.raises(Exception):  # plain weights_only loading refuses the Namespace
        torch.load(path, map_location="cpu", weights_only=True)
    loaded = load_referring_model(path)
    assert not loaded.training
    assert torch.equal(_outputs(loaded), _outputs(model))
    assert loaded.config["bert_config"] == model.config["bert_config"]


def test_bert_without_layers_round_trip(tmp_path):
    from afb_urr.referring import LAVT
    from referring_common import LIGHT_BERT, LIGHT_SWIN
    torch.manual_seed(3)
    model = LAVT(swin=LIGHT_SWIN, window_size=4, bert_config=dict(LIGHT_BERT, num_hidden_layers=0)).eval()
    assert not any(".encoder.layer." in k for k in model.state_dict())  # word embeddings only
    path = str(tmp_path / "bert0.pth")
    save_referring_model(path, model)
    loaded = load_referring_model(path)
    assert loaded.config["bert_config"] == model.config["bert_config"]
    assert torch.equal(_outputs(loaded), _outputs(model))


def test_absolute_position_embedding_round_trip(tmp_path):
    model = light_lavt(7, ape=True, input_size=(40, 56))
    pos = model.state_dict()["backbone.absolute_pos_embed"]
    assert pos.shape == (1, 16, 10, 14)  # the token grid of the input size
    path = str(tmp_path / "ape.pth")
    save_referring_model(path, model)
    loaded = load_referring_model(path)
    assert loaded.config["ape"] is True
    assert torch.equal(_outputs(loaded), _outputs(model))
    blob = torch.load(path, map_location="cpu", weights_only=False)  # no input size stated: the grid's
    cfg = infer_config(blob["model"], {"bert_config": {"num_attention_heads": 2}})
    assert cfg["input_size"] == (40, 56) and cfg["ape"] is True
    ids, mask = tokens("the red ball", "a cube")
    image = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # another image size: the map is resized to its token grid, and it counts
        placed = model(image, ids, mask)
        model.backbone.absolute_pos_embed.zero_()
        unplaced = model(image, ids, mask)
    assert placed.shape == (2, 2, 64, 48) and not torch.allclose(placed, unplaced)


def test_fp16_file_loads_as_fp32(tmp_path):
    model = light_lavt(6)
    path = str(tmp_path / "half.pth")
    save_referring_model(path, model, half=True)
    loaded = load_referring_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.testing.assert_close(_outputs(loaded), _outputs(model), atol=0.05, rtol=0.05)


def test_infers_released_architecture_from_shapes():
    with torch.device("meta"):
        base, tiny = LAVT("base", 12).state_dict(), LAVT("tiny", 7).state_dict()
    cfg = infer_config(base)
    assert cfg["swin"] == "base" and cfg["window_size"] == 12 and cfg["bert_config"] == BERT_BASE
    cfg = infer_config(tiny)
    assert cfg["swin"] == "tiny" and cfg["window_size"] == 7  # 169 table rows


def test_other_model_file_is_a_one_line_error(tmp_path, light_model):
    from afb_urr.checkpoint import save_checkpoint
    path = str(tmp_path / "afb_urr.pth")
    save_checkpoint(path, light_model)
    with pytest.raises(ReferringCheckpointError) as err:
        load_referring_model(path)
    msg = str(err.value)
    assert "\n" not in msg and f"{path} is an AFB-URR (segmentation) checkpoint" in msg
    other = str(tmp_path / "other.pth")
    torch.save({"model": {"head.weight": torch.zeros(2)}}, other)
    with pytest.raises(ReferringCheckpointError) as err:
        load_referring_model(other)
    msg = str(err.value)
    assert "\n" not in msg and "missing keys: backbone.patch_embed.proj.weight" in msg
    assert "unexpected keys: head.weight" in msg


def test_strict_about_extra_missing_and_misshaped_keys(tmp_path):
    model = light_lavt(7)
    state, cfg = model.state_dict(), model.config
    extra = dict(state, **{"backbone.extra.weight": torch.zeros(1)})
    with pytest.raises(ReferringCheckpointError, match="unexpected keys: backbone.extra.weight"):
        model_from_state_dict(extra, cfg)
    missing = {k: v for k, v in state.items() if k != "classifier.conv1_1.bias"}
    with pytest.raises(ReferringCheckpointError, match="missing keys: classifier.conv1_1.bias"):
        model_from_state_dict(missing, cfg)
    bad = dict(state, **{"classifier.conv1_1.bias": torch.zeros(3)})
    with pytest.raises(ReferringCheckpointError, match="shape mismatches: classifier.conv1_1.bias"):
        model_from_state_dict(bad, cfg)


def test_newer_transformers_position_ids_and_module_prefix_are_accepted(tmp_path):
    model = light_lavt(8)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.text_encoder.embeddings.position_ids"] = torch.arange(32)[None]
    path = str(tmp_path / "ddp.pth")
    torch.save({"model": state, "config": model.config}, path)
    assert torch.equal(_outputs(load_referring_model(path)), _outputs(model))


class _Custom:
    pass


def test_unlisted_classes_are_refused_not_unpickled(tmp_path):
    path = str(tmp_path / "odd.pth")
    torch.save({"model": light_lavt(9).state_dict(), "args": _Custom(), "when": datetime.date(2022, 6, 1)}, path)
    with pytest.raises(ReferringCheckpointError, match="weights_only=True") as err:
        load_referring_model(path)
    assert "\n" not in str(err.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_referring_model("nowhere.pth")
