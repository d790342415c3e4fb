"""Scoring a results folder against DAVIS-2017 or sparse long-video ground truth.

DAVIS protocol (semi-supervised, as the DAVIS 2017 package): the sequences
are those of ``ImageSets/2017/<set>.txt``; the frames of a sequence are its
ground-truth PNGs ``Annotations/<resolution>/<seq>/*.png`` in name order; the
first and the last are not scored; the number of objects is the largest
label of the first frame (void 255 set to 0 first); the result of frame
``<id>.png`` is ``<results>/<seq>/<id>.png``.

Long-video protocol: the videos are the folders of ``Annotations/`` (ground
truth on a sparse set of frames); every annotated frame but the first is
scored (the last one too, as in the AFB-URR long-video scorer), and the
decay bins are computed without the package's uint8 wrap.
"""
from __future__ import annotations

import glob
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from .metrics import BOUND_TH, bound_pixels, db_statistics, default_workers, disk, frame_scores
from ..io import VOID as VOID_LABEL
from ..io import davis_list, read_index_png, require_dir

SUBSETS = ("train", "val", "test-dev", "test-challenge")


class ResultsError(ValueError):
    """A results folder that cannot be scored (wrong size, unknown label)."""


@dataclass
class SequenceSpec:
    """One sequence to score: its ground-truth PNGs (frame order) and which of
    them are scored (indices into ``gt_paths``)."""
    name: str
    gt_paths: list[str]
    scored: list[int]

    @property
    def frame_ids(self) -> list[str]:
        """File stems of the ground-truth PNGs, e.g. ``00042``."""
        return [os.path.splitext(os.path.basename(p))[0] for p in self.gt_paths]


@dataclass
class ObjectScores:
    """Per-frame J and F of one object over its scored frames (n,)."""
    sequence: str
    object_id: int
    frames: list[str]
    j: np.ndarray
    f: np.ndarray
    davis_bins: bool = True

    @property
    def name(self) -> str:
        """``<sequence>_<object id>``, the row name of the per-sequence CSV."""
        return f"{self.sequence}_{self.object_id}"

    @property
    def j_stats(self) -> tuple[float, float, float]:
        """(J-Mean, J-Recall, J-Decay)."""
        return db_statistics(self.j, self.davis_bins)

    @property
    def f_stats(self) -> tuple[float, float, float]:
        """(F-Mean, F-Recall, F-Decay)."""
        return db_statistics(self.f, self.davis_bins)


GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


@dataclass
class EvaluationResult:
    """All objects of all scored sequences, in sequence order."""
    objects: list[ObjectScores] = field(default_factory=list)
    subset: str = "val"
    mode: str = "davis"

    def global_stats(self) -> dict[str, float]:
        """The global row: each statistic averaged over objects (not sequences);
        J&F-Mean = (J-Mean + F-Mean) / 2."""
        if not self.objects:
            raise ValueError("no object was scored")
        js = np.array([o.j_stats for o in self.objects], dtype=np.float64)
        fs = np.array([o.f_stats for o in self.objects], dtype=np.float64)
        jm, jr, jd = (float(np.mean(js[:, i])) for i in range(3))
        fm, fr, fd = (float(np.mean(fs[:, i])) for i in range(3))
        values = ((jm + fm) / 2.0, jm, jr, jd, fm, fr, fd)
        return dict(zip(GLOBAL_COLUMNS, values))

    def sequences(self) -> list[str]:
        """Sequence names in order of first appearance."""
        return list(dict.fromkeys(o.sequence for o in self.objects))


def _sorted_pngs(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(folder), "*.png")))


