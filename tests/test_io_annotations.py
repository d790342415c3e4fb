"""Mask folders: PNGs matched to frames, every mask checked before segmenting."""
import cv2
import numpy as np
import pytest
from PIL import Image

from afb_urr.io import InputError, open_frames, write_mask
from afb_urr.io.annotations import (check_masks, find_masks, load_mask, number_index,
                                    read_mask_folder)

H, W = 20, 30
NAMES = [f"{i:05d}" for i in range(16)]


def _mask(ids=(1,), size=(H, W)):
    m = np.zeros(size, np.uint8)
    for k, i in enumerate(ids):
        m[2 + 3 * k:4 + 3 * k, 2:6] = i
    return m


def test_judo_like_folder(tmp_path):
    """Masks for frames 0, 5, 8, 13, named 5-digit or plain; one is 1 px narrower."""
    write_mask(str(tmp_path / "00000.png"), _mask((1,)))
    write_mask(str(tmp_path / "5.png"), _mask((1, 2)))
    write_mask(str(tmp_path / "00008.png"), _mask((3,)))
    narrow = _mask((7,), (H, W - 1))
    write_mask(str(tmp_path / "13.png"), narrow)
    (tmp_path / "notes.txt").write_text("not a mask")
    (tmp_path / "sub").mkdir()
    assert list(find_masks(str(tmp_path), NAMES)) == ["00000", "00005", "00008", "00013"]
    with pytest.raises(InputError, match=r"13\.png is 20x29 but the frames are 20x30.*resiz"):
        read_mask_folder(str(tmp_path), NAMES, (H, W))
    masks = read_mask_folder(str(tmp_path), NAMES, (H, W), resize=True, max_objects=4)
    assert masks.object_ids == {"00000": (1,), "00005": (1, 2), "00008": (3,), "00013": (7,)}
    assert masks.first_frames() == {1: "00000", 2: "00005", 3: "00008", 7: "00013"}
    got = masks.read("00013")
    assert got.shape == (H, W) and np.array_equal(got[:, :W - 1], narrow)
    assert np.array_equal(got[:, -1], narrow[:, -1])  # nearest-neighbour: the last column repeats
    assert np.array_equal(masks.read("00005"), _mask((1, 2)))


def test_matching_against_frame_files(tmp_path):
    names = ["frame_1", "frame_2", "frame_10"]
    write_mask(str(tmp_path / "frame_10.png"), _mask())
    assert find_masks(str(tmp_path), names) == {"frame_10": str(tmp_path / "frame_10.png")}
    write_mask(str(tmp_path / "10.png"), _mask())
    with pytest.raises(InputError, match=r"mask .*10\.png names no frame of the video \(frames: frame_1 .. frame_10\)"):
        find_masks(str(tmp_path), names)
    assert number_index(["1", "01", "2"]) == {2: "2"}  # a number two frames share matches neither


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="mask folder not found"):
        find_masks(str(tmp_path / "none"), NAMES)
    with pytest.raises(InputError, match="no PNG masks"):
        find_masks(str(tmp_path), NAMES)
    write_mask(str(tmp_path / "3.png"), _mask())
    write_mask(str(tmp_path / "00003.png"), _mask())
    with pytest.raises(InputError, match=r"00003\.png and .*3\.png are both for frame 00003"):
        find_masks(str(tmp_path), NAMES)
    (tmp_path / "00003.png").unlink()
    Image.fromarray(_mask()).save(tmp_path / "4.jpg")
    with pytest.raises(InputError, match=r"4\.jpg is not a PNG"):
        find_masks(str(tmp_path), NAMES)
    (tmp_path / "4.jpg").unlink()
    write_mask(str(tmp_path / "16.png"), _mask())
    with pytest.raises(InputError, match=r"16\.png names no frame"):
        find_masks(str(tmp_path), NAMES)


def test_every_mask_checked(tmp_path):
    paths = {}
    for i, name in enumerate(["00000", "00002", "00004"]):
        paths[name] = str(tmp_path / f"{name}.png")
        write_mask(paths[name], _mask((i + 1,)))
    assert check_masks(paths, (H, W), max_objects=3).object_ids["00004"] == (3,)
    with pytest.raises(InputError, match=r"00004\.png brings the video to 3 objects \(1, 2, 3\); at most 2"):
        check_masks(paths, (H, W), max_objects=2)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(paths["00004"])
    with pytest.raises(InputError, match=r"00004\.png: image mode RGB is a colour"):
        check_masks(paths, (H, W))
    with open(paths["00004"], "wb") as f:
        f.write(b"\x89PNG broken")
    with pytest.raises(InputError, match=r"00004\.png"):
        check_masks(paths, (H, W))
    write_mask(paths["00004"], np.where(_mask() > 0, 255, 0).astype(np.uint8))
    with pytest.raises(InputError, match=r"00004\.png holds no object.*void"):
        check_masks(paths, (H, W))
    write_mask(paths["00004"], _mask(size=(H // 2, W)))
    with pytest.raises(InputError, match=r"00004\.png is 10x30 but the frames are 20x30; a mask must"):
        check_masks(paths, (H, W), resize=True)  # a quite different size: resizing is not allowed


def test_load_mask_void_and_size(tmp_path):
    m = _mask((2,))
    m[0, 0] = 255
    write_mask(str(tmp_path / "m.png"), m)
    got = load_mask(str(tmp_path / "m.png"), (H, W))
    assert got[0, 0] == 0 and got.max() == 2
    binary = np.where(_mask() > 0, 255, 0).astype(np.uint8)
    write_mask(str(tmp_path / "b.png"), binary)
    assert load_mask(str(tmp_path / "b.png"), (H, W), binary_255_is_object=True).max() == 1
    write_mask(str(tmp_path / "big.png"), _mask(size=(H + 2, W + 2)))
    assert load_mask(str(tmp_path / "big.png"), (H, W), resize=True).shape == (H, W)
    write_mask(str(tmp_path / "big3.png"), _mask(size=(H + 3, W)))
    with pytest.raises(InputError, match="23x30"):
        load_mask(str(tmp_path / "big3.png"), (H, W), resize=True)


def test_source_frame_size(tmp_path):
    for i in range(2):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / f"{i}.png")
    assert open_frames(str(tmp_path)).frame_size() == (H, W)
    video = tmp_path / "v" / "clip.mp4"
    video.parent.mkdir()
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (32, 24))
    for _ in range(2):
        w.write(np.zeros((24, 32, 3), np.uint8))
    w.release()
    assert open_frames(str(video)).frame_size() == (24, 32)
