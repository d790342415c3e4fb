"""ResultStore: uint8 maps by key, in memory within a byte budget, spilled to a work folder.

A session keeps one small map per frame and propagation run (label map,
confidence, uncertainty). A long video's maps do not fit in memory, so the
least recently used ones are written to ``work_dir`` as lossless PNG files
(label maps compress to a few kB) and read back on demand.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Hashable

import cv2
import numpy as np


def step_record(result) -> np.ndarray:
    """A StepResult as stored: H x W x 3 uint8 of labels, the winning probability and
    the uncertainty (both x255, rounded)."""
    conf = result.probs.max(dim=0).values.float().cpu().numpy()
    return np.dstack([result.labels, np.rint(conf * 255).astype(np.uint8),
                      np.rint(result.uncertainty * 255).astype(np.uint8)])


class ResultStore:
    """Maps ``key -> uint8 array`` (H x W, or H x W x 3).

    Args:
        work_dir: folder for spilled maps (created when first needed).
        max_bytes: most bytes of maps held in memory.
    """

    def __init__(self, work_dir: str, max_bytes: int = 256 * 2**20):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.work_dir = work_dir
        self.max_bytes = int(max_bytes)
        self._memory: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._on_disk: set = set()
        self.spilled = 0  # maps written to disk so far

    def _path(self, key) -> str:
        parts = key if isinstance(key, tuple) else (key,)
        return os.path.join(self.work_dir, "_".join(str(p) for p in parts) + ".png")

    def __contains__(self, key) -> bool:
        return key in self._memory or key in self._on_disk

    def __len__(self) -> int:
        return len(set(self._memory) | self._on_disk)

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def put(self, key, arr: np.ndarray) -> None:
        """Store ``arr`` (uint8, H x W or H x W x 3) under ``key``, replacing an older map."""
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or \
                not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            raise ValueError(f"ResultStore holds uint8 H x W or H x W x 3 maps, got "
                             f"{getattr(arr, 'shape', None)} {getattr(arr, 'dtype', type(arr).__name__)}")
        self.discard(key)
        self._remember(key, np.ascontiguousarray(arr))

    def get(self, key) -> np.ndarray:
        """The map stored under ``key`` (KeyError if none)."""
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        if key not in self._on_disk:
            raise KeyError(key)
        path = self._path(key)
        arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise OSError(f"cannot read spilled result {path}")
        self._remember(key, arr)
        return arr

    def discard(self, key) -> None:
        """Forget ``key`` (in memory and on disk); no error if absent."""
        arr = self._memory.pop(key, None)
        if arr is not None:
            self._bytes -= arr.nbytes
        if key in self._on_disk:
            self._on_disk.discard(key)
            try:
                os.remove(self._path(key))
            except FileNotFoundError:
                pass

    def _remember(self, key, arr: np.ndarray) -> None:
        self._memory[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.max_bytes and self._memory:
            old_key, old = self._memory.popitem(last=False)
            self._bytes -= old.nbytes
            if old_key not in self._on_disk:
                self._spill(old_key, old)

    def _spill(self, key, arr: np.ndarray) -> None:
        os.makedirs(self.work_dir, exist_ok=True)
        ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError(f"cannot encode result {key} as PNG")
        path = self._path(key)
        tmp = path + ".tmp"
        buf.tofile(tmp)
        os.replace(tmp, path)
        self._on_disk.add(key)
        self.spilled += 1
