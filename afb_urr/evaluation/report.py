"""CSV files, printed tables and a summary plot of an EvaluationResult.

The CSVs have the columns of the DAVIS 2017 package (``evaluation_method.py``):
``global_results-<set>.csv`` with one row ``J&F-Mean,J-Mean,J-Recall,J-Decay,
F-Mean,F-Recall,F-Decay`` and ``per-sequence_results-<set>.csv`` with one row
``<sequence>_<object id>,J-Mean,F-Mean`` per object; values with 3 decimals,
an empty field for NaN. The plot is drawn with OpenCV (no plotting library).
"""
from __future__ import annotations

import math
import os

import cv2
import numpy as np

from .davis import GLOBAL_COLUMNS, EvaluationResult

SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


def _fmt(value: float) -> str:
    """3 decimals as pandas' ``float_format="%.3f"``; NaN is an empty field."""
    return "" if value is None or math.isnan(value) else "%.3f" % value


def global_csv_text(result: EvaluationResult) -> str:
    """Text of ``global_results-<set>.csv``."""
    stats = result.global_stats()
    return ",".join(GLOBAL_COLUMNS) + "\n" + ",".join(_fmt(stats[c]) for c in GLOBAL_COLUMNS) + "\n"


def sequence_csv_text(result: EvaluationResult) -> str:
    """Text of ``per-sequence_results-<set>.csv``: one row per object."""
    lines = [",".join(SEQUENCE_COLUMNS)]
    for o in result.objects:
        lines.append(f"{o.name},{_fmt(o.j_stats[0])},{_fmt(o.f_stats[0])}")
    return "\n".join(lines) + "\n"


def write_csvs(result: EvaluationResult, out_dir: str) -> tuple[str, str]:
    """Write both CSVs into ``out_dir``; returns their paths (global, per-sequence)."""
    os.makedirs(out_dir, exist_ok=True)
    g_path = os.path.join(out_dir, f"global_results-{result.subset}.csv")
    s_path = os.path.join(out_dir, f"per-sequence_results-{result.subset}.csv")
    with open(g_path, "w", newline="") as fh:
        fh.write(global_csv_text(result))
    with open(s_path, "w", newline="") as fh:
        fh.write(sequence_csv_text(result))
    return g_path, s_path


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    out = [" ".join(h.rjust(w) for h, w in zip(header, widths))]
    out += [" ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def format_tables(result: EvaluationResult) -> str:
    """The global row and the per-object rows as aligned text tables."""
    stats = result.global_stats()
    g = _table(list(GLOBAL_COLUMNS), [[_fmt(stats[c]) for c in GLOBAL_COLUMNS]])
    s = _table(list(SEQUENCE_COLUMNS),
               [[o.name, _fmt(o.j_stats[0]), _fmt(o.f_stats[0])] for o in result.objects])
    return (f"--------------------------- Global results for {result.subset} ---------------------------\n{g}\n\n"
            f"---------- Per sequence results for {result.subset} ----------\n{s}\n")


def sequence_jf(result: EvaluationResult) -> dict[str, float]:
    """J&F of each sequence: mean over its objects of (J-Mean + F-Mean) / 2."""
    out: dict[str, list[float]] = {}
    for o in result.objects:
        out.setdefault(o.sequence, []).append((o.j_stats[0] + o.f_stats[0]) / 2.0)
    return {k: float(np.mean(v)) for k, v in out.items()}


def sequence_curves(result: EvaluationResult) -> dict[str, np.ndarray]:
    """Per-frame J&F of each sequence (n,): mean over objects of (J + F) / 2."""
    out: dict[str, list[np.ndarray]] = {}
    for o in result.objects:
        out.setdefault(o.sequence, []).append((o.j + o.f) / 2.0)
    return {k: np.mean(np.stack(v), axis=0) for k, v in out.items()}


_COLORS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
           (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23)]  # BGR
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img, s, org, scale=0.45, color=(30, 30, 30), thick=1):
    cv2.putText(img, s, (int(org[0]), int(org[1])), _FONT, scale, color, thick, cv2.LINE_AA)


def _legend(worst_names, jf, left: int, W: int):
    """Legend entries (label, x, row offset, colour), wrapped into rows; and the last row's offset."""
    legend, lx, ly = [], left, 0
    for k, n in enumerate(worst_names):
        label = f"{n} ({jf[n]:.3f})"
        width = 25 + cv2.getTextSize(label, _FONT, 0.45, 1)[0][0] + 20
        if lx + width > W - 20 and lx > left:
            lx, ly = left, ly + 20
        legend.append((label, lx, ly, _COLORS[k % len(_COLORS)]))
        lx += width
    return legend, ly


