"""--snapshot-every / --resume of the infer command: a run killed by a real SIGKILL in a
subprocess resumes to masks byte-identical with an uninterrupted run's; bad snapshots are
one-line errors that leave the masks alone."""
import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from afb_urr.cli import infer
from afb_urr.inference.snapshot import SNAPSHOT_NAME
from afb_urr.io import write_mask
from conftest import ROOT

H, W, N = 64, 96, 14
EVERY = 4

# Runs tools/infer.py and kills itself with SIGKILL after KILL_AFTER masks, or halfway
# through writing the snapshot at position KILL_IN_SNAPSHOT (a partial .tmp file is left).
WRAPPER = textwrap.dedent('''
    import io, os, signal, sys
    import torch
    from PIL import Image
    after = int(os.environ.get("KILL_AFTER", "0"))
    in_snapshot = int(os.environ.get("KILL_IN_SNAPSHOT", "-1"))
    written = [0]
    write_png, save = Image.Image.save, torch.save

    def killing_write(self, path, *a, **k):  # every mask is a PNG written by PIL
        write_png(self, path, *a, **k)
        written[0] += 1
        if written[0] == after:
            os.kill(os.getpid(), signal.SIGKILL)

    def killing_save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get("position") == in_snapshot:
            buf = io.BytesIO()
            save(obj, buf, *a, **k)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return save(obj, f, *a, **k)

    Image.Image.save, torch.save = killing_write, killing_save
    from afb_urr.cli.infer import main
    sys.exit(main(sys.argv[1:]))
''')


