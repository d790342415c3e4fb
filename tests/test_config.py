import pytest

from afb_urr.config import InferenceConfig, load_config


def test_shipped_configs():
    assert load_config("configs/davis17.yaml").inference.update_rate == 0.1
    for name in ("youtube_vos", "long_video"):
        cfg = load_config(name)
        assert cfg.inference.update_rate == 0.05
        assert cfg.inference.budget == 300000 and cfg.inference.chunk_bytes > 0
        assert cfg.model.backbone == "resnet50"


def test_defaults_without_a_file():
    assert load_config(None).inference == InferenceConfig()


def test_unknown_key_and_section_are_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("inference:\n  budjet: 10\n")
    with pytest.raises(ValueError, match="budjet"):
        load_config(str(p))
    p.write_text("inferense:\n  budget: 10\n")
    with pytest.raises(ValueError, match="inferense"):
        load_config(str(p))
    p.write_text("inference: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(str(p))
    with pytest.raises(FileNotFoundError, match="no_such_config"):
        load_config("no_such_config")