def davis_sequences(davis_root: str, subset: str = "val", resolution: str = "480p",
                    sequences: Sequence[str] | None = None) -> list[SequenceSpec]:
    """Sequences of a DAVIS-2017 root, scored frames 1..n-2 of each.

    Raises FileNotFoundError naming the missing folder / list file, and
    ValueError for an empty list or a sequence with fewer than 3 ground-truth frames.
    """
    require_dir(davis_root, "DAVIS root")
    ann_root = require_dir(os.path.join(davis_root, "Annotations", resolution), "ground truth")
    if sequences is None:
        if subset not in SUBSETS:
            raise ValueError(f"unknown DAVIS set {subset!r}; expected one of {', '.join(SUBSETS)}")
        sequences = davis_list(davis_root, subset)
    specs = []
    for seq in sequences:
        folder = os.path.join(ann_root, seq)
        paths = _sorted_pngs(folder)
        if not paths:
            raise FileNotFoundError(f"no ground-truth PNGs in {folder} (sequence {seq})")
        if len(paths) < 3:
            raise ValueError(
                f"{folder} has {len(paths)} ground-truth PNG(s); the DAVIS protocol scores all "
                f"but the first and the last, so it needs at least 3 (a set without full "
                f"ground truth, e.g. test-dev, cannot be scored locally)")
        specs.append(SequenceSpec(seq, paths, list(range(1, len(paths) - 1))))
    return specs


def long_video_sequences(root: str, sequences: Sequence[str] | None = None) -> list[SequenceSpec]:
    """Videos of a long-video root (``Annotations/<video>/*.png``, sparse):
    every annotated frame but the first is scored, the last included."""
    ann_root = require_dir(os.path.join(root, "Annotations"), "ground truth")
    if sequences is None:
        sequences = sorted(d for d in os.listdir(ann_root) if os.path.isdir(os.path.join(ann_root, d)))
        if not sequences:
            raise FileNotFoundError(f"no video folders in {ann_root}")
    specs = []
    for seq in sequences:
        folder = os.path.join(ann_root, seq)
        paths = _sorted_pngs(folder)
        if len(paths) < 2:
            raise ValueError(f"{folder} has {len(paths)} ground-truth PNG(s); at least 2 are needed "
                             f"(the first annotated frame is the reference and is not scored)")
        specs.append(SequenceSpec(seq, paths, list(range(1, len(paths)))))
    return specs


def check_results_folder(results_dir: str, specs: Iterable[SequenceSpec]) -> None:
    """Fail early, naming what is missing: the results folder, a sequence
    folder, or the result PNG of a scored frame."""
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"results folder {results_dir} not found")
    missing_seqs, missing_frames = [], []
    for spec in specs:
        folder = os.path.join(results_dir, spec.name)
        if not os.path.isdir(folder):
            missing_seqs.append(folder)
            continue
        present = set(os.listdir(folder))
        ids = spec.frame_ids
        for t in spec.scored:
            if f"{ids[t]}.png" not in present:
                missing_frames.append(os.path.join(folder, f"{ids[t]}.png"))
    if missing_seqs:
        more = f" (and {len(missing_seqs) - 3} more)" if len(missing_seqs) > 3 else ""
        raise FileNotFoundError(f"results for {len(missing_seqs)} sequence(s) missing: no folder "
                                f"{', '.join(missing_seqs[:3])}{more}")
    if missing_frames:
        more = f" (and {len(missing_frames) - 3} more)" if len(missing_frames) > 3 else ""
        raise FileNotFoundError(f"{len(missing_frames)} result frame(s) missing: "
                                f"{', '.join(missing_frames[:3])}{more}")


def _read_gt(path: str) -> np.ndarray:
    gt = read_index_png(path)
    if gt.ndim != 2:
        raise ResultsError(f"{path}: ground truth must be a single-channel index PNG, got shape {gt.shape}")
    return gt


