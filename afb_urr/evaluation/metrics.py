"""J (region similarity), F (contour accuracy) and their statistics.

The numbers are those of the DAVIS 2017 evaluation package (semi-supervised
task), defined as follows:

* J = |A & B| / |A | B|, 1 when the union is empty. Void pixels are not
  excluded (the package passes no void mask in the semi-supervised task).
* F = 2PR / (P + R) of the one-pixel boundary maps, a boundary pixel of one
  mask being matched when a boundary pixel of the other lies within the disk
  of radius ``ceil(0.008 * sqrt(H^2 + W^2))`` (8 at 480x854: 0.008 * 979.65 = 7.84).
* Per object statistics over its scored frames: mean, recall (fraction of
  frames above 0.5) and decay (mean of the first quarter minus mean of the
  last quarter, quarters sharing their end points).

The fast path (``sequence_scores``) works per frame on the bounding box of
the two masks of an object, which gives exactly the full-frame result: every
boundary pixel lies in that box widened by one pixel up and left, and the
dilation only matters at boundary pixels.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np

BOUND_TH = 0.008  # boundary tolerance as a fraction of the image diagonal
N_BINS = 4        # decay compares the first and the last of 4 bins


def disk(radius: int) -> np.ndarray:
    """(2r+1) x (2r+1) uint8 structuring element: pixels with x^2 + y^2 <= r^2."""
    r = int(radius)
    if r != radius or r < 0:
        raise ValueError(f"disk radius must be a non-negative integer, got {radius!r}")
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def bound_pixels(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Boundary tolerance in pixels: ``bound_th`` itself when >= 1, else
    ``ceil(bound_th * sqrt(H^2 + W^2))`` (8 for 480x854)."""
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"a boundary tolerance >= 1 is a pixel count and must be an integer, got {bound_th}")
        return int(bound_th)
    if bound_th <= 0:
        raise ValueError(f"bound_th must be positive, got {bound_th}")
    return int(math.ceil(bound_th * math.sqrt(float(height * height + width * width))))


