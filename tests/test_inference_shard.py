"""Many videos over torchrun processes (afb_urr/inference/shard.py, protocols, cli/infer_many.py):
the balanced split, the --videos list format, and a 2-process CPU (gloo) run whose outputs
equal a single process's, byte for byte."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.cli import infer
from afb_urr.inference.shard import Shard, balanced_split
from afb_urr.io import InputError, write_mask
from afb_urr.io.datasets import read_video_list
from conftest import ROOT

H, W = 32, 48


def test_balanced_split_longest_first():
    lengths = {"a": 10, "b": 50, "c": 30, "d": 30, "e": 5}
    assert balanced_split(lengths, 1) == [["b", "c", "d", "a", "e"]]
    # b -> 0; c -> 1; d -> 1 (30 < 50); a -> 0 (50 < 60); e -> 0 (60 = 60: the lower rank)
    assert balanced_split(lengths, 2) == [["b", "a", "e"], ["c", "d"]]
    parts = balanced_split(lengths, 3)
    assert sorted(sum(parts, [])) == sorted(lengths) and parts[0] == ["b"]
    assert Shard(1, 2).take(lengths) == ["c", "d"]  # in the order given
    with pytest.raises(ValueError):
        balanced_split(lengths, 0)


def test_video_list_format(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"")
    (tmp_path / "my frames").mkdir()
    (tmp_path / "m.png").write_bytes(b"")
    lst = tmp_path / "list.txt"
    lst.write_text("# videos\n\nclips/a.mp4 m.png\n'my frames' m.png second\n")
    videos = read_video_list(str(lst))
    assert [(v.name, os.path.basename(v.video)) for v in videos] == [("a", "a.mp4"), ("second", "my frames")]
    assert videos[0].masks == str(tmp_path / "m.png")
    for text, words in (("clips/a.mp4\n", "list.txt:1: expected"), ("clips/a.mp4 none.png\n", "masks not found"),
                        ("clips/a.mp4 m.png\nclips/a.mp4 m.png\n", "list.txt:2: the output name 'a'"),
                        ("# nothing\n", "empty")):
        lst.write_text(text)
        with pytest.raises(InputError, match=words):
            read_video_list(str(lst))


def _frames(folder, n, seed):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")


def _box(label, y0, x0, m=None):
    m = np.zeros((H, W), np.uint8) if m is None else m
    m[y0:y0 + 12, x0:x0 + 14] = label
    return m


@pytest.fixture(scope="module")
def data(light_model, tmp_path_factory):
    """A DAVIS-2017 folder (4 sequences of 2..5 frames) and a --videos list (3 videos, one
    with an object that starts at a later frame) with a random ResNet-18 checkpoint."""
    from afb_urr import save_checkpoint
    root = tmp_path_factory.mktemp("many")
    save_checkpoint(str(root / "r18.pth"), light_model)
    davis = root / "DAVIS"
    for k, n in enumerate((3, 5, 2, 4)):
        seq = f"seq{k}"
        _frames(davis / "JPEGImages" / "480p" / seq, n, k)
        write_mask(str(davis / "Annotations" / "480p" / seq / "00000.png"), _box(1 + k % 2, 4, 6 + k))
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("seq0\nseq1\nseq2\nseq3\n")
    lines = []
    for k, n in enumerate((4, 2, 3)):
        _frames(root / "videos" / f"v{k}", n, 10 + k)
        masks = root / "masks" / f"v{k}"
        write_mask(str(masks / "00000.png"), _box(1, 5, 5))
        if k == 0:
            write_mask(str(masks / "00002.png"), _box(2, 16, 30))  # object 2 starts at frame 2
        lines.append(f"videos/v{k} masks/v{k}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root


def _pngs(out):
    found = {}
    for folder, _, files in os.walk(out):
        for f in files:
            if f.endswith(".png"):
                path = os.path.join(folder, f)
                found[os.path.relpath(path, out)] = open(path, "rb").read()
    return found


def _args(data, out, *mode):
    return [*mode, "--weights", str(data / "r18.pth"), "--out", str(out), "--device", "cpu",
            "--no-progress"]


MODES = {"davis": ["--dataset", "davis17", "--root", "DAVIS"], "list": ["--videos", "list.txt"]}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_two_processes_write_what_one_writes(data, mode, capsys):
    argv = [a if a not in ("DAVIS", "list.txt") else str(data / a) for a in MODES[mode]]
    one, two = data / f"one_{mode}", data / f"two_{mode}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process below
    try:
        assert infer.main(_args(data, one, *argv)) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           os.path.join(ROOT, "tools", "infer.py"), *_args(data, two, *argv)]
    proc = subprocess.run(cmd, env=env, cwd=str(data), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = _pngs(one)
    assert len(expected) == (14 if mode == "davis" else 9)
    assert _pngs(two) == expected
    assert proc.stdout.count("sequence(s) segmented") == 1  # rank 0 alone reports
    assert "(2 processes)" in proc.stdout
    n = 4 if mode == "davis" else 3
    assert f"{n} sequence(s) segmented" in proc.stdout
