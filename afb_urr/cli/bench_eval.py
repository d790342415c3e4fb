"""``afb-urr-bench-eval`` / ``python tools/bench_eval.py``: speed of our J&F evaluator
against the DAVIS 2017 package's algorithm.

  python tools/bench_eval.py                           # DAVIS-2017-val shape: 30 x 70 frames, 480x854
  python tools/bench_eval.py --sequences 4 --frames 20 # smaller
  python tools/bench_eval.py --davis ROOT --results DIR --set val   # a real results folder

Without --davis it writes a synthetic DAVIS-shaped folder (ImageSets,
JPEG frames, palette-PNG ground truth of 1-5 moving blobs with void rings, results that
are shifted / grown / shrunk / dropped / noisy copies) into --dir (default:
a temporary folder) and scores it end to end (reading PNGs included) with:

* ours: ``afb_urr.evaluation.evaluate_davis`` (default threads, and 1 thread);
* reference: the package's algorithm as the package runs it, re-implemented
  here: float64 frame stacks, one-hot object stacks built by broadcasting,
  J per object over the stack, F per object per frame on the full frame
  (boundary map by shifted copies, cv2.dilate with the disk, products and
  sums), db_statistics;
* the davis2017 package itself, when it can be imported (it is not on PyPI
  and needs scikit-image; it is timed only if present).

Prints one row per implementation: median seconds over --repeat runs, the
ratio to ours, and the largest difference of any per-object statistic from
ours. Target: ours >= 5x faster than the reference on the full val shape.
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import statistics
import sys
import tempfile
import time
import warnings

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..evaluation import evaluate_davis
from ..evaluation.metrics import disk, f_from_counts
from ..io import davis_list, davis_palette, write_mask
from . import HelpFormatter, add_debug_option, run_tool


# ---------------------------------------------------------------- synthetic data

def _perturb(gt: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """A result for ground truth ``gt`` (k objects): a copy, shifted, grown, shrunk, with an
    object dropped, or with noise, chosen at random."""
    res = gt.copy()
    mode = rng.integers(0, 6)
    if mode == 1:
        res = np.roll(res, tuple(int(v) for v in rng.integers(-6, 7, size=2)), axis=(0, 1))
    elif mode == 2:
        res = cv2.dilate(res, np.ones((5, 5), np.uint8))
    elif mode == 3:
        res = cv2.erode(res, np.ones((7, 7), np.uint8))
    elif mode == 4:
        res[res == rng.integers(1, k + 1)] = 0
    elif mode == 5:
        noise = cv2.GaussianBlur(rng.random(gt.shape).astype(np.float32), (0, 0), 6)
        res[noise > np.quantile(noise, 0.97)] = rng.integers(0, k + 1)
    return res


def make_dataset(root: str, results: str, n_seq: int, n_frames: int, height: int, width: int,
                 max_objects: int, seed: int) -> None:
    """Write a DAVIS-shaped ground truth and a results folder (see module doc)."""
    rng = np.random.default_rng(seed)
    colours = davis_palette()
    names = [f"seq{i:03d}" for i in range(n_seq)]
    os.makedirs(os.path.join(root, "ImageSets", "2017"), exist_ok=True)
    with open(os.path.join(root, "ImageSets", "2017", "val.txt"), "w") as fh:
        fh.write("\n".join(names) + "\n")
    yy, xx = np.mgrid[0:height, 0:width]
    for name in tqdm(names, desc="synthetic data", unit="seq"):
        gt_dir = os.path.join(root, "Annotations", "480p", name)
        img_dir = os.path.join(root, "JPEGImages", "480p", name)
        res_dir = os.path.join(results, name)
        os.makedirs(gt_dir, exist_ok=True)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(res_dir, exist_ok=True)
        k = int(rng.integers(1, max_objects + 1))
        scale = min(height, width)
        centre = rng.uniform([0.2 * height, 0.2 * width], [0.8 * height, 0.8 * width], size=(k, 2))
        velocity = rng.normal(0, 0.004 * scale, size=(k, 2))
        axes = rng.uniform(0.05 * scale, 0.25 * scale, size=(k, 2))
        for t in range(n_frames):
            gt = np.zeros((height, width), np.uint8)
            for i in range(k):
                cy, cx = centre[i] + t * velocity[i]
                wobble = 1 + 0.15 * np.sin(0.2 * t + i)
                ay, ax = axes[i] * wobble
                y0, y1 = max(0, int(cy - ay)), min(height, int(cy + ay) + 2)
                x0, x1 = max(0, int(cx - ax)), min(width, int(cx + ax) + 2)
                if y0 >= y1 or x0 >= x1:
                    continue  # out of view
                inside = (((yy[y0:y1, x0:x1] - cy) / ay) ** 2 + ((xx[y0:y1, x0:x1] - cx) / ax) ** 2) <= 1
                gt[y0:y1, x0:x1][inside] = i + 1
            if t == 0:
                for i in range(k):  # every object is visible in the first frame
                    if not (gt == i + 1).any():
                        gt[int(i * 3) % height, : 5] = i + 1
            # the frame: object colours on grey, so the folder also has JPEGImages
            frame = colours[gt][:, :, ::-1].copy()
            frame[gt == 0] = 128
            cv2.imwrite(os.path.join(img_dir, f"{t:05d}.jpg"), cv2.GaussianBlur(frame, (0, 0), 2))
            res = _perturb(gt, rng, k)
            if rng.random() < 0.3:  # void ring on the ground-truth boundaries
                ring = cv2.morphologyEx((gt > 0).astype(np.uint8), cv2.MORPH_GRADIENT,
                                        np.ones((3, 3), np.uint8)) > 0
                gt[ring] = 255
            write_mask(os.path.join(gt_dir, f"{t:05d}.png"), gt)
            write_mask(os.path.join(res_dir, f"{t:05d}.png"), res)


# ---------------------------------------------------------------- reference

def _ref_boundary(seg: np.ndarray) -> np.ndarray:
    """Boundary map as the package computes it, on the full frame."""
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _ref_f(res: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """F of one object in one frame, full frame, as the package's f_measure."""
    no_void = np.logical_not(np.zeros_like(res).astype(bool))
    kernel = disk(int(np.ceil(bound_th * np.linalg.norm(res.shape))))
    fg_b = _ref_boundary(res * no_void)
    gt_b = _ref_boundary(gt * no_void)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel)
    gt_match = gt_b * fg_dil
    fg_match = fg_b * gt_dil
    return f_from_counts(int(np.sum(fg_b)), int(np.sum(gt_b)), int(np.sum(fg_match)), int(np.sum(gt_match)))


