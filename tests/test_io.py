"""Frame sources, label-map PNGs, the DAVIS palette, the overlay writer."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from afb_urr.io import (FolderSource, InputError, OverlayWriter, SequenceSource, VideoFileSource,
                        blend_labels, davis_palette, natural_key, open_frames, read_mask,
                        void_to_background, write_mask)

H, W = 32, 48


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def _write_mp4(path, frames, fps=10):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert w.isOpened()
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


def _smooth_frames(n):
    """Frames that survive lossy compression well enough to compare (flat colours)."""
    out = []
    for i in range(n):
        f = np.zeros((H, W, 3), np.uint8)
        f[:] = (20 * i, 100, 200 - 20 * i)
        out.append(f)
    return out


# ---------------------------------------------------------------- palette / masks
def test_davis_palette_known_entries():
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[0].tolist() == [0, 0, 0]
    assert pal[1].tolist() == [128, 0, 0]
    assert pal[2].tolist() == [0, 128, 0]
    assert pal[3].tolist() == [128, 128, 0]
    assert pal[4].tolist() == [0, 0, 128]
    assert pal[5].tolist() == [128, 0, 128]
    assert pal[8].tolist() == [64, 0, 0]
    assert pal[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in pal.tolist()}) == 256  # every colour distinct


def test_write_mask_round_trip_with_palette(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[2:10, 3:20] = 1
    labels[15:30, 25:40] = 2
    labels[0, 0] = 7
    path = tmp_path / "sub" / "m.png"
    write_mask(str(path), labels)
    with Image.open(path) as img:
        assert img.mode == "P"
        pal = np.array(img.getpalette()[:768], np.uint8).reshape(-1, 3)
    assert np.array_equal(pal[:8], davis_palette()[:8])
    assert np.array_equal(read_mask(str(path)), labels)
    # integer dtypes other than uint8 are accepted when they fit
    write_mask(str(path), labels.astype(np.int64))
    assert np.array_equal(read_mask(str(path)), labels)


def test_write_mask_rejects_bad_labels(tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        write_mask(str(tmp_path / "a.png"), np.full((4, 4), 300, np.int32))
    with pytest.raises(ValueError, match="H x W"):
        write_mask(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="integers"):
        write_mask(str(tmp_path / "a.png"), np.zeros((4, 4), np.float32))


def test_read_mask_grayscale_values(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[5:9, 5:9] = 3
    labels[20:25, 30:40] = 1
    Image.fromarray(labels).save(tmp_path / "g.png")  # mode 'L'
    out = read_mask(str(tmp_path / "g.png"))
    assert out.dtype == np.uint8 and np.array_equal(out, labels)


def test_read_mask_16bit_grayscale(tmp_path):
    labels = np.zeros((H, W), np.uint16)
    labels[1:4, 1:4] = 2
    Image.fromarray(labels).save(tmp_path / "g16.png")
    assert np.array_equal(read_mask(str(tmp_path / "g16.png")), labels.astype(np.uint8))
    labels[0, 0] = 1000
    Image.fromarray(labels).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="big.png.*0..255"):
        read_mask(str(tmp_path / "big.png"))


def test_read_mask_rgb_is_refused_with_explanation(tmp_path):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match=r"rgb\.png.*colour.*palette.*grayscale"):
        read_mask(str(tmp_path / "rgb.png"))


def test_read_mask_unreadable_and_missing(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(InputError, match="bad.png"):
        read_mask(str(bad))
    with pytest.raises(InputError, match="not found.*nope.png"):
        read_mask(str(tmp_path / "nope.png"))
    with pytest.raises(InputError, match="folder"):
        read_mask(str(tmp_path))


def test_void_to_background():
    m = np.array([[0, 1, 255], [2, 255, 0]], np.uint8)
    assert void_to_background(m).tolist() == [[0, 1, 0], [2, 0, 0]]
    assert m[0, 2] == 255  # input untouched
    binary = np.array([[0, 255], [255, 0]], np.uint8)
    assert void_to_background(binary).tolist() == [[0, 0], [0, 0]]
    assert void_to_background(binary, binary_255_is_object=True).tolist() == [[0, 1], [1, 0]]
    # with other objects present, 255 stays void even with the flag
    assert void_to_background(m, binary_255_is_object=True).tolist() == [[0, 1, 0], [2, 0, 0]]


# ---------------------------------------------------------------- frame sources
def test_video_file_source(tmp_path):
    frames = _smooth_frames(5)
    path = tmp_path / "clip.mp4"
    _write_mp4(path, frames, fps=12)
    src = open_frames(str(path))
    assert isinstance(src, VideoFileSource)
    assert len(src) == 5 and src.fps == pytest.approx(12)
    got = list(src)
    assert [n for n, _ in got] == ["00000", "00001", "00002", "00003", "00004"]
    for (_, f), ref in zip(got, frames):
        assert f.shape == (H, W, 3) and f.dtype == np.uint8
        # RGB order (not BGR) survives the codec: compare channel means
        assert np.abs(f.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0)).max() < 12
    assert len(list(src)) == 5  # iterating again re-reads the file


def test_unreadable_video_is_an_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(InputError, match="broken.mp4"):
        open_frames(str(bad))
    with pytest.raises(InputError, match="not found.*missing.mp4"):
        open_frames(str(tmp_path / "missing.mp4"))


def test_single_image_is_not_a_video(tmp_path):
    Image.fromarray(_frames(1)[0]).save(tmp_path / "one.png")
    with pytest.raises(InputError, match="single image"):
        open_frames(str(tmp_path / "one.png"))


def test_folder_source_sorted_names_and_mixed_formats(tmp_path):
    frames = _frames(4)
    # natural order: f2 before f10; mixed extensions; a non-image file is ignored
    names = ["f1", "f2", "f10", "f11"]
    for name, f, ext in zip(names, frames, [".png", ".bmp", ".png", ".PNG"]):
        Image.fromarray(f).save(tmp_path / (name + ext))
    (tmp_path / "notes.txt").write_text("not a frame")
    src = open_frames(str(tmp_path))
    assert isinstance(src, FolderSource) and not isinstance(src, SequenceSource)
    assert len(src) == 4 and src.default_mask is None
    got = list(src)
    assert [n for n, _ in got] == names
    for (_, f), ref in zip(got, frames):
        assert np.array_equal(f, ref)  # lossless formats round-trip exactly
        assert f.flags.writeable


def test_folder_source_jpg(tmp_path):
    f = _smooth_frames(1)[0]
    Image.fromarray(f).save(tmp_path / "00000.jpg", quality=95)
    (name, got), = list(open_frames(str(tmp_path)))
    assert name == "00000" and got.shape == (H, W, 3)
    assert np.abs(got.astype(int) - f.astype(int)).max() < 10


def test_corrupt_frame_error_names_the_file(tmp_path):
    frames = _frames(3)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i:05d}.png")
    (tmp_path / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n corrupt")
    src = open_frames(str(tmp_path))
    it = iter(src)
    assert next(it)[0] == "00000"
    with pytest.raises(InputError, match="00001.png"):
        next(it)


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no frames"):
        open_frames(str(empty))
    dup = tmp_path / "dup"
    dup.mkdir()
    Image.fromarray(_frames(1)[0]).save(dup / "a.png")
    Image.fromarray(_frames(1)[0]).save(dup / "a.jpg")
    with pytest.raises(InputError, match="share the name 'a'"):
        open_frames(str(dup))
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    Image.fromarray(_frames(1)[0]).save(sizes / "0.png")
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(sizes / "1.png")
    with pytest.raises(InputError, match="1.png.*first frame"):
        list(open_frames(str(sizes)))


def _davis_tree(root, seqs=("bear",), n=3):
    for seq in seqs:
        img_dir = root / "JPEGImages" / "480p" / seq
        ann_dir = root / "Annotations" / "480p" / seq
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for i, f in enumerate(_frames(n)):
            Image.fromarray(f).save(img_dir / f"{i:05d}.jpg")
        lab = np.zeros((H, W), np.uint8)
        lab[4:12, 4:20] = 1
        write_mask(str(ann_dir / "00000.png"), lab)


def test_davis_sequence_folder(tmp_path):
    _davis_tree(tmp_path, seqs=("bear", "cows"))
    seq_dir = tmp_path / "JPEGImages" / "480p" / "cows"
    src = open_frames(str(seq_dir))
    assert isinstance(src, SequenceSource) and src.sequence == "cows"
    assert src.default_mask == str(tmp_path / "Annotations" / "480p" / "cows" / "00000.png")
    assert [n for n, _ in src] == ["00000", "00001", "00002"]
    assert read_mask(src.default_mask).max() == 1


def test_davis_root(tmp_path):
    _davis_tree(tmp_path, seqs=("bear",))
    src = open_frames(str(tmp_path))  # the only sequence is picked
    assert isinstance(src, SequenceSource) and src.sequence == "bear" and len(src) == 3
    assert src.default_mask.endswith(os.path.join("Annotations", "480p", "bear", "00000.png"))
    multi = tmp_path / "multi"
    _davis_tree(multi, seqs=("bear", "cows"))
    with pytest.raises(InputError, match="2 sequences"):
        open_frames(str(multi))
    assert open_frames(str(multi), sequence="cows").sequence == "cows"
    with pytest.raises(InputError, match="'dog' not found"):
        open_frames(str(multi), sequence="dog")


def test_sequence_without_annotation_has_no_default_mask(tmp_path):
    img_dir = tmp_path / "JPEGImages" / "vid"  # YouTube-VOS style: no resolution folder
    img_dir.mkdir(parents=True)
    Image.fromarray(_frames(1)[0]).save(img_dir / "00010.jpg")
    src = open_frames(str(img_dir))
    assert isinstance(src, SequenceSource) and src.default_mask is None


def test_natural_key():
    assert sorted(["f10", "f2", "F1", "g0"], key=natural_key) == ["F1", "f2", "f10", "g0"]
    assert sorted(["00010", "00002"], key=natural_key) == ["00002", "00010"]


# ---------------------------------------------------------------- overlay
def test_blend_labels():
    frame = np.full((H, W, 3), 100, np.uint8)
    labels = np.zeros((H, W), np.uint8)
    labels[10:20, 10:30] = 1
    out = blend_labels(frame, labels, alpha=0.5, contour_thickness=0)
    assert out[0, 0].tolist() == [100, 100, 100]            # background unchanged
    assert out[15, 15].tolist() == [114, 50, 50]            # 0.5 * 100 + 0.5 * (128, 0, 0)
    with_contour = blend_labels(frame, labels, alpha=0.5)
    assert with_contour[10, 20].tolist() == [128, 0, 0]     # the outline in the object colour
    with pytest.raises(ValueError, match="labels"):
        blend_labels(frame, labels[:-1])


def test_blend_labels_with_a_palette():
    frame = np.full((H, W, 3), 100, np.uint8)
    labels = np.zeros((H, W), np.uint8)
    labels[10:20, 10:30] = 1
    palette = davis_palette().copy()
    palette[1] = (0, 200, 40)
    out = blend_labels(frame, labels, alpha=0.5, contour_thickness=0, palette=palette)
    assert out[15, 15].tolist() == [50, 150, 70]            # 0.5 * 100 + 0.5 * (0, 200, 40)
    assert out[0, 0].tolist() == [100, 100, 100]
    with pytest.raises(ValueError, match="256 x 3"):
        blend_labels(frame, labels, palette=palette[:10])


def test_blend_labels_shades_uncertain_pixels():
    from afb_urr.io.overlay import UNCERTAIN_ALPHA, UNCERTAIN_COLOUR, shade_uncertainty
    frame = np.full((H, W, 3), 100, np.uint8)
    labels = np.zeros((H, W), np.uint8)
    unc = np.zeros((H, W), np.float32)
    unc[0, 0], unc[0, 1] = 1.0, 0.25
    out = blend_labels(frame, labels, contour_thickness=0, uncertainty=unc)
    assert out[5, 5].tolist() == [100, 100, 100]            # certain: unchanged
    for (y, x), a in (((0, 0), UNCERTAIN_ALPHA), ((0, 1), UNCERTAIN_ALPHA * 0.5)):  # alpha * sqrt(u)
        expected = [(1 - a) * 100 + a * c for c in UNCERTAIN_COLOUR]
        assert out[y, x].tolist() == pytest.approx(expected, abs=1)
    with pytest.raises(ValueError, match="uncertainty"):
        shade_uncertainty(frame, unc[:-1])


def test_overlay_writer(tmp_path):
    path = tmp_path / "out" / "ov.mp4"
    labels = np.zeros((H, W), np.uint8)
    labels[5:20, 5:20] = 2
    with OverlayWriter(str(path), 8, (H, W)) as w:
        for f in _frames(4):
            w.write(f, labels)
        with pytest.raises(ValueError, match="opened for"):
            w.write(np.zeros((H, W + 2, 3), np.uint8), np.zeros((H, W + 2), np.uint8))
    assert w.frames_written == 4
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 4


def test_overlay_writer_cannot_open(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the parent folder should be
    with pytest.raises((InputError, OSError)):
        OverlayWriter(str(blocker / "ov.mp4"), 8, (H, W))
