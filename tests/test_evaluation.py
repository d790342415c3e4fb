"""afb_urr.evaluation against a literal, slow reading of the DAVIS definitions.

The reference below follows the definitions in afb_urr/evaluation/metrics.py word by word (per-pixel boundary
rules, dilation by testing every disk offset, the stated precision / recall
conventions, the uint8 decay bins); it shares no code with the package.
Tolerance: 1e-12 (the fast path does the same float operations, so the
numbers are in fact equal).
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from afb_urr.evaluation import (EvaluationResult, MaskFormatError, ObjectScores, ResultsError, bound_pixels,
                                boundary_map, davis_sequences, db_statistics, disk, evaluate_davis,
                                evaluate_long_video, f_measure, frame_scores, j_measure, read_index_png,
                                sequence_scores, write_csvs)
from afb_urr.evaluation.report import global_csv_text, sequence_csv_text

TOL = 1e-12


# ---------------------------------------------------------------- literal reference

def ref_boundary_loops(mask: np.ndarray) -> np.ndarray:
    """Per pixel: differs from right / lower / lower-right neighbour (outside = 0);
    last row: right test only; last column: lower test only; bottom-right: never."""
    m = np.asarray(mask).astype(bool)
    H, W = m.shape

    def at(y, x):
        return bool(m[y, x]) if y < H and x < W else False

    b = np.zeros((H, W), bool)
    for y in range(H):
        for x in range(W):
            v = bool(m[y, x])
            if y == H - 1 and x == W - 1:
                b[y, x] = False
            elif y == H - 1:
                b[y, x] = v != at(y, x + 1)
            elif x == W - 1:
                b[y, x] = v != at(y + 1, x)
            else:
                b[y, x] = v != at(y, x + 1) or v != at(y + 1, x) or v != at(y + 1, x + 1)
    return b


def ref_boundary_shift(mask: np.ndarray) -> np.ndarray:
    """The same rules with shifted copies (checked against the loops on small masks,
    used on full-size frames where the loops are too slow)."""
    m = np.asarray(mask).astype(bool)
    H, W = m.shape
    right = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    down = np.zeros_like(m)
    down[:-1, :] = m[1:, :]
    diag = np.zeros_like(m)
    diag[:-1, :-1] = m[1:, 1:]
    b = (m != right) | (m != down) | (m != diag)
    b[H - 1, :] = m[H - 1, :] != right[H - 1, :]
    b[:, W - 1] = m[:, W - 1] != down[:, W - 1]
    b[H - 1, W - 1] = False
    return b


def ref_radius(H: int, W: int, bound_th: float) -> int:
    return int(bound_th) if bound_th >= 1 else math.ceil(bound_th * math.sqrt(H * H + W * W))


def ref_dilate(b: np.ndarray, r: int) -> np.ndarray:
    """out[y, x] = some b[y + dy, x + dx] with dx^2 + dy^2 <= r^2 inside the image."""
    H, W = b.shape
    out = np.zeros_like(b, dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > r * r:
                continue
            ys, ye = max(0, -dy), min(H, H - dy)
            xs, xe = max(0, -dx), min(W, W - dx)
            if ys < ye and xs < xe:
                out[ys:ye, xs:xe] |= b[ys + dy:ye + dy, xs + dx:xe + dx]
    return out


def ref_jf(gt: np.ndarray, res: np.ndarray, bound_th: float = 0.008, boundary=ref_boundary_loops):
    """(J, F) of binary masks per the definitions in metrics.py."""
    g = np.asarray(gt).astype(bool)
    s = np.asarray(res).astype(bool)
    union = int((g | s).sum())
    j = 1.0 if union == 0 else int((g & s).sum()) / union
    H, W = g.shape
    r = ref_radius(H, W, bound_th)
    gb, sb = boundary(g), boundary(s)
    n_fg, n_gt = int(sb.sum()), int(gb.sum())
    if n_fg == 0 and n_gt == 0:
        p, rc = 1.0, 1.0
    elif n_fg == 0:
        p, rc = 1.0, 0.0
    elif n_gt == 0:
        p, rc = 0.0, 1.0
    else:
        p = int((sb & ref_dilate(gb, r)).sum()) / n_fg
        rc = int((gb & ref_dilate(sb, r)).sum()) / n_gt
    f = 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)
    return j, f


def ref_labels(gt_labels, res_labels, n, bound_th=0.008, boundary=ref_boundary_loops):
    """(2, n) J / F of objects 1..n of two label maps; void 255 in gt -> 0."""
    gt = np.asarray(gt_labels).copy()
    gt[gt == 255] = 0
    return np.array([ref_jf(gt == i, res_labels == i, bound_th, boundary) for i in range(1, n + 1)]).T.reshape(2, n)


def ref_stats(values, davis_bins=True):
    """mean, recall, decay as metrics.py states, uint8 bin edges for DAVIS."""
    v = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = np.nanmean(v)
        o = np.nanmean(v > 0.5)
        ids = np.round(np.linspace(1, len(v), 5) + 1e-10) - 1
        if davis_bins:
            ids = ids.astype(np.int64).astype(np.uint8)
            one = np.uint8(1)
        else:
            ids = ids.astype(np.int64)
            one = 1
        bins = [v[ids[i]:ids[i + 1] + one] for i in range(4)]
        d = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return m, o, d


# ---------------------------------------------------------------- random masks

def blob_labels(rng, H, W, n_obj, p_empty=0.15, touch_border=True):
    """A label map of n_obj random blobs (ellipses and rectangles, some touching
    the image border, some absent)."""
    lab = np.zeros((H, W), np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(1, n_obj + 1):
        if rng.random() < p_empty:
            continue
        kind = rng.integers(0, 3)
        if kind == 0:
            cy, cx = rng.uniform(-0.2 * H, 1.2 * H), rng.uniform(-0.2 * W, 1.2 * W)
            ay, ax = rng.uniform(0.5, 0.6 * H + 1), rng.uniform(0.5, 0.6 * W + 1)
            m = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1
        elif kind == 1:
            y0, x0 = rng.integers(0, H), rng.integers(0, W)
            y1 = H if (touch_border and rng.random() < 0.4) else rng.integers(y0, H + 1)
            x1 = W if (touch_border and rng.random() < 0.4) else rng.integers(x0, W + 1)
            m = np.zeros((H, W), bool)
            m[y0:y1, x0:x1] = True
        else:
            m = rng.random((H, W)) < rng.uniform(0.02, 0.5)  # speckle: many tiny components
        lab[m] = i
    return lab


def perturb(rng, lab, n_obj):
    """A result-like copy: shifted, label-swapped, cleared or noisy."""
    r = lab.copy()
    mode = rng.integers(0, 5)
    if mode == 1:
        r = np.roll(r, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    elif mode == 2 and n_obj > 1:
        a, b = rng.choice(np.arange(1, n_obj + 1), 2, replace=False)
        r = np.where(r == a, b, np.where(r == b, a, r)).astype(np.uint8)
    elif mode == 3:
        r[r == rng.integers(1, n_obj + 1)] = 0
    elif mode == 4:
        noise = rng.random(r.shape) < 0.05
        r[noise] = rng.integers(0, n_obj + 1, size=int(noise.sum()))
    return r


# ---------------------------------------------------------------- tests: basic pieces

def test_disk_and_tolerance():
    for r in range(0, 9):
        d = disk(r)
        assert d.shape == (2 * r + 1, 2 * r + 1) and d.dtype == np.uint8
        for y in range(-r, r + 1):
            for x in range(-r, r + 1):
                assert d[y + r, x + r] == (x * x + y * y <= r * r)
    assert disk(7).sum() == 149
    assert bound_pixels(480, 854) == 8  # ceil(0.008 * 979.65), as the package gives
    for H, W in [(480, 910), (1, 1), (37, 53), (720, 1280), (100, 100)]:
        assert bound_pixels(H, W) == ref_radius(H, W, 0.008)
    assert bound_pixels(10, 10, 3) == 3
    with pytest.raises(ValueError):
        bound_pixels(10, 10, 2.5)
    with pytest.raises(ValueError):
        disk(1.5)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (5, 7), (17, 13), (24, 31)])
def test_boundary_map_matches_the_per_pixel_rules(shape):
    rng = np.random.default_rng(sum(shape))
    masks = [np.zeros(shape, bool), np.ones(shape, bool)]
    masks += [rng.random(shape) < p for p in (0.1, 0.5, 0.9)]
    masks += [blob_labels(rng, *shape, 1, p_empty=0.0) > 0 for _ in range(3)]
    for m in masks:
        want = ref_boundary_loops(m)
        np.testing.assert_array_equal(boundary_map(m), want)
        np.testing.assert_array_equal(ref_boundary_shift(m), want)
    # batched: (..., H, W)
    stack = np.stack(masks)
    np.testing.assert_array_equal(boundary_map(stack), np.stack([ref_boundary_loops(m) for m in masks]))


def test_full_frame_mask_has_no_boundary():
    assert not boundary_map(np.ones((6, 8), bool)).any()
    # so a full-frame truth against a partial prediction is P = 0, R = 1 -> F = 0
    g = np.ones((30, 40), bool)
    s = np.zeros((30, 40), bool)
    s[5:20, 5:30] = True
    assert f_measure(g, s) == 0.0
    assert j_measure(g, s) == pytest.approx(15 * 25 / (30 * 40), abs=TOL)


# ---------------------------------------------------------------- hand-made cases

def _square(H=40, W=40, y=10, x=10, size=10):
    m = np.zeros((H, W), bool)
    m[y:y + size, x:x + size] = True
    return m


def test_hand_made_masks():
    a = _square()
    # identical
    assert j_measure(a, a) == 1.0 and f_measure(a, a) == 1.0
    # disjoint and far apart (tolerance is ceil(0.008 * 56.6) = 1 pixel)
    far = _square(y=25, x=25)
    assert j_measure(a, far) == 0.0 and f_measure(a, far) == 0.0
    # shifted right by one pixel: 90 shared pixels of 110; every boundary pixel 1 px away
    shifted = _square(x=11)
    assert j_measure(a, shifted) == pytest.approx(90 / 110, abs=TOL)
    assert f_measure(a, shifted) == 1.0
    # empty prediction: J = 0; P = 1, R = 0 -> F = 0
    empty = np.zeros_like(a)
    assert j_measure(a, empty) == 0.0 and f_measure(a, empty) == 0.0
    # empty truth: J = 0; P = 0, R = 1 -> F = 0
    assert j_measure(empty, a) == 0.0 and f_measure(empty, a) == 0.0
    # both empty: J = 1 (empty union), F = 1 (P = R = 1)
    assert j_measure(empty, empty) == 1.0 and f_measure(empty, empty) == 1.0


def test_hand_made_partial_boundary_match():
    # Tolerance 1 px (a plus-shaped disk). A single pixel's boundary is the 2x2
    # block ending at it; pixels (2,2) and (2,4) have boundaries
    # {(1,1),(1,2),(2,1),(2,2)} and {(1,3),(1,4),(2,3),(2,4)}: half of each
    # lies within 1 px of the other -> P = R = 0.5, F = 0.5; J = 0.
    g = np.zeros((8, 8), bool)
    s = np.zeros((8, 8), bool)
    g[2, 2] = True
    s[2, 4] = True
    assert f_measure(g, s, bound_th=1) == pytest.approx(0.5, abs=TOL)
    assert j_measure(g, s) == 0.0
    # 3 px apart -> nothing matches
    s2 = np.zeros((8, 8), bool)
    s2[2, 5] = True
    assert f_measure(g, s2, bound_th=1) == 0.0


def test_void_counts_as_background():
    gt = np.zeros((30, 40), np.uint8)
    gt[5:15, 5:15] = 1
    gt[15:17, 5:15] = 255  # void band under the object
    res = np.zeros_like(gt)
    res[5:17, 5:15] = 1  # the prediction covers the void band
    scores = frame_scores(gt, res, 1)
    assert scores[0, 0] == pytest.approx(100 / 120, abs=TOL)
    np.testing.assert_allclose(scores, ref_labels(gt, res, 1), atol=TOL)


# ---------------------------------------------------------------- random against the reference

@pytest.mark.parametrize("bound_th", [0.008, 0.05, 0.15, 2])
def test_random_frames_match_reference(bound_th):
    rng = np.random.default_rng(int(bound_th * 1000))
    shapes = [(1, 7), (7, 1), (3, 3), (13, 17), (29, 23), (40, 61)]
    for trial in range(18):
        H, W = shapes[trial % len(shapes)]
        n = int(rng.integers(1, 5))
        gt = blob_labels(rng, H, W, n)
        if rng.random() < 0.3:
            gt[rng.random((H, W)) < 0.05] = 255
        res = perturb(rng, np.where(gt == 255, 0, gt).astype(np.uint8), n)
        got = frame_scores(gt, res, n, bound_th=bound_th)
        np.testing.assert_allclose(got, ref_labels(gt, res, n, bound_th), atol=TOL, rtol=0)


def test_full_size_frame_matches_reference():
    rng = np.random.default_rng(7)
    H, W = 480, 854
    gt = blob_labels(rng, H, W, 3, p_empty=0.0)
    res = perturb(rng, gt, 3)
    res[400:, 700:] = 2  # a blob touching the bottom-right corner
    got = frame_scores(gt, res, 3)
    want = ref_labels(gt, res, 3, boundary=ref_boundary_shift)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_stack_apis_and_threads_agree():
    rng = np.random.default_rng(3)
    T, H, W, n = 6, 33, 47, 3
    gt = np.stack([blob_labels(rng, H, W, n) for _ in range(T)])
    res = np.stack([perturb(rng, g, n) for g in gt])
    j1, f1 = sequence_scores(gt, res, n, workers=1)
    j2, f2 = sequence_scores(gt, res, n, workers=3)
    np.testing.assert_array_equal(j1, j2)
    np.testing.assert_array_equal(f1, f2)
    for k in range(n):
        np.testing.assert_allclose(j_measure(gt == k + 1, res == k + 1), j1[k], atol=TOL)
        np.testing.assert_allclose(f_measure(gt == k + 1, res == k + 1), f1[k], atol=TOL)
        for t in range(T):
            assert (j1[k, t], f1[k, t]) == pytest.approx(ref_jf(gt[t] == k + 1, res[t] == k + 1), abs=TOL)
    with pytest.raises(ValueError, match="shapes differ"):
        j_measure(np.zeros((3, 4)), np.zeros((4, 3)))


# ---------------------------------------------------------------- statistics

def test_statistics_on_made_up_sequences():
    # 8 frames: bins [0:3], [2:5], [4:6], [5:8]
    m, r, d = db_statistics([1, 1, 1, 1, 0, 0, 0, 0])
    assert (m, r, d) == (0.5, 0.5, 1.0)
    # 10 frames 0.9 .. 0.0: bins [0:3] (mean 0.8) ... [7:10] (mean 0.1)
    v = 0.1 * np.arange(10)[::-1]
    m, r, d = db_statistics(v)
    assert m == pytest.approx(0.45, abs=TOL)
    assert r == pytest.approx(0.4, abs=TOL)
    assert d == pytest.approx(0.7, abs=TOL)
    # NaN frames are skipped by the mean; a single frame has no decay
    m, r, d = db_statistics([np.nan, 1.0, 0.0])
    assert m == 0.5 and r == pytest.approx(1 / 3, abs=TOL)
    assert db_statistics([0.7]) == (0.7, 1.0, 0.0)
    assert all(math.isnan(x) for x in db_statistics([]))


def test_statistics_match_reference_and_the_uint8_quirk():
    rng = np.random.default_rng(11)
    differs = []
    for n in list(range(1, 40)) + [254, 255, 256, 257, 300, 511, 600]:
        v = rng.random(n)
        if n > 5:
            v[rng.integers(0, n, size=2)] = np.nan
        for davis in (True, False):
            got = db_statistics(v, davis_bins=davis)
            want = ref_stats(v, davis)
            np.testing.assert_allclose(got, want, atol=TOL, equal_nan=True)
        if not np.allclose(db_statistics(v, True), db_statistics(v, False), equal_nan=True):
            differs.append(n)
    # identical up to 255 scored frames; the wrap shows beyond
    assert differs and min(differs) > 255


# ---------------------------------------------------------------- CSV layout

def test_csv_layout(tmp_path):
    objs = [ObjectScores("bear", 1, ["00001", "00002"], np.array([0.5, 1.0]), np.array([0.25, 0.75])),
            ObjectScores("bear", 2, ["00001", "00002"], np.array([1.0, 1.0]), np.array([1.0, 0.0])),
            ObjectScores("dog", 1, ["00001", "00002"], np.array([0.0, 0.2]), np.array([0.1, 0.3]))]
    result = EvaluationResult(objs, subset="val")
    g_path, s_path = write_csvs(result, str(tmp_path))
    assert os.path.basename(g_path) == "global_results-val.csv"
    assert os.path.basename(s_path) == "per-sequence_results-val.csv"
    # J-Mean per object 0.75, 1, 0.1 -> 0.61667; F-Mean 0.5, 0.5, 0.2 -> 0.4
    # J-Recall (1/2, 1, 0) -> 0.5; F-Recall (1/2, 1/2, 0) -> 1/3
    # J-Decay (0.5-1, 0, -0.2) -> -0.2333; F-Decay (-0.5, 1, -0.2) -> 0.1
    assert open(g_path).read() == (
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
        "0.508,0.617,0.500,-0.233,0.400,0.333,0.100\n")
    assert open(s_path).read() == ("Sequence,J-Mean,F-Mean\n"
                                   "bear_1,0.750,0.500\n"
                                   "bear_2,1.000,0.500\n"
                                   "dog_1,0.100,0.200\n")
    assert global_csv_text(result) == open(g_path).read()
    assert sequence_csv_text(result) == open(s_path).read()
    # NaN (an object with no scored frame) is an empty field, as pandas writes it
    nan_obj = ObjectScores("x", 1, [], np.array([]), np.array([]))
    assert sequence_csv_text(EvaluationResult([nan_obj])).splitlines()[1] == "x_1,,"


# ---------------------------------------------------------------- folders

def _palette():
    pal = np.zeros((256, 3), np.uint8)
    pal[1:8] = [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128], [128] * 3]
    return pal.ravel().tolist()


def _save(arr, path, mode="P"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(np.asarray(arr, np.uint8), mode="L")
    if mode == "P":
        im = im.convert("P")
        im.putpalette(_palette())
    im.save(path)


def make_davis(tmp_path, seqs=(("a", 2, 6), ("b", 1, 5)), H=24, W=36, seed=0):
    """A tiny DAVIS-2017 root and a results folder; returns (root, results, gt, res)."""
    rng = np.random.default_rng(seed)
    root, results = tmp_path / "DAVIS", tmp_path / "res"
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s, _, _ in seqs))
    gts, ress = {}, {}
    for name, n, T in seqs:
        gt = np.stack([blob_labels(rng, H, W, n, p_empty=0.0 if t == 0 else 0.15) for t in range(T)])
        for k in range(1, n + 1):
            gt[0, k - 1, k - 1] = k  # every object in the first frame
        gt[min(2, T - 1)][rng.random((H, W)) < 0.03] = 255  # void
        res = np.stack([perturb(rng, np.where(g == 255, 0, g).astype(np.uint8), n) for g in gt])
        for t in range(T):
            _save(gt[t], str(root / "Annotations" / "480p" / name / f"{t:05d}.png"))
            _save(res[t], str(results / name / f"{t:05d}.png"), mode="P" if t % 2 else "L")
        gts[name], ress[name] = gt, res
    return str(root), str(results), gts, ress


def test_evaluate_davis_folder_matches_reference(tmp_path):
    root, results, gts, ress = make_davis(tmp_path)
    r = evaluate_davis(results, root, progress=False, workers=2)
    assert [o.name for o in r.objects] == ["a_1", "a_2", "b_1"]
    for o in r.objects:
        gt, res = gts[o.sequence], ress[o.sequence]
        n = int(np.where(gt[0] == 255, 0, gt[0]).max())
        T = gt.shape[0]
        assert o.frames == [f"{t:05d}" for t in range(1, T - 1)]  # first and last not scored
        want = np.array([ref_labels(gt[t], res[t], n)[:, o.object_id - 1] for t in range(1, T - 1)])
        np.testing.assert_allclose(o.j, want[:, 0], atol=TOL)
        np.testing.assert_allclose(o.f, want[:, 1], atol=TOL)
        np.testing.assert_allclose(o.j_stats, ref_stats(want[:, 0]), atol=TOL)
    stats = r.global_stats()
    jm = np.mean([o.j_stats[0] for o in r.objects])
    fm = np.mean([o.f_stats[0] for o in r.objects])
    assert stats["J&F-Mean"] == pytest.approx((jm + fm) / 2, abs=TOL)
    assert stats["J-Decay"] == pytest.approx(np.mean([o.j_stats[2] for o in r.objects]), abs=TOL)


def test_long_video_scores_only_annotated_frames(tmp_path):
    rng = np.random.default_rng(5)
    root, results = tmp_path / "long", tmp_path / "res"
    annotated = [0, 7, 15, 40, 41]
    gt = {t: blob_labels(rng, 20, 30, 2, p_empty=0.0) for t in annotated}
    gt[0][0, 0], gt[0][0, 1] = 1, 2
    for t in range(45):  # results on every frame; only annotated ones count
        res = perturb(rng, gt[t], 2) if t in gt else np.full((20, 30), 1, np.uint8)
        _save(res, str(results / "vid" / f"{t:05d}.png"))
    for t in annotated:
        _save(gt[t], str(root / "Annotations" / "vid" / f"{t:05d}.png"))
    r = evaluate_long_video(str(results), str(root), progress=False)
    assert [o.name for o in r.objects] == ["vid_1", "vid_2"]
    assert r.objects[0].frames == ["00007", "00015", "00040", "00041"]  # last annotated included
    assert r.objects[0].davis_bins is False
    res41 = read_index_png(str(results / "vid" / "00041.png"))
    assert (r.objects[1].j[-1], r.objects[1].f[-1]) == pytest.approx(ref_jf(gt[41] == 2, res41 == 2), abs=TOL)


# ---------------------------------------------------------------- bad input

def test_missing_sequence_and_frame_are_named(tmp_path):
    root, results, _, _ = make_davis(tmp_path)
    os.rename(os.path.join(results, "b"), os.path.join(results, "b_moved"))
    with pytest.raises(FileNotFoundError, match=r"res/b"):
        evaluate_davis(results, root, progress=False)
    os.rename(os.path.join(results, "b_moved"), os.path.join(results, "b"))
    os.remove(os.path.join(results, "a", "00003.png"))
    with pytest.raises(FileNotFoundError, match=r"a/00003\.png"):
        evaluate_davis(results, root, progress=False)
    # the first and the last frames are not scored, so they may be missing
    _save(np.zeros((24, 36)), os.path.join(results, "a", "00003.png"))
    os.remove(os.path.join(results, "a", "00000.png"))
    os.remove(os.path.join(results, "a", "00005.png"))
    evaluate_davis(results, root, progress=False)
    with pytest.raises(FileNotFoundError, match=r"ImageSets/2017/train.txt"):
        evaluate_davis(results, root, subset="train", progress=False)


def test_wrong_size_and_unknown_label_are_named(tmp_path):
    root, results, _, _ = make_davis(tmp_path)
    bad = os.path.join(results, "a", "00002.png")
    _save(np.zeros((24, 35)), bad)
    with pytest.raises(ResultsError, match=r"a/00002\.png.*35x24"):
        evaluate_davis(results, root, progress=False)
    lab = np.zeros((24, 36))
    lab[3, 3] = 3  # sequence a has 2 objects
    _save(lab, bad)
    with pytest.raises(ResultsError, match=r"a/00002\.png: label 3 is an index higher than the number of objects"):
        evaluate_davis(results, root, progress=False)
    lab[3, 3] = 255
    _save(lab, bad)
    with pytest.raises(ResultsError, match="void"):
        evaluate_davis(results, root, progress=False)
    Image.fromarray(np.zeros((24, 36, 3), np.uint8)).save(bad)
    with pytest.raises(MaskFormatError, match=r"a/00002\.png: image mode RGB"):
        evaluate_davis(results, root, progress=False)


def test_object_never_predicted_scores_zero_with_a_warning(tmp_path):
    root, results, gts, _ = make_davis(tmp_path, seqs=(("a", 2, 5),))
    for t in range(5):
        lab = np.where(gts["a"][t] == 1, 1, 0)
        _save(lab, os.path.join(results, "a", f"{t:05d}.png"))
    with pytest.warns(UserWarning, match="object 2 is never predicted"):
        r = evaluate_davis(results, root, progress=False)
    obj2 = r.objects[1]
    has2 = np.array([(gts["a"][t] == 2).any() for t in range(1, 4)])
    np.testing.assert_array_equal(obj2.j, np.where(has2, 0.0, 1.0))
    np.testing.assert_array_equal(r.objects[0].j, 1.0)


def test_too_short_sequence_is_an_error(tmp_path):
    root, results, _, _ = make_davis(tmp_path, seqs=(("a", 1, 2),))
    with pytest.raises(ValueError, match="at least 3"):
        davis_sequences(root)


# ---------------------------------------------------------------- PNG reading

def test_read_index_png_fast_and_pillow_paths_agree(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 6, size=(17, 23)).astype(np.uint8)
    cases = {}
    im = Image.fromarray(a, mode="L").convert("P")
    im.putpalette(_palette())
    im.save(tmp_path / "p8.png")           # 8-bit palette, unfiltered: fast path
    cases["p8.png"] = a
    Image.fromarray(a, mode="L").save(tmp_path / "l8.png")  # grey, row filters: Pillow
    cases["l8.png"] = a
    small = Image.fromarray(a % 4, mode="L").convert("P")
    small.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    small.save(tmp_path / "p2.png")        # 2-bit palette: Pillow
    cases["p2.png"] = a % 4
    Image.fromarray(a.astype(np.uint16) * 300).save(tmp_path / "i16.png")  # 16-bit grey
    cases["i16.png"] = a.astype(np.uint16) * 300
    for name, want in cases.items():
        got = read_index_png(str(tmp_path / name))
        np.testing.assert_array_equal(got, want, err_msg=name)
        np.testing.assert_array_equal(got, np.array(Image.open(tmp_path / name)), err_msg=name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(MaskFormatError, match="broken.png"):
        read_index_png(str(tmp_path / "broken.png"))
    with pytest.raises(FileNotFoundError):
        read_index_png(str(tmp_path / "absent.png"))
