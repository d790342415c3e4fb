"""Training datasets on tiny folders of their real layouts, and clip-sampling invariants."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.data import (ArrayVideo, ClipConfig, DAVISClips, NoObjectError, StaticImageClips, SyntheticClips,
                          YouTubeVOSClips, build_dataset, choose_frames, clip_config, collate_clip, render_video,
                          sample_clip)
from afb_urr.io import write_mask

H, W = 48, 64
CROP = (32, 40)


def small_cfg(preset="davis", **kw):
    return clip_config(preset, **{"crop_size": CROP, **kw})


def write_frames(folder, frames, ext=".jpg"):
    os.makedirs(folder, exist_ok=True)
    for j, f in enumerate(frames):
        Image.fromarray(f).save(os.path.join(folder, f"{j:05d}{ext}"), quality=95)


def write_masks(folder, masks):
    os.makedirs(folder, exist_ok=True)
    for j, m in enumerate(masks):
        write_mask(os.path.join(folder, f"{j:05d}.png"), m)  # palette PNG


def check_sample(s, max_objects=3, clip_len=None, size=CROP):
    frames, masks, n = s["frames"], s["masks"], s["num_objects"]
    t = frames.shape[0]
    if clip_len is not None:
        assert t == clip_len
    assert frames.dtype == torch.float32 and frames.shape == (t, 3, *size)
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert masks.dtype == torch.float32 and masks.shape == (t, n + 1, *size)
    assert 1 <= n <= max_objects
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks.sum(1), torch.ones(t, *size))  # one-hot
    assert (masks[0, 1:].flatten(1).sum(1) > 0).all()  # every clip object is in the first frame
    assert masks[0, 0].sum() > 0  # some background remains
    assert len(s["info"]["frames"]) == t and len(s["info"]["object_ids"]) == n


def same(a, b):
    return (torch.equal(a["frames"], b["frames"]) and torch.equal(a["masks"], b["masks"])
            and a["info"] == b["info"])


# ------------------------------------------------------------------ DAVIS

@pytest.fixture
def davis_root(tmp_path):
    root = tmp_path / "DAVIS"
    for k, seq in enumerate(["bear", "dogs"]):
        frames, masks = render_video(100 + k, num_frames=5, size=(H, W), num_objects=2 + k)
        if seq == "bear":
            masks[:, :3, :] = np.where(masks[:, :3, :] == 0, 255, masks[:, :3, :])  # void strip
        write_frames(str(root / "JPEGImages" / "480p" / seq), frames)
        write_masks(str(root / "Annotations" / "480p" / seq), masks)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("bear\ndogs\n")
    (root / "ImageSets" / "2017" / "val.txt").write_text("dogs\n")
    return root


def test_davis_clips(davis_root):
    ds = DAVISClips(str(davis_root), "train", small_cfg(clip_len=3), seed=1)
    assert len(ds) == 2 and [v.name for v in ds.videos] == ["bear", "dogs"]
    for i in range(len(ds)):
        s = ds[i]
        check_sample(s, clip_len=3)
        assert s["info"]["name"] == ["bear", "dogs"][i]
        assert 255 not in s["info"]["object_ids"]  # void is background, not an object
        assert set(s["info"]["object_ids"]) <= {1, 2, 3}
    assert len(DAVISClips(str(davis_root), "val", small_cfg())) == 1


def test_davis_reproducible_per_seed_epoch_index(davis_root):
    cfg = small_cfg(clip_len=4)
    a = DAVISClips(str(davis_root), cfg=cfg, seed=7)
    b = DAVISClips(str(davis_root), cfg=cfg, seed=7)
    assert same(a[1], b[1])
    a.set_epoch(1)
    assert not same(a[1], b[1])
    b.set_epoch(1)
    assert same(a[1], b[1])
    assert not same(DAVISClips(str(davis_root), cfg=cfg, seed=8)[1], b[1])


def test_davis_errors_name_the_path(davis_root, tmp_path):
    with pytest.raises(ValueError, match="test-dev.txt"):
        DAVISClips(str(davis_root), "test-dev")
    with pytest.raises(ValueError, match="DAVIS root"):
        DAVISClips(str(tmp_path / "nowhere"))
    os.remove(davis_root / "Annotations" / "480p" / "dogs" / "00003.png")
    with pytest.raises(ValueError, match="00003.png"):
        DAVISClips(str(davis_root))
    os.makedirs(davis_root / "JPEGImages" / "480p" / "nosuch")
    with pytest.raises(ValueError, match=r"Annotations.480p.nosuch"):
        DAVISClips(str(davis_root), sequences=["nosuch"])


def test_corrupt_frame_error_names_file(davis_root):
    bad = davis_root / "JPEGImages" / "480p" / "bear" / "00002.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    ds = DAVISClips(str(davis_root), sequences=["bear"], cfg=small_cfg(clip_len=5))  # reads every frame
    with pytest.raises(ValueError, match="00002.jpg"):
        ds[0]


def test_corrupt_mask_error_names_file(davis_root):
    bad = davis_root / "Annotations" / "480p" / "bear" / "00001.png"
    bad.write_bytes(b"\x89PNG garbage")
    ds = DAVISClips(str(davis_root), sequences=["bear"], cfg=small_cfg(clip_len=5))
    with pytest.raises(ValueError, match="00001.png"):
        ds[0]


def test_frame_mask_size_mismatch(davis_root):
    write_mask(str(davis_root / "Annotations" / "480p" / "bear" / "00004.png"), np.zeros((H + 2, W), np.uint8))
    ds = DAVISClips(str(davis_root), sequences=["bear"], cfg=small_cfg(clip_len=5))
    with pytest.raises(ValueError, match="mask is"):
        ds[0]


def test_empty_video_is_replaced_or_reported(davis_root):
    for j in range(5):
        write_mask(str(davis_root / "Annotations" / "480p" / "bear" / f"{j:05d}.png"), np.zeros((H, W), np.uint8))
    ds = DAVISClips(str(davis_root), cfg=small_cfg())
    s = ds[0]  # video 0 (bear) has no object: another video is drawn
    assert s["info"]["name"] == "dogs"
    check_sample(s)
    only_empty = DAVISClips(str(davis_root), sequences=["bear"], cfg=small_cfg())
    with pytest.raises(NoObjectError, match="bear"):
        only_empty[0]


# ------------------------------------------------------------ YouTube-VOS

@pytest.fixture
def ytvos_root(tmp_path):
    """Two videos; in 'late', object 1 first appears at frame 2 and object 2 at frame 3."""
    root = tmp_path / "YouTubeVOS"
    split = root / "train"
    meta = {"videos": {}}
    names = [f"{5 * j:05d}" for j in range(5)]  # every 5th frame, as YouTube-VOS train stores them
    for vid, seed, first in [("a1b2c3", 200, [0, 0]), ("late", 201, [2, 3])]:
        frames, masks = render_video(seed, num_frames=5, size=(H, W), num_objects=2, first_frames=first)
        img_dir, ann_dir = split / "JPEGImages" / vid, split / "Annotations" / vid
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for j, n in enumerate(names):
            Image.fromarray(frames[j]).save(img_dir / f"{n}.jpg", quality=95)
            write_mask(str(ann_dir / f"{n}.png"), masks[j])
        meta["videos"][vid] = {"objects": {
            str(k): {"category": "thing", "frames": [n for j, n in enumerate(names) if (masks[j] == k).any()]}
            for k in (1, 2)}}
    (split / "meta.json").write_text(json.dumps(meta))
    return root


def test_youtube_vos_clips_start_where_an_object_is(ytvos_root):
    ds = YouTubeVOSClips(str(ytvos_root), cfg=small_cfg("youtube_vos", clip_len=3), repeat=8)
    late = ds.videos[1]
    assert late.name == "late" and late.start_frames() == [2, 3, 4]
    assert len(ds) == 16
    starts = set()
    for i in range(1, len(ds), 2):  # odd indices: the 'late' video
        s = ds[i]
        check_sample(s, clip_len=3)
        assert s["info"]["name"] == "late"
        starts.add(s["info"]["frames"][0])
        if s["info"]["frames"][0] == 2:
            assert s["info"]["object_ids"] == [1]  # object 2 is not there yet
    assert starts <= {2, 3, 4} and len(starts) > 1
    # later frames may come from before the objects appear: they are all background
    assert ds.videos[0].start_frames() == [0, 1, 2, 3, 4]


def test_youtube_vos_accepts_split_folder_and_subset(ytvos_root):
    ds = YouTubeVOSClips(str(ytvos_root / "train"), videos=["late"], cfg=small_cfg("youtube_vos"))
    assert len(ds) == 1
    with pytest.raises(ValueError, match="nosuch"):
        YouTubeVOSClips(str(ytvos_root), videos=["nosuch"])


def test_youtube_vos_errors(ytvos_root):
    meta_path = ytvos_root / "train" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["missing"] = {"objects": {"1": {"frames": ["00000"]}}}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"JPEGImages.missing"):
        YouTubeVOSClips(str(ytvos_root))
    meta_path.write_text("{not json")
    with pytest.raises(ValueError, match="meta.json"):
        YouTubeVOSClips(str(ytvos_root))
    os.remove(meta_path)
    with pytest.raises(ValueError, match="meta.json"):
        YouTubeVOSClips(str(ytvos_root))


# --------------------------------------------------------------- static

@pytest.fixture
def static_root(tmp_path):
    root = tmp_path / "ECSSD"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir(parents=True)
    frames, masks = render_video(300, num_frames=2, size=(H, W), num_objects=2)
    Image.fromarray(frames[0]).save(root / "JPEGImages" / "cat.jpg")
    write_mask(str(root / "Annotations" / "cat.png"), masks[0])  # palette instance labels
    Image.fromarray(frames[1]).save(root / "JPEGImages" / "dog.png")
    binary = ((masks[1] > 0) * 255).astype(np.uint8)  # a 0/255 saliency mask, grayscale
    Image.fromarray(binary, mode="L").save(root / "Annotations" / "dog.png")
    return root


def test_static_clips(static_root):
    cfg = small_cfg("static", clip_len=4)
    ds = StaticImageClips(str(static_root), cfg, seed=3)
    assert len(ds) == 2
    s_cat, s_dog = ds[0], ds[1]
    check_sample(s_cat, clip_len=4)
    check_sample(s_dog, clip_len=4)
    assert s_cat["info"]["name"] == "ECSSD/cat" and s_cat["info"]["frames"] == [0, 0, 0, 0]
    assert s_dog["num_objects"] == 1 and s_dog["info"]["object_ids"] == [1]  # 255 -> object 1
    # the frames of a clip are different warps of the one image
    assert not torch.equal(s_cat["frames"][0], s_cat["frames"][1])
    assert same(ds[0], StaticImageClips([str(static_root)], cfg, seed=3)[0])


def test_static_missing_label_names_image(static_root):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(static_root / "JPEGImages" / "lonely.jpg")
    with pytest.raises(ValueError, match="lonely.jpg"):
        StaticImageClips(str(static_root))
    assert len(StaticImageClips(str(static_root), allow_unlabelled=True)) == 2
    with pytest.raises(ValueError, match="static image labels"):
        StaticImageClips(str(static_root), mask_dir="Labels")


# ------------------------------------------------------- clip sampling

def video_with(n_objects=2, num_frames=8, seed=0, size=(H, W)):
    frames, masks = render_video(seed, num_frames=num_frames, size=size, num_objects=n_objects)
    return ArrayVideo(f"v{seed}", frames, masks)


def test_random_order_frames():
    rng = np.random.default_rng(0)
    cfg = ClipConfig(clip_len=6)
    orders = set()
    for _ in range(20):
        ids = choose_frames(10, 4, cfg, rng)
        assert ids[0] == 4 and len(set(ids)) == 6 and all(0 <= j < 10 for j in ids)
        orders.add(tuple(ids) == tuple(sorted(ids)))
    assert False in orders  # not temporally ordered
    ids = choose_frames(3, 1, cfg, rng)  # shorter video than the clip: frames repeat
    assert len(ids) == 6 and ids[0] == 1 and set(ids) <= {0, 1, 2}


@pytest.mark.parametrize("max_gap", [1, 3])
def test_ordered_frames_respect_max_gap(max_gap):
    rng = np.random.default_rng(1)
    cfg = ClipConfig(clip_len=5, ordered=True, max_gap=max_gap)
    for first in range(0, 20):
        ids = choose_frames(25, first, cfg, rng)
        steps = np.diff(ids)
        assert ids[0] == first and len(ids) == 5 and ids[-1] <= 24
        if first + 4 <= 24:
            assert steps.min() >= 1 and steps.max() <= max_gap
        else:  # too near the end: frames never exceed the last one
            assert steps.min() >= 0
    # the sampler prefers first frames from which the whole clip fits
    video = video_with(num_frames=8)
    for i in range(5):
        s = sample_clip(video, small_cfg(clip_len=4, ordered=True, max_gap=2), np.random.default_rng(i))
        steps = np.diff(s["info"]["frames"])
        assert steps.min() >= 1 and steps.max() <= 2


def test_max_gap_schedule_per_epoch():
    """A list of max_gap values is a per-epoch curriculum; the last value holds afterwards."""
    cfg = ClipConfig(clip_len=3, ordered=True, max_gap=[1, 6])
    assert cfg.max_gap == (1, 6)
    assert cfg.at_epoch(0).max_gap == 1 and cfg.at_epoch(1).max_gap == 6 and cfg.at_epoch(9).max_gap == 6
    assert ClipConfig(max_gap=4).at_epoch(3).max_gap == 4
    clips = SyntheticClips("train", 8, 20, (48, 64), cfg=small_cfg("synthetic", clip_len=3, ordered=True,
                                                                   max_gap=[1, 6], crop_size=(48, 64)))
    widest = {}
    for epoch in (0, 1, 2):
        clips.set_epoch(epoch)
        steps = [np.diff(clips[i]["info"]["frames"]) for i in range(len(clips))]
        steps = np.concatenate(steps)
        assert steps.min() >= 1
        widest[epoch] = int(steps.max())
    assert widest[0] == 1 and 1 < widest[1] <= 6 and 1 < widest[2] <= 6
    with pytest.raises(ValueError, match="max_gap"):
        ClipConfig(max_gap=[])
    with pytest.raises(ValueError, match="max_gap"):
        ClipConfig(max_gap=[3, 0])


def test_at_most_max_objects():
    video = video_with(n_objects=5, seed=4, size=(96, 128))
    seen = set()
    for i in range(8):
        s = sample_clip(video, clip_config("davis", crop_size=(48, 64), clip_len=2, crop_scale=(1.0, 1.0)),
                        np.random.default_rng(i))
        check_sample(s, max_objects=3, clip_len=2, size=(48, 64))
        seen |= set(s["info"]["object_ids"])
    assert len(seen) > 3  # different subsets are chosen
    s = sample_clip(video, clip_config("davis", crop_size=(48, 64), max_objects=1), np.random.default_rng(0))
    assert s["num_objects"] == 1 and s["masks"].shape[1] == 2


def test_flip_is_applied_to_the_whole_clip():
    video = video_with(seed=6)
    cfg = small_cfg(clip_len=3, flip_prob=1.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                    affine_degrees=0, affine_translate=0, affine_scale=(1, 1), affine_shear=0,
                    brightness=0, contrast=0, saturation=0, hue=0, crop_size=(H, W))
    flipped = sample_clip(video, cfg, np.random.default_rng(0))
    plain = sample_clip(video, ClipConfig(**{**cfg.__dict__, "flip_prob": 0.0}), np.random.default_rng(0))
    assert flipped["info"]["flip"] and not plain["info"]["flip"]
    assert torch.allclose(flipped["frames"], plain["frames"].flip(-1))
    assert torch.equal(flipped["masks"], plain["masks"].flip(-1))


def test_no_augment_first_frame_is_the_crop_of_the_video():
    video = video_with(seed=8)
    cfg = small_cfg(augment=False, crop_size=(H, W), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), clip_len=2)
    s = sample_clip(video, cfg, np.random.default_rng(0))
    j = s["info"]["frames"][0]
    expect = torch.from_numpy(video.frames[j]).permute(2, 0, 1).float() / 255
    assert torch.allclose(s["frames"][0], expect, atol=1e-6)
    labels = s["masks"][0].argmax(0)
    ids = [0] + s["info"]["object_ids"]
    assert torch.equal(torch.tensor(ids)[labels], torch.from_numpy(video.masks[j]).long())


def test_tiny_objects_need_min_pixels():
    masks = np.zeros((4, H, W), np.uint8)
    masks[:, 10:30, 10:40] = 1
    masks[:, 40, 60] = 2  # a one-pixel object
    frames = np.full((4, H, W, 3), 128, np.uint8)
    video = ArrayVideo("tiny", frames, masks)
    s = sample_clip(video, small_cfg(min_object_pixels=4, crop_size=(H, W), crop_scale=(1.0, 1.0),
                                     crop_ratio=(1.0, 1.0)), np.random.default_rng(0))
    assert s["num_objects"] == 1 and s["info"]["object_ids"] == [1]


def test_clip_config_validation():
    with pytest.raises(ValueError, match="max_gap"):
        ClipConfig(max_gap=0)
    with pytest.raises(ValueError, match="unknown ClipConfig"):
        clip_config("davis", clip_lenght=3)
    with pytest.raises(ValueError, match="preset"):
        clip_config("kitti")
    assert clip_config("youtube_vos").crop_scale == (0.3, 0.5)
    assert ClipConfig(crop_size=[24, 24]).crop_size == (24, 24)


def test_collate_clip():
    s = {"frames": torch.zeros(2, 3, 4, 4)}
    assert collate_clip([s]) is s
    with pytest.raises(ValueError, match="batch_size=1"):
        collate_clip([s, s])


# -------------------------------------------------------------- synthetic

def test_synthetic_clips_and_dataloader_workers():
    ds = build_dataset({"dataset": "synthetic", "synthetic": {"num_videos": 3, "num_frames": 6, "size": [H, W]},
                        "clip": {"clip_len": 3, "crop_size": list(CROP)}}, seed=5)
    assert isinstance(ds, SyntheticClips) and len(ds) == 3
    direct = [ds[i] for i in range(3)]
    for s in direct:
        check_sample(s, clip_len=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_clip,
                                         multiprocessing_context="fork")
    for a, b in zip(direct, loader):
        assert same(a, b)  # the same clips whichever process draws them


def test_synthetic_val_split_differs():
    tr = SyntheticClips("train", num_videos=2, num_frames=4, size=(H, W), cfg=small_cfg("synthetic"))
    va = SyntheticClips("val", num_videos=2, num_frames=4, size=(H, W), cfg=small_cfg("synthetic"))
    assert not np.array_equal(tr.videos[0].frames, va.videos[0].frames)
    check_sample(va[0])


def test_build_dataset_errors(davis_root):
    with pytest.raises(ValueError, match="unknown key"):
        build_dataset({"dataset": "davis", "rooot": "x"})
    with pytest.raises(ValueError, match="needs a root"):
        build_dataset({"dataset": "davis"})
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset({"dataset": "kitti"})
    ds = build_dataset({"dataset": "davis", "root": str(davis_root), "clip": {"crop_size": list(CROP)}})
    assert isinstance(ds, DAVISClips) and ds.cfg.crop_size == CROP
