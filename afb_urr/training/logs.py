"""Where a training run's numbers go: ``log.csv``, ``val.csv``, TensorBoard, a tqdm bar, stderr.

Rank 0 writes the files and messages; every rank keeps the rows in
``history`` / ``val_history`` (lists of dicts of floats). On resume the CSVs
keep their rows up to the resumed step and TensorBoard purges the later events.
"""
from __future__ import annotations

import csv
import os
import sys
import time

import torch

CSV_FIELDS = ("step", "epoch", "loss", "ce", "uncertainty", "lr", "clips_per_s")
VAL_FIELDS = ("step", "epoch", "J", "F", "JF")


def prepare_csv(path: str, fields, step: int = 0) -> None:
    """Create the CSV with a header; when resuming (``step`` > 0) keep its rows up to ``step``."""
    rows = []
    if step > 0 and os.path.isfile(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def append_csv(path: str, fields, row: dict) -> None:
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=fields).writerow({k: row[k] for k in fields})


class Meter:
    """Mean (loss, ce, uncertainty) over the optimiser steps since the last row, and the
    clips per second of that window."""

    def __init__(self):
        self.reset(time.time())

    def reset(self, now: float) -> None:
        self.start, self.clips, self.sums, self.n = now, 0, torch.zeros(3), 0

    def add(self, losses: torch.Tensor) -> None:
        self.sums += losses
        self.n += 1

    def row(self, step: int, epoch: float, lr: float) -> dict:
        """The window's CSV row (formatted strings); starts a new window."""
        now = time.time()
        rate = self.clips / max(now - self.start, 1e-9)
        mean = self.sums / max(self.n, 1)
        row = {"step": step, "epoch": f"{epoch:.3f}", "loss": f"{mean[0]:.5f}", "ce": f"{mean[1]:.5f}",
               "uncertainty": f"{mean[2]:.5f}", "lr": f"{lr:.3g}", "clips_per_s": f"{rate:.3f}"}
        self.reset(now)
        return row


class TrainLog:
    """A run's logs under ``out_dir``; files and messages on the main rank only.

    :meth:`open` (after a resume has set the step) prepares the CSVs and the
    TensorBoard writer (when tensorboard is installed).
    """

    def __init__(self, out_dir: str, is_main: bool = True):
        self.out_dir, self.is_main = out_dir, is_main
        self.csv_path = os.path.join(out_dir, "log.csv")
        self.val_path = os.path.join(out_dir, "val.csv")
        self.tb = None
        self.bar = None
        self.history: list[dict] = []
        self.val_history: list[dict] = []

    def message(self, msg: str) -> None:
        if self.is_main:
            print(msg, file=sys.stderr, flush=True)

    def open(self, step: int) -> None:
        if not self.is_main:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        prepare_csv(self.csv_path, CSV_FIELDS, step)
        prepare_csv(self.val_path, VAL_FIELDS, step)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(os.path.join(self.out_dir, "tb"), purge_step=step)
        except ImportError:
            self.tb = None

    def open_bar(self, total: int, initial: int) -> None:
        """A tqdm bar over the run's optimiser steps."""
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=min(initial, total), desc="train", unit="step", dynamic_ncols=True)

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def train_row(self, row: dict) -> None:
        """One training row (:meth:`Meter.row`): history, CSV, TensorBoard, the bar's postfix."""
        self.history.append({k: float(v) for k, v in row.items()})
        if self.is_main:
            append_csv(self.csv_path, CSV_FIELDS, row)
            if self.tb is not None:
                for k in ("loss", "ce", "uncertainty", "lr", "clips_per_s"):
                    self.tb.add_scalar(f"train/{k}", float(row[k]), row["step"])
        if self.bar is not None:
            self.bar.set_postfix(loss=row["loss"], ce=row["ce"], unc=row["uncertainty"],
                                 lr=row["lr"], clips_s=row["clips_per_s"], refresh=False)

    def val_row(self, step: int, epoch: int, scores) -> None:
        """One validation row (``scores``: :class:`afb_urr.training.validate.Scores`)."""
        row = {"step": step, "epoch": epoch, "J": f"{scores.J:.5f}", "F": f"{scores.F:.5f}",
               "JF": f"{scores.JF:.5f}"}
        append_csv(self.val_path, VAL_FIELDS, row)
        self.val_history.append({"step": step, "J": scores.J, "F": scores.F, "JF": scores.JF})
        if self.tb is not None:
            self.tb.add_scalar("val/JF", scores.JF, step)
            self.tb.add_scalar("val/J", scores.J, step)

    def flush(self) -> None:
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        self.close_bar()
        if self.tb is not None:
            self.tb.close()