def _ref_stats(v: np.ndarray) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        m = np.nanmean(v)
        o = np.nanmean(v > 0.5)
        ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(np.int64).astype(np.uint8)
        bins = [v[ids[i]:ids[i + 1] + 1] for i in range(4)]
        d = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return m, o, d


def _one_hot(stack: np.ndarray, n: int) -> np.ndarray:
    """(n, T, H, W) bool from a float64 label stack, by broadcasting as the package does."""
    tmp = np.ones((n, *stack.shape)) * np.arange(1, n + 1)[:, None, None, None]
    return (tmp == stack[None, ...]) > 0


def reference_evaluate(results_dir: str, davis_root: str, subset: str = "val") -> dict[str, tuple]:
    """{'<seq>_<id>': (J stats, F stats)} by the package's algorithm."""
    seqs = davis_list(davis_root, subset)
    out = {}
    for seq in tqdm(seqs, desc="reference", unit="seq"):
        paths = sorted(glob.glob(os.path.join(davis_root, "Annotations", "480p", seq, "*.png")))
        first = np.array(Image.open(paths[0]))
        masks = np.zeros((len(paths), *first.shape))
        for i, p in enumerate(paths):
            masks[i, ...] = np.array(Image.open(p))
        for i in range(masks.shape[0]):
            masks[i, masks[i, ...] == 255] = 0
        n = int(np.max(masks[0, ...]))
        gt = _one_hot(masks, n)[:, 1:-1]
        ids = [os.path.splitext(os.path.basename(p))[0] for p in paths][1:-1]
        res = np.zeros((len(ids), *first.shape))
        for i, fid in enumerate(ids):
            res[i, ...] = np.array(Image.open(os.path.join(results_dir, seq, f"{fid}.png")))
        n_res = int(np.max(res))
        if n_res > n:
            raise ValueError(f"{seq}: an index higher than the number of objects")
        res = _one_hot(res, n_res)
        if n_res < n:
            res = np.concatenate([res, np.zeros((n - n_res, *res.shape[1:]), bool)], axis=0)
        for k in range(n):
            inter = np.sum(gt[k] & res[k], axis=(-2, -1))
            union = np.sum(gt[k] | res[k], axis=(-2, -1))
            with np.errstate(divide="ignore", invalid="ignore"):
                j = inter / union
            j[np.isclose(union, 0)] = 1
            f = np.zeros(len(ids))
            for t in range(len(ids)):
                f[t] = _ref_f(res[k, t], gt[k, t])
            out[f"{seq}_{k + 1}"] = (_ref_stats(j), _ref_stats(f))
    return out


def package_evaluate(results_dir: str, davis_root: str, subset: str = "val") -> dict[str, tuple] | None:
    """The davis2017 package's numbers, or None when it cannot be imported."""
    try:
        from davis2017.evaluation import DAVISEvaluation
    except Exception:
        return None
    ev = DAVISEvaluation(davis_root=davis_root, task="semi-supervised", gt_set=subset)
    m = ev.evaluate(results_dir)
    names = list(m["J"]["M_per_object"])
    return {name: ((m["J"]["M"][i], m["J"]["R"][i], m["J"]["D"][i]),
                   (m["F"]["M"][i], m["F"]["R"][i], m["F"]["D"][i])) for i, name in enumerate(names)}