def _score_frame(gt_path: str, res_path: str, num_objects: int, kernel: np.ndarray,
                 shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Scores (2, N) of one frame and which objects the result uses (bool N)."""
    gt = _read_gt(gt_path)
    res = read_index_png(res_path)
    if gt.shape != shape:
        raise ResultsError(f"{gt_path}: ground truth is {gt.shape[1]}x{gt.shape[0]} but the sequence's first "
                           f"frame is {shape[1]}x{shape[0]} (W x H)")
    if res.shape != gt.shape:
        raise ResultsError(f"{res_path}: result is {'x'.join(map(str, res.shape[::-1]))} (W x H) but the "
                           f"ground truth {gt_path} is {gt.shape[1]}x{gt.shape[0]}")
    top = int(res.max())
    if top > num_objects:
        hint = " (255 is the void label of the ground truth, not a prediction)" if top == VOID_LABEL else ""
        raise ResultsError(f"{res_path}: label {top}{hint} is an index higher than the number of objects "
                           f"({num_objects}) in the first ground-truth frame of the sequence")
    scores = frame_scores(gt, res, num_objects, kernel=kernel, with_counts=True)
    return scores[:2], scores[2] > 0


def evaluate_sequence(spec: SequenceSpec, results_dir: str, bound_th: float = BOUND_TH,
                      davis_bins: bool = True, pool: ThreadPoolExecutor | None = None) -> list[ObjectScores]:
    """Score one sequence -> one ObjectScores per object of its first frame.

    A result label above the number of objects is an error naming the file;
    an object the result never uses scores as an empty mask (with a warning).
    """
    first = _read_gt(spec.gt_paths[0]).copy()
    first[first == VOID_LABEL] = 0
    num_objects = int(first.max())
    if num_objects == 0:
        warnings.warn(f"{spec.gt_paths[0]}: the first ground-truth frame has no object; "
                      f"sequence {spec.name} adds no score")
    H, W = first.shape
    kernel = disk(bound_pixels(H, W, bound_th))
    ids = spec.frame_ids
    res_paths = [os.path.join(results_dir, spec.name, f"{ids[t]}.png") for t in spec.scored]
    gt_paths = [spec.gt_paths[t] for t in spec.scored]

    def job(i: int):
        return _score_frame(gt_paths[i], res_paths[i], num_objects, kernel, (H, W))

    if pool is None:
        outs = [job(i) for i in range(len(res_paths))]
    else:
        outs = list(pool.map(job, range(len(res_paths))))
    n = len(outs)
    jf = np.empty((2, num_objects, n), dtype=np.float64)
    used = np.zeros(num_objects, dtype=bool)
    for i, (scores, u) in enumerate(outs):
        jf[:, :, i] = scores
        used |= u
    for k in np.flatnonzero(~used):
        warnings.warn(f"{os.path.join(results_dir, spec.name)}: object {k + 1} is never predicted; "
                      f"it scores as an empty mask")
    frames = [ids[t] for t in spec.scored]
    return [ObjectScores(spec.name, k + 1, frames, jf[0, k].copy(), jf[1, k].copy(), davis_bins)
            for k in range(num_objects)]


def evaluate_specs(specs: Sequence[SequenceSpec], results_dir: str, subset: str = "val", mode: str = "davis",
                   bound_th: float = BOUND_TH, workers: int | None = None,
                   progress: bool = True) -> EvaluationResult:
    """Score a list of sequences; frames are read and scored on ``workers`` threads."""
    check_results_folder(results_dir, specs)
    workers = default_workers() if workers is None else max(1, int(workers))
    davis_bins = mode == "davis"
    result = EvaluationResult(subset=subset, mode=mode)
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for spec in tqdm(specs, desc="J&F", unit="seq", disable=not progress):
            result.objects.extend(evaluate_sequence(spec, results_dir, bound_th, davis_bins, pool))
    finally:
        if pool is not None:
            pool.shutdown()
    return result


def evaluate_davis(results_dir: str, davis_root: str, subset: str = "val", resolution: str = "480p",
                   sequences: Sequence[str] | None = None, workers: int | None = None,
                   progress: bool = True) -> EvaluationResult:
    """J&F of a DAVIS-2017 results folder, the numbers of the DAVIS 2017 package."""
    specs = davis_sequences(davis_root, subset, resolution, sequences)
    return evaluate_specs(specs, results_dir, subset, "davis", workers=workers, progress=progress)


def evaluate_long_video(results_dir: str, root: str, sequences: Sequence[str] | None = None,
                        subset: str = "val", workers: int | None = None,
                        progress: bool = True) -> EvaluationResult:
    """J&F on sparse ground truth: every annotated frame but the first, exact decay bins."""
    specs = long_video_sequences(root, sequences)
    return evaluate_specs(specs, results_dir, subset, "long", workers=workers, progress=progress)
