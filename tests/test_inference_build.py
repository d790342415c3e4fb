"""afb_urr.inference.build: the one factory from weights, config and device to a Segmenter."""
import pytest
import torch

from afb_urr import AFBURR, Segmenter, build_segmenter, save_checkpoint
from afb_urr.config import InferenceConfig
from afb_urr.inference import resolve_device, segmenter_factory


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'gpu0' is not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_checkpoint_config_and_overrides(light_model, tmp_path):
    path = tmp_path / "r18.pth"
    save_checkpoint(str(path), light_model)
    seg = build_segmenter(str(path), "long_video", "cpu", budget=5000, merge_threshold=None)
    assert isinstance(seg, Segmenter) and seg.device == torch.device("cpu")
    assert seg.config.update_rate == pytest.approx(0.05) and seg.bank.budget == 5000
    assert seg.config.merge_threshold == 0.95
    for k, v in light_model.state_dict().items():
        assert torch.equal(seg.model.state_dict()[k].contiguous(), v.contiguous()), k
    with pytest.raises(ValueError, match="checkpoint not found"):
        build_segmenter(str(tmp_path / "absent.pth"), device="cpu")
    with pytest.raises(TypeError):
        build_segmenter(light_model, device="cpu", budjet=3)


def test_model_or_random_network_and_inference_config(light_model):
    seg = build_segmenter(light_model, InferenceConfig(budget=777), "cpu", channels_last=False)
    assert seg.model is light_model and seg.bank.budget == 777 and not seg.channels_last
    torch.manual_seed(0)
    seg = build_segmenter(None, "train_synthetic", "cpu")  # its model section: resnet18
    assert isinstance(seg.model, AFBURR) and seg.model.backbone == "resnet18"


def test_factory_loads_once_and_makes_fresh_segmenters(light_model, tmp_path, monkeypatch):
    path = tmp_path / "r18.pth"
    save_checkpoint(str(path), light_model)
    from afb_urr.inference import build
    loads = []
    real = build.load_model
    monkeypatch.setattr(build, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    make = segmenter_factory(str(path), None, "cpu")
    assert loads == []  # nothing is loaded until a Segmenter is asked for
    a, b = make(), make()
    assert a is not b and a.bank is not b.bank and a.model is b.model and len(loads) == 1