# ---------------------------------------------------------------- timing

def _ours(results_dir, davis_root, subset, workers):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = evaluate_davis(results_dir, davis_root, subset=subset, workers=workers, progress=False)
    return {o.name: (o.j_stats, o.f_stats) for o in r.objects}


def _max_diff(a: dict, b: dict) -> float:
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for k in a:
        x = np.array(a[k], dtype=np.float64)
        y = np.array(b[k], dtype=np.float64)
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.where(both_nan, 0.0, np.abs(x - y))
        worst = max(worst, float(np.nanmax(np.where(np.isnan(d), np.inf, d))))
    return worst


def _median_time(fn, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=HelpFormatter)
    p.add_argument("--sequences", type=int, default=30, help="synthetic sequences (default 30, as DAVIS-2017 val)")
    p.add_argument("--frames", type=int, default=70, help="frames per synthetic sequence (default 70)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--max-objects", type=int, default=5, help="objects per sequence: 1..this (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", help="where the synthetic folder goes (default: a temporary folder)")
    p.add_argument("--davis", metavar="ROOT", help="bench on this DAVIS root instead of synthetic data")
    p.add_argument("--results", metavar="DIR", help="results folder for --davis")
    p.add_argument("--set", default="val")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per implementation; medians (default 3)")
    p.add_argument("--reference-repeat", type=int, default=None,
                   help="timed runs of the (slow) reference, default --repeat")
    p.add_argument("--workers", type=int, default=None, help="threads for ours (default: CPUs, at most 8)")
    p.add_argument("--skip-package", action="store_true", help="do not time the davis2017 package even if importable")
    add_debug_option(p)
    return p


def _time_all(results: str, root: str, args) -> tuple[list, int, int]:
    """(name, median seconds, max |diff| from ours) per implementation, and the reference's repeats."""
    ours_fn = lambda: _ours(results, root, args.set, args.workers)  # noqa: E731
    ours_fn()  # warm the page cache and imports
    t_ours, v_ours = _median_time(ours_fn, args.repeat)
    t_one, v_one = _median_time(lambda: _ours(results, root, args.set, 1), args.repeat)
    ref_rep = args.reference_repeat or args.repeat
    t_ref, v_ref = _median_time(lambda: reference_evaluate(results, root, args.set), ref_rep)
    rows = [("ours (default threads)", t_ours, _max_diff(v_ours, v_ours)),
            ("ours (1 thread)", t_one, _max_diff(v_one, v_ours)),
            ("reference (package algorithm)", t_ref, _max_diff(v_ref, v_ours))]
    if not args.skip_package:
        t_pkg, v_pkg = _median_time(lambda: package_evaluate(results, root, args.set), ref_rep)
        if v_pkg is not None:
            rows.append(("davis2017 package", t_pkg, _max_diff(v_pkg, v_ours)))
    return rows, len(v_ours), ref_rep


def _report(rows, n_obj: int, ref_rep: int, shape: str, args) -> int:
    t_ours = rows[0][1]
    print(f"\nJ&F evaluation, {shape}; {n_obj} objects; {os.cpu_count()} CPUs; medians of "
          f"{args.repeat} (ours) / {ref_rep} (others) runs")
    print(f"{'implementation':32s} {'seconds':>9s} {'vs ours':>9s} {'max |diff| of stats':>20s}")
    for name, t, d in rows:
        print(f"{name:32s} {t:9.2f} {t / t_ours:8.1f}x {d:20.2e}")
    print(f"speed-up over the package's algorithm: {rows[2][1] / t_ours:.1f}x (target >= 5x)")
    if any(math.isinf(d) or d > 1e-6 for _, _, d in rows):
        print("MISMATCH: an implementation differs from ours by more than 1e-6", file=sys.stderr)
        return 1
    return 0


def run(args) -> int:
    if args.davis:
        if not args.results:
            raise ValueError("--davis needs --results")
        rows, n_obj, ref_rep = _time_all(args.results, args.davis, args)
        return _report(rows, n_obj, ref_rep, "given folder", args)
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        base = args.dir or tmp
        root, results = os.path.join(base, "DAVIS"), os.path.join(base, "results")
        if not os.path.isfile(os.path.join(root, "ImageSets", "2017", "val.txt")):
            make_dataset(root, results, args.sequences, args.frames, args.height, args.width,
                         args.max_objects, args.seed)
        shape = (f"synthetic: {args.sequences} seq x {args.frames} frames, {args.width}x{args.height}, "
                 f"1-{args.max_objects} objects")
        rows, n_obj, ref_rep = _time_all(results, root, args)
        return _report(rows, n_obj, ref_rep, shape, args)


def main(argv: list[str] | None = None) -> int:
    return run_tool(build_parser(), run, argv)
