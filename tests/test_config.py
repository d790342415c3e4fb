"""afb_urr.config: the explicit schema of every section, read in one place."""
import dataclasses
import glob

import pytest

from afb_urr import FeatureBank, Segmenter
from afb_urr.config import SECTIONS, DataConfig, InferenceConfig, TrainConfig, load_config


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


def test_every_section_is_known_without_imports():
    cfg = load_config("train_synthetic")
    assert set(SECTIONS) == {"model", "inference", "data", "train", "val", "referring", "outline"}
    assert isinstance(cfg.train, TrainConfig) and cfg.train.batchnorm == "track"
    assert isinstance(cfg.data, DataConfig) and cfg.data.dataset == "synthetic"
    assert cfg.val.videos == 8 and cfg.model.backbone == "resnet18"


def test_sections_a_caller_understands(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  backbone: resnet18\ninference:\n  budget: 10\ntrain:\n  lr: -1\n")
    with pytest.raises(ValueError, match="train.lr must be positive"):
        load_config(str(p))
    cfg = load_config(str(p), sections=("model", "inference"))  # the train section is skipped
    assert cfg.inference.budget == 10 and cfg.model.backbone == "resnet18" and cfg.train == TrainConfig()
    p.write_text("inference:\n  budget: 10\nreferrin: {}\n")
    with pytest.raises(ValueError, match="referrin"):
        load_config(str(p), sections=("inference",))
    with pytest.raises(ValueError, match="unknown section"):
        load_config(None, sections=("nope",))


def test_inference_config_feeds_the_bank_and_the_segmenter(light_model):
    cfg = InferenceConfig(budget=1234, update_rate=0.05, merge_threshold=0.9, readout_threshold=1e-4)
    bank = FeatureBank(2, cfg)
    assert (bank.budget, bank.update_rate, bank.merge_threshold, bank.readout_threshold) == (1234, 0.05, 0.9, 1e-4)
    assert FeatureBank(2, cfg, budget=99).budget == 99  # keywords override the config
    default = FeatureBank(2)
    assert (default.budget, default.update_rate, default.merge_threshold, default.readout_threshold) == \
        (300000, 0.1, 0.95, 1e-3)
    seg = Segmenter(light_model, cfg, device="cpu", update_rate=None, new_object="keep")
    assert seg.config == InferenceConfig(budget=1234, update_rate=0.05, merge_threshold=0.9,
                                         readout_threshold=1e-4, new_object="keep")
    assert seg.bank.budget == 1234 and seg.bank.readout_threshold == 1e-4
    with pytest.raises(TypeError):
        FeatureBank(2, cfg, budjet=5)


def test_referring_section_marks_a_referring_run(tmp_path):
    from afb_urr.config import ReferringConfig
    assert load_config("train_synthetic").referring is None
    assert "referring" not in load_config("train_synthetic").as_dict()
    assert load_config("train_referring_synthetic_iou").referring.iou_weight == 1.0
    hires = load_config("train_referring_synthetic_hires").referring  # the third stage: the second's, finer input
    assert hires.input_size == (96, 168) and hires.iou_weight == 1.0
    assert {k: v for k, v in hires.__dict__.items() if k != "input_size"} == {
        k: v for k, v in load_config("train_referring_synthetic_iou").referring.__dict__.items() if k != "input_size"}
    grafted, cycle = load_config("train_referring_synthetic_grafted"), load_config("train_referring_synthetic_cycle")
    assert cycle.referring == grafted.referring  # a cycle changes the schedule only
    assert (cycle.train.lr, cycle.train.warmup_steps, cycle.train.epochs) == (3e-4, 50, grafted.train.epochs)
    contrast = load_config("train_referring_synthetic_contrast")  # the cycle over more videos, with contrast samples
    changed = {"num_videos": 4000, "cache_size": 4000, "contrast_share": 0.25}
    assert {k: v for k, v in contrast.referring.__dict__.items() if k not in changed} == {
        k: v for k, v in cycle.referring.__dict__.items() if k not in changed}
    assert {k: getattr(contrast.referring, k) for k in changed} == changed
    assert (contrast.train.lr, contrast.train.epochs) == (cycle.train.lr, 14)
    # the contrast config at the videos' size, without contrast samples
    native = load_config("train_referring_synthetic_native")
    changed = {"input_size": (120, 216), "contrast_share": 0.0}
    assert {k: v for k, v in native.referring.__dict__.items() if k not in changed} == {
        k: v for k, v in contrast.referring.__dict__.items() if k not in changed}
    assert {k: getattr(native.referring, k) for k in changed} == changed
    assert native.referring.input_size == contrast.referring.video_size
    assert (native.train.lr, native.train.epochs) == (contrast.train.lr, 9)
    native_contrast = load_config("train_referring_synthetic_native_contrast")  # its middle cycle
    assert native_contrast.referring == dataclasses.replace(native.referring, contrast_share=0.25)
    assert native_contrast.train.epochs == native.train.epochs
    cfg = load_config("train_referring_synthetic")
    rc = cfg.referring
    assert isinstance(rc, ReferringConfig) and rc.input_size == (64, 112) and rc.class_weights == (0.9, 1.1)
    assert rc.swin["embed_dim"] == 16 and rc.bert["num_hidden_layers"] == 2
    assert cfg.train.lr_schedule == "poly" and cfg.train.poly_power == 0.9
    assert cfg.as_dict()["referring"]["batch_size"] == rc.batch_size
    p = tmp_path / "r.yaml"
    for body, message in (("referring: {input_sise: [8, 8]}", "input_sise"),
                          ("referring: {input_size: [16, 16]}", "above 32"),
                          ("referring: {heldout_fraction: 1.0}", "heldout_fraction"),
                          ("referring: {class_weights: [1.0]}", "class_weights"),
                          ("referring: {bert: {vocab_size: 9}}", "comes from the vocabulary"),
                          ("referring: {sampling: rare}", "referring.sampling"),
                          ("referring: {iou_weight: -1}", "referring.iou_weight"),
                          ("referring: {contrast_share: 2}", "referring.contrast_share"),
                          ("referring: {val_objects: [3, 2]}", "referring.val_objects"),
                          ("referring: {val_objects: [2]}", "referring.val_objects"),
                          ("train: {lr_schedule: poly, poly_power: 0}", "poly_power"),
                          ("train: {no_decay: ['']}", "no_decay")):
        p.write_text(body + "\n")
        with pytest.raises(ValueError, match=message):
            load_config(str(p))
    p.write_text("referring:\n")
    assert load_config(str(p)).referring == ReferringConfig()


def test_every_shipped_config_reads():
    names = sorted(glob.glob("configs/*.yaml"))
    assert len(names) >= 10
    for name in names:
        load_config(name)  # raises on an unknown key or a bad value


def test_gpu_referring_config_continues_the_committed_light_weights():
    """scripts/gpu_referring.sh starts configs/train_referring_synthetic_gpu.yaml from
    weights/demo_referring_light.pth: the shapes must agree (--init refuses any difference)."""
    from afb_urr.referring import load_referring_model, load_tokenizer
    from afb_urr.training.referring import shape_differences
    rc = load_config("train_referring_synthetic_gpu").referring
    model = load_referring_model("weights/demo_referring_light.pth")
    vocab = load_tokenizer("weights/demo_referring_light_vocab.txt").vocab_size
    assert shape_differences(model, rc, vocab) == []
    assert rc.input_size == tuple(model.config["input_size"])  # it goes on at the weights' own size
    assert shape_differences(model, load_config("train_referring_synthetic_hires").referring, vocab) == []
