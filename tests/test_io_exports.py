"""Exports: every format decodes back to the label maps that were written."""
import json

import numpy as np
import pytest
from PIL import Image

from afb_urr.io import InputError
from afb_urr.io.exports import (FORMATS, CocoWriter, PaletteWriter, RgbaWriter, check_formats,
                                decode_rle, encode_rle, open_exports, read_coco, read_export)

H, W = 24, 40


def _video():
    """Six frames: ids 3 and 7 (non-contiguous), an empty frame, 7 absent in some frames, 9 late."""
    rng = np.random.default_rng(0)
    frames, labels = [], []
    for t in range(6):
        lab = np.zeros((H, W), np.uint8)
        if t != 2:                       # frame 2: no object at all
            lab[2 + t:10 + t, 3:15] = 3
        if t in (0, 1, 4):               # 7 absent in frames 2, 3, 5
            lab[12:20, 20 + t:30 + t] = 7
        if t >= 4:                       # 9 appears late, touching 3
            lab[0:4, 10:20] = 9
        labels.append(lab)
        frames.append(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    names = [f"{t:05d}" for t in range(6)]
    return names, frames, labels


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    names, frames, labels = _video()
    with open_exports(str(tmp_path), [fmt], object_ids=[3, 7], video="clip") as ex:
        assert ex.needs_frames == (fmt == "rgba")
        for t, (name, frame, lab) in enumerate(zip(names, frames, labels)):
            ex.write(t, name, lab, frame)
    got = list(read_export(str(tmp_path), fmt))
    assert [n for n, _ in got] == names
    for (_, lab), ref in zip(got, labels):
        assert lab.dtype == np.uint8 and np.array_equal(lab, ref)


def test_several_formats_at_once_out_of_order_and_rewritten(tmp_path):
    names, frames, labels = _video()
    with open_exports(str(tmp_path), ["palette", "coco", "binary", "palette"], object_ids=[3, 7]) as ex:
        assert list(ex.writers) == ["palette", "coco", "binary"]
        ex.write(0, names[0], np.zeros((H, W), np.uint8), frames[0])  # replaced below
        for t in reversed(range(6)):  # backward propagation writes frames in reverse
            ex.write(t, names[t], labels[t], frames[t])
    for fmt in ("palette", "coco", "binary"):
        got = list(read_export(str(tmp_path), fmt))
        assert [n for n, _ in got] == names
        assert all(np.array_equal(a, b) for (_, a), b in zip(got, labels))


def test_per_object_files(tmp_path):
    names, frames, labels = _video()
    with open_exports(str(tmp_path), ["binary", "rgba"], object_ids=[3]) as ex:
        for t in range(6):
            ex.write(t, names[t], labels[t], frames[t])
    # 7 is first seen at frame 0 (every frame has its file); 9 from frame 4 on
    assert sorted(p.name for p in (tmp_path / "binary").iterdir()) == ["3", "7", "9"]
    assert len(list((tmp_path / "binary" / "9").iterdir())) == 2
    empty = np.array(Image.open(tmp_path / "binary" / "7" / "00002.png"))
    assert empty.dtype == np.uint8 and empty.max() == 0
    full = np.array(Image.open(tmp_path / "binary" / "3" / "00000.png"))
    assert set(np.unique(full).tolist()) == {0, 255}
    cut = np.array(Image.open(tmp_path / "rgba" / "3" / "00001.png"))
    inside = labels[1] == 3
    assert cut.shape == (H, W, 4)
    assert np.array_equal(cut[inside, :3], frames[1][inside])  # the frame's pixels ...
    assert (cut[inside, 3] == 255).all() and (cut[~inside] == 0).all()  # ... mask as alpha


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' COCO
def test_coco_document(tmp_path):
    names, _, labels = _video()
    path = tmp_path / "sub" / "v.json"
    with CocoWriter(str(path), video="clip") as w:
        for t in range(6):
            w.write(t, names[t], labels[t])
        assert not path.exists()  # written on close
    doc = json.loads(path.read_text())
    assert doc["info"]["video"] == "clip" and doc["info"]["frames"] == 6 and doc["info"]["complete"]
    assert [im["id"] for im in doc["images"]] == list(range(6))
    anns = doc["annotations"]
    assert len({a["id"] for a in anns}) == len(anns)
    first7 = next(a for a in anns if a["object_id"] == 7)
    assert first7["frame_index"] == 0 and first7["frame_name"] == "00000"
    assert first7["area"] == int((labels[0] == 7).sum()) == 80
    assert first7["bbox"] == [20.0, 12.0, 10.0, 8.0]
    assert first7["segmentation"]["size"] == [H, W] and isinstance(first7["segmentation"]["counts"], str)
    assert not [a for a in anns if a["frame_index"] == 2]  # the empty frame has no annotation
    # pycocotools reads it as a regular COCO file
    from pycocotools.coco import COCO
    coco = COCO(str(path))
    assert np.array_equal(coco.annToMask(coco.anns[first7["id"]]), labels[0] == 7)


def test_rle_helpers():
    m = np.zeros((5, 7), bool)
    m[1:3, 2:6] = True
    rle = encode_rle(m)
    assert rle["size"] == [5, 7] and np.array_equal(decode_rle(rle), m)
    assert np.array_equal(decode_rle(encode_rle(np.zeros((3, 4), bool))), np.zeros((3, 4), bool))


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'png'.*palette"):
        check_formats(["palette", "png"])
    with pytest.raises(ValueError, match="no export format"):
        check_formats([])
    with pytest.raises(ValueError, match="rgba format needs the frame"):
        RgbaWriter(str(tmp_path)).write(0, "a", np.ones((H, W), np.uint8))
    with pytest.raises(ValueError, match="H x W uint8"):
        PaletteWriter(str(tmp_path)).write(0, "a", np.ones((H, W), np.int64))
    with pytest.raises(ValueError, match="1..254"):
        open_exports(str(tmp_path), ["binary"], object_ids=[0, 3])
    with pytest.raises(InputError, match="not found"):
        list(read_export(str(tmp_path / "none"), "binary"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="bad.json"):
        list(read_coco(str(tmp_path / "bad.json")))


def test_partial_export_is_marked(tmp_path):
    names, frames, labels = _video()
    with pytest.raises(RuntimeError):
        with open_exports(str(tmp_path), ["coco", "palette"]) as ex:
            ex.write(0, names[0], labels[0])
            raise RuntimeError("a corrupt frame")
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert doc["info"]["complete"] is False and doc["info"]["frames"] == 1
    assert [n for n, _ in read_export(str(tmp_path), "palette")] == [names[0]]