def _draw_bars(img, result, jf, names, worst_names, left, axis_w, bars_top, row) -> None:
    """The title and one J&F bar per sequence."""
    bars_h = row * len(names)
    stats = result.global_stats()
    _text(img, f"J&F per sequence ({result.subset}, {len(result.objects)} objects)   global J&F-Mean "
               f"{_fmt(stats['J&F-Mean'])}  J-Mean {_fmt(stats['J-Mean'])}  F-Mean {_fmt(stats['F-Mean'])}",
          (20, 28), 0.55, thick=1)
    for gx in np.linspace(0, 1, 6):
        x = left + int(round(gx * axis_w))
        cv2.line(img, (x, bars_top - 4), (x, bars_top + bars_h), (225, 225, 225), 1)
        _text(img, f"{gx:.1f}", (x - 10, bars_top + bars_h + 16), 0.4)
    for i, n in enumerate(names):
        y = bars_top + i * row
        v = jf[n]
        _text(img, n, (20, y + 14))
        if not math.isnan(v):
            color = _COLORS[worst_names.index(n) % len(_COLORS)] if n in worst_names else (200, 160, 110)
            cv2.rectangle(img, (left, y + 3), (left + int(round(max(0.0, min(1.0, v)) * axis_w)), y + row - 3),
                          color, -1)
            _text(img, f"{v:.3f}", (left + int(round(max(0.0, min(1.0, v)) * axis_w)) + 5, y + 14), 0.4)
        else:
            _text(img, "nan", (left + 5, y + 14), 0.4)


def _draw_curves(img, curves, worst_names, legend, ly, left, axis_w, plot_top, plot_h) -> None:
    """J&F over the scored frames of the worst sequences, with their legend."""
    _text(img, f"J&F over the scored frames, {len(worst_names)} worst sequence(s)", (20, plot_top - 40 - ly), 0.55)
    x0, x1 = left, left + axis_w
    y0, y1 = plot_top, plot_top + plot_h
    n_max = max(len(curves[n]) for n in worst_names)
    cv2.rectangle(img, (x0, y0), (x1, y1), (120, 120, 120), 1)
    for gy in np.linspace(0, 1, 6):
        y = y1 - int(round(gy * plot_h))
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        _text(img, f"{gy:.1f}", (x0 - 32, y + 5), 0.4)
    for gx in np.linspace(0, 1, 6):
        x = x0 + int(round(gx * axis_w))
        _text(img, str(int(round(gx * max(n_max - 1, 0)))), (x - 8, y1 + 18), 0.4)
    _text(img, "scored frame", (x1 - 100, y1 + 38), 0.4)
    for k, n in enumerate(worst_names):
        c = curves[n]
        color = _COLORS[k % len(_COLORS)]
        xs = x0 + np.arange(len(c)) * (axis_w / max(n_max - 1, 1))
        ys = y1 - np.clip(np.nan_to_num(c, nan=0.0), 0, 1) * plot_h
        pts = np.round(np.stack([xs, ys], axis=1)).astype(np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
        else:
            cv2.circle(img, tuple(int(v) for v in pts[0]), 3, color, -1)
    base = y0 - 18 - ly
    for label, lx, dy, color in legend:
        cv2.line(img, (lx, base + dy), (lx + 20, base + dy), color, 3)
        _text(img, label, (lx + 25, base + dy + 5), 0.45, color)


def plot_summary(result: EvaluationResult, path: str, worst: int = 4) -> str:
    """Draw a PNG: per-sequence J&F bars (worst at the top) and J&F over the
    scored frames of the ``worst`` lowest sequences. Returns ``path``."""
    jf = sequence_jf(result)
    names = sorted(jf, key=lambda k: (math.isnan(jf[k]), jf[k]))
    worst_names = [n for n in names if not math.isnan(jf[n])][:max(0, worst)]
    W, row, bars_top, plot_h = 1200, 20, 50, 320
    left = 20 + max(cv2.getTextSize(n, _FONT, 0.45, 1)[0][0] for n in names) + 10
    bars_h = row * len(names)
    axis_w = W - left - 80
    legend, ly = _legend(worst_names, jf, left, W)
    plot_top = bars_top + bars_h + 90 + (ly if worst_names else 0)
    H = plot_top + plot_h + 60 if worst_names else bars_top + bars_h + 50
    img = np.full((H, W, 3), 255, np.uint8)
    _draw_bars(img, result, jf, names, worst_names, left, axis_w, bars_top, row)
    if worst_names:
        _draw_curves(img, sequence_curves(result), worst_names, legend, ly, left, axis_w, plot_top, plot_h)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f"could not write the plot {path}")
    return path