@pytest.fixture(scope="module")
def setup(light_model, tmp_path_factory):
    """A frame folder, its first mask, a checkpoint and a config whose bank must evict."""
    from afb_urr import save_checkpoint
    from afb_urr.data.synthetic import render_video
    root = tmp_path_factory.mktemp("resume")
    save_checkpoint(str(root / "r18.pth"), light_model)
    frames, masks = render_video(3, num_frames=N, size=(H, W), num_objects=2)
    (root / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(root / "frames" / f"f{i:03d}.png")
    write_mask(str(root / "first.png"), masks[0])
    (root / "cfg.yaml").write_text("inference:\n  budget: 150\n  merge_threshold: 1.5\n")
    (root / "wrapper.py").write_text(WRAPPER)
    return root


def _args(root, out, *extra):
    return ["--video", str(root / "frames"), "--mask", str(root / "first.png"), "--weights",
            str(root / "r18.pth"), "--config", str(root / "cfg.yaml"), "--out", str(out),
            "--snapshot-every", str(EVERY), "--device", "cpu", "--no-progress", *extra]


def _subprocess(root, out, *extra, **kill):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", **{k.upper(): str(v) for k, v in kill.items()})
    cmd = [sys.executable, str(root / "wrapper.py"), *_args(root, out, *extra)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _masks(out):
    return {f: (out / f).read_bytes() for f in sorted(os.listdir(out)) if f.endswith(".png")}


@pytest.fixture(scope="module")
def reference(setup):
    out = setup / "uninterrupted"
    proc = _subprocess(setup, out)
    assert proc.returncode == 0, proc.stderr
    assert not (out / SNAPSHOT_NAME).exists()  # removed when the run finished
    masks = _masks(out)
    assert len(masks) == N
    return masks


def _killed_then_resumed(setup, out, reference, **kill):
    proc = _subprocess(setup, out, **kill)
    assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])
    assert (out / SNAPSHOT_NAME).is_file()
    kept = {f: (out / f).stat().st_mtime_ns for f in _masks(out)}
    proc = _subprocess(setup, out, "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _masks(out) == reference  # byte for byte
    assert not (out / SNAPSHOT_NAME).exists()
    return kept, proc.stdout


def test_sigkill_then_resume_gives_identical_masks(setup, reference):
    out = setup / "killed"
    kept, stdout = _killed_then_resumed(setup, out, reference, kill_after=10)
    assert len(kept) == 10
    assert "resumed at frame 8 (8 masks kept)" in stdout
    # masks before the snapshot's position were not written again
    for f in sorted(kept)[:8]:
        assert (out / f).stat().st_mtime_ns == kept[f]


def test_kill_during_snapshot_write_leaves_previous_usable(setup, reference):
    out = setup / "killed_in_write"
    kept, stdout = _killed_then_resumed(setup, out, reference, kill_in_snapshot=8)
    assert len(kept) == 8
    assert "resumed at frame 4" in stdout


def _run(argv, capsys):
    rc = infer.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@contextlib.contextmanager
def ctrl_c_after(n):
    """Within: Ctrl-C (KeyboardInterrupt) right after the n-th PNG is written."""
    write, count = Image.Image.save, [0]

    def stop(self, path, *a, **k):
        write(self, path, *a, **k)
        count[0] += 1
        if count[0] == n:
            raise KeyboardInterrupt
    Image.Image.save = stop
    try:
        yield
    finally:
        Image.Image.save = write


@pytest.fixture(scope="module")
def interrupted(setup):
    """An output folder of a run stopped by Ctrl-C after 6 masks (snapshot at position 4)."""
    out = setup / "interrupted"
    with ctrl_c_after(6):
        assert infer.main(_args(setup, out)) == 130
    assert len(_masks(out)) == 6 and torch.load(out / SNAPSHOT_NAME)["position"] == 4
    return out


def test_nothing_to_resume_is_one_line_and_creates_nothing(setup, tmp_path, capsys):
    out = tmp_path / "never"
    rc, _, err = _run(_args(setup, out, "--resume"), capsys)
    assert rc == 1 and err.count("\n") == 1
    assert "nothing to resume" in err and SNAPSHOT_NAME in err
    assert not out.exists()


def test_bad_snapshots_are_one_line_errors_and_keep_masks(setup, interrupted, tmp_path, capsys):
    out = interrupted
    path = out / SNAPSHOT_NAME
    before = _masks(out)
    good = path.read_bytes()
    state = torch.load(path, weights_only=True)
    cases = {"version": {**state, "version": 99}, "another video": {
        **state, "run": {**state["run"], "video": "/elsewhere|frames=3|size=64x96"}}}
    for words, bad in cases.items():
        torch.save(bad, path)
        rc, _, err = _run(_args(setup, out, "--resume"), capsys)
        assert rc == 1 and err.count("\n") == 1 and words in err and str(path) in err, err
    path.write_bytes(good[: len(good) // 3])
    rc, _, err = _run(_args(setup, out, "--resume"), capsys)
    assert rc == 1 and "unreadable" in err and str(path) in err
    path.write_bytes(good)
    other = tmp_path / "other.png"
    write_mask(str(other), np.pad(np.ones((H - 20, W - 20), np.uint8), 10))
    argv = _args(setup, out, "--resume")
    argv[argv.index("--mask") + 1] = str(other)
    rc, _, err = _run(argv, capsys)
    assert rc == 1 and "other masks" in err
    assert _masks(out) == before and path.read_bytes() == good


def test_snapshot_in_folder_needs_resume(setup, interrupted, capsys):
    out = interrupted
    before = _masks(out)
    rc, _, err = _run(_args(setup, out), capsys)
    assert rc == 1 and "--resume" in err and SNAPSHOT_NAME in err
    rc, _, err = _run(_args(setup, out, "--resume", "--overlay", str(out / "x.mp4")), capsys)
    assert rc == 1 and "--overlay" in err
    rc, _, err = _run(_args(setup, out, "--snapshot-every", "0"), capsys)
    assert rc == 1 and "--snapshot-every" in err
    assert _masks(out) == before


def test_ctrl_c_then_resume_continues_the_coco_file(setup, tmp_path, capsys):
    """In one process: a run stopped by Ctrl-C after 6 frames resumes from its snapshot at
    frame 4; the COCO file (kept in memory until the end) comes out as an uninterrupted run's."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    fmt = ["--format", "palette", "coco"]
    assert _run(_args(setup, full, *fmt), capsys)[0] == 0
    with ctrl_c_after(6):
        assert _run(_args(setup, cut, *fmt), capsys)[0] == 130
    rc, out, err = _run(_args(setup, cut, "--resume", *fmt), capsys)
    assert rc == 0, err
    assert "resumed at frame 4 (4 masks kept)" in out and "segmented 14 frames" in out
    assert (cut / "coco.json").read_text() == (full / "coco.json").read_text()
    assert _masks(cut) == _masks(full) and not (cut / "INCOMPLETE").exists()