def _boundary(mask: np.ndarray, last_row_is_edge: bool = True, last_col_is_edge: bool = True) -> np.ndarray:
    """One-pixel boundary of a bool mask (..., h, w) -> bool (..., h, w).

    A pixel is on the boundary when it differs from its right, lower or
    lower-right neighbour, neighbours past the array being 0. When the last
    row / column of the array is the last row / column of the image, the
    DAVIS rules apply there: last row -> right test only, last column ->
    lower test only, bottom-right pixel never. When it is not (a crop whose
    next row / column is known to be empty), the zero padding is the truth.
    """
    m = np.asarray(mask, dtype=bool)
    *lead, h, w = m.shape
    p = np.zeros((*lead, h + 1, w + 1), dtype=bool)
    p[..., :h, :w] = m
    right = p[..., :h, 1:]
    down = p[..., 1:, :w]
    diag = p[..., 1:, 1:]
    b = (m ^ right) | (m ^ down) | (m ^ diag)
    if last_row_is_edge:
        b[..., h - 1, :] = m[..., h - 1, :] ^ right[..., h - 1, :]
    if last_col_is_edge:
        b[..., :, w - 1] = m[..., :, w - 1] ^ down[..., :, w - 1]
    if last_row_is_edge and last_col_is_edge:
        b[..., h - 1, w - 1] = False
    return b


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS boundary map (``_seg2bmap`` semantics) of a mask (..., H, W), any
    non-zero value being foreground -> bool (..., H, W)."""
    m = np.asarray(mask)
    if m.ndim < 2:
        raise ValueError(f"boundary_map needs a mask of shape (..., H, W), got shape {m.shape}")
    return _boundary(m != 0)


def j_measure(gt: np.ndarray, res: np.ndarray):
    """Region similarity of binary masks (..., H, W) -> float or array (...).

    |gt & res| / |gt | res|, 1 where the union is empty.
    """
    g = np.asarray(gt) != 0
    s = np.asarray(res) != 0
    if g.shape != s.shape:
        raise ValueError(f"ground truth {g.shape} and result {s.shape} shapes differ")
    inter = np.count_nonzero(g & s, axis=(-2, -1))
    union = np.count_nonzero(g | s, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    j = np.where(union == 0, 1.0, j)
    return float(j) if j.ndim == 0 else j


def f_from_counts(n_fg: int, n_gt: int, fg_match: int, gt_match: int) -> float:
    """F from boundary pixel counts, with the DAVIS conventions for empty maps."""
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = fg_match / float(n_fg)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _f_crop(g: np.ndarray, s: np.ndarray, last_row_is_edge: bool, last_col_is_edge: bool,
            kernel: np.ndarray) -> float:
    """F of two bool masks (h, w) that hold every boundary pixel of the frame."""
    gb = _boundary(g, last_row_is_edge, last_col_is_edge)
    sb = _boundary(s, last_row_is_edge, last_col_is_edge)
    n_gt = int(np.count_nonzero(gb))
    n_fg = int(np.count_nonzero(sb))
    if n_gt == 0 or n_fg == 0:
        return f_from_counts(n_fg, n_gt, 0, 0)
    # cv2.dilate treats pixels past the array as absent, as the package does
    # for the image border.
    gd = cv2.dilate(gb.view(np.uint8), kernel).view(bool)
    sd = cv2.dilate(sb.view(np.uint8), kernel).view(bool)
    fg_match = int(np.count_nonzero(sb & gd))
    gt_match = int(np.count_nonzero(gb & sd))
    return f_from_counts(n_fg, n_gt, fg_match, gt_match)


def _pair_scores(g: np.ndarray, s: np.ndarray, kernel: np.ndarray) -> tuple[float, float, int]:
    """(J, F, result pixel count) of one object in one frame; g, s bool (H, W)."""
    n_g = int(np.count_nonzero(g))
    n_s = int(np.count_nonzero(s))
    if n_g == 0 and n_s == 0:
        return 1.0, 1.0, 0  # empty union; both boundaries empty
    inter = int(np.count_nonzero(g & s))
    union = n_g + n_s - inter
    j = inter / union
    if inter == n_g == n_s:
        # Identical masks: identical boundaries, P = R = 1 (or both empty).
        return j, 1.0, n_s
    H, W = g.shape
    x, y, w, h = cv2.boundingRect((g | s).view(np.uint8))
    y0, x0 = max(y - 1, 0), max(x - 1, 0)
    y1, x1 = y + h, x + w
    f = _f_crop(g[y0:y1, x0:x1], s[y0:y1, x0:x1], y1 == H, x1 == W, kernel)
    return j, f, n_s


def f_measure(gt: np.ndarray, res: np.ndarray, bound_th: float = BOUND_TH):
    """Boundary F-measure of binary masks (..., H, W) -> float or array (...).

    Precision is measured on the result's boundary, recall on the ground
    truth's; the tolerance is ``bound_pixels(H, W, bound_th)``.
    """
    g = np.asarray(gt) != 0
    s = np.asarray(res) != 0
    if g.shape != s.shape:
        raise ValueError(f"ground truth {g.shape} and result {s.shape} shapes differ")
    if g.ndim < 2:
        raise ValueError(f"f_measure needs masks of shape (..., H, W), got shape {g.shape}")
    H, W = g.shape[-2:]
    kernel = disk(bound_pixels(H, W, bound_th))
    lead = g.shape[:-2]
    gf = np.ascontiguousarray(g.reshape(-1, H, W))
    sf = np.ascontiguousarray(s.reshape(-1, H, W))
    out = np.array([_pair_scores(gf[i], sf[i], kernel)[1] for i in range(gf.shape[0])], dtype=np.float64)
    out = out.reshape(lead)
    return float(out) if out.ndim == 0 else out


def frame_scores(gt: np.ndarray, res: np.ndarray, num_objects: int,
                 bound_th: float = BOUND_TH, kernel: np.ndarray | None = None,
                 with_counts: bool = False) -> np.ndarray:
    """J and F of objects 1..N in one frame of label maps (H, W) -> float64 (2, N).

    Object i is ``gt == i`` / ``res == i``; any other label (void 255 in the
    ground truth, labels above N) belongs to no object. ``with_counts`` adds a
    third row: the result's pixel count of each object.
    """
    if gt.shape != res.shape:
        raise ValueError(f"ground truth {gt.shape} and result {res.shape} shapes differ")
    if kernel is None:
        kernel = disk(bound_pixels(gt.shape[0], gt.shape[1], bound_th))
    out = np.empty((3, num_objects), dtype=np.float64)
    for k in range(num_objects):
        out[:, k] = _pair_scores(gt == k + 1, res == k + 1, kernel)
    return out if with_counts else out[:2]


def sequence_scores(gt: np.ndarray, res: np.ndarray, num_objects: int, bound_th: float = BOUND_TH,
                    workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every object in every frame of label stacks (T, H, W).

    Returns ``(J, F)``, each float64 (N, T). Frames run on ``workers`` threads
    (OpenCV and NumPy release the GIL); default: the number of CPUs, at most 8.
    """
    gt = np.asarray(gt)
    res = np.asarray(res)
    if gt.shape != res.shape or gt.ndim != 3:
        raise ValueError(f"need label stacks of equal shape (T, H, W), got {gt.shape} and {res.shape}")
    T, H, W = gt.shape
    kernel = disk(bound_pixels(H, W, bound_th))
    workers = default_workers() if workers is None else max(1, int(workers))
    jf = np.empty((2, num_objects, T), dtype=np.float64)

    def run(t: int) -> None:
        jf[:, :, t] = frame_scores(gt[t], res[t], num_objects, kernel=kernel)

    if workers == 1 or T == 1:
        for t in range(T):
            run(t)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, range(T)))
    return jf[0], jf[1]


