"""Defaults for people, presets for benchmarks: --video, --videos and VideoSession use
new_object "keep" and eviction "minimal" (README, Measurements); --dataset keeps its
config's published "reset" and "threshold"; --eviction / --new-object choose."""
import numpy as np
import pytest
from PIL import Image

import afb_urr.inference as inference
from afb_urr.cli import infer
from afb_urr.config import USER_EVICTION, USER_NEW_OBJECT
from afb_urr.inference import VideoSession
from afb_urr.io import write_mask


class Built(Exception):
    """Stops a run once its first Segmenter is made."""


@pytest.fixture
def made(monkeypatch):
    configs = []
    real = inference.segmenter_factory

    def spy(*a, **k):
        make = real(*a, **k)

        def factory():
            configs.append(make().config)
            raise Built
        return factory
    monkeypatch.setattr(inference, "segmenter_factory", spy)
    return configs


@pytest.fixture
def inputs(light_model, tmp_path):
    from afb_urr import save_checkpoint
    save_checkpoint(str(tmp_path / "r18.pth"), light_model)
    for seq in ("a",):
        for i in range(2):
            folder = tmp_path / "DAVIS" / "JPEGImages" / "480p" / seq
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(folder / f"{i:05d}.jpg")
        m = np.zeros((32, 48), np.uint8)
        m[4:12, 4:12] = 1
        write_mask(str(tmp_path / "DAVIS" / "Annotations" / "480p" / seq / "00000.png"), m)
    (tmp_path / "DAVIS" / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt").write_text("a\n")
    return tmp_path


def _config(made, argv, tmp_path):
    rc = infer.main(argv + ["--weights", str(tmp_path / "r18.pth"), "--device", "cpu", "--no-progress"])
    assert rc == 1 and len(made) == 1
    return made.pop()


def test_video_defaults_for_people_dataset_keeps_published(made, inputs, capsys):
    seq = str(inputs / "DAVIS" / "JPEGImages" / "480p" / "a")
    cfg = _config(made, ["--video", seq, "--out", str(inputs / "o1")], inputs)
    assert (cfg.eviction, cfg.new_object) == (USER_EVICTION, USER_NEW_OBJECT) == ("minimal", "keep")
    cfg = _config(made, ["--video", seq, "--out", str(inputs / "o2"), "--eviction", "threshold"], inputs)
    assert cfg.eviction == "threshold"
    cfg = _config(made, ["--dataset", "davis17", "--root", str(inputs / "DAVIS"), "--out",
                         str(inputs / "o3")], inputs)
    assert (cfg.eviction, cfg.new_object) == ("threshold", "reset")
    cfg = _config(made, ["--dataset", "davis17", "--root", str(inputs / "DAVIS"), "--out",
                         str(inputs / "o4"), "--eviction", "minimal"], inputs)
    assert cfg.eviction == "minimal"


def test_video_session_defaults(light_model):
    frames = [np.zeros((32, 48, 3), np.uint8)] * 2
    s = VideoSession(frames, light_model, device="cpu")
    assert (s.config.eviction, s.config.new_object) == ("minimal", "keep")
    s.close()
    s = VideoSession(frames, light_model, device="cpu", eviction="threshold", new_object="reset")
    assert (s.config.eviction, s.config.new_object) == ("threshold", "reset")
    s.close()