def default_workers() -> int:
    """Threads used by default: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _decay_bins(n: int, davis_bins: bool) -> list[tuple[int, int]]:
    """[start, stop) of the 4 decay bins of n values.

    Bin edges are ``round(linspace(1, n, 5) + 1e-10) - 1`` and bin i is
    ``v[ids[i] : ids[i+1] + 1]``. With ``davis_bins`` the edges are uint8 as in
    the DAVIS package (they wrap past 255 scored frames); otherwise they are
    exact (long videos).
    """
    ids = np.round(np.linspace(1, n, N_BINS + 1) + 1e-10) - 1
    ids = ids.astype(np.int64)
    if davis_bins:
        # uint8 edges, and ``ids[i+1] + 1`` is uint8 arithmetic too.
        ids = ids % 256
        return [(int(ids[i]), int((ids[i + 1] + 1) % 256)) for i in range(N_BINS)]
    return [(int(ids[i]), int(ids[i + 1] + 1)) for i in range(N_BINS)]


def _nanmean(v: np.ndarray) -> float:
    """np.nanmean, NaN (without a warning) when no value is left."""
    if v.size == 0 or np.all(np.isnan(v)):
        return float("nan")
    return float(np.nanmean(v))


def db_statistics(values: Sequence[float], davis_bins: bool = True) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame values (n,).

    mean = nanmean(v); recall = nanmean(v > 0.5); decay = nanmean(bin 0) -
    nanmean(bin 3). NaN when n = 0. ``davis_bins=False`` computes the bins
    without the package's uint8 wrap (for sequences of more than 255 frames).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        nan = float("nan")
        return nan, nan, nan
    mean = _nanmean(v)
    recall = float(np.nanmean(v > 0.5))
    bins = [v[a:b] for a, b in _decay_bins(v.size, davis_bins)]
    decay = _nanmean(bins[0]) - _nanmean(bins[-1])
    return mean, recall, decay
