"""Random access to a video's frames, decoded on demand and cached within a byte budget.

A session reads frames out of order (backward propagation, corrections in the
middle of a shot), so it cannot simply iterate a :class:`FrameSource`. A
:class:`FrameCache` gives ``cache[t]`` -> H x W x 3 uint8 RGB for a video file,
a frame folder (any layout :func:`open_frames` accepts) or a list of frames
(arrays, or image paths), keeping the most recently used frames within
``max_bytes``; the whole video is never held in memory.

Video files are decoded with OpenCV: reading forward continues the open
decoder; reading backward seeks (``CAP_PROP_POS_FRAMES``) to the start of a
block of frames that fills about half the budget and decodes the block
forward, so reverse passes decode each frame about once.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import cv2
import numpy as np

from .errors import InputError
from .frames import FolderSource, VideoFileSource, open_frames, read_image


def _check_frame(frame, where: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        desc = f"shape {frame.shape} dtype {frame.dtype}" if isinstance(frame, np.ndarray) \
            else type(frame).__name__
        raise InputError(f"{where} must be an H x W x 3 uint8 RGB array, got {desc}")
    return frame


class FrameCache:
    """``cache[t]`` -> frame t (H x W x 3 uint8 RGB); ``len(cache)``; ``names``; ``size`` (H, W).

    Args:
        video: path of a video file or frame folder, or a list of frames
            (H x W x 3 uint8 arrays, used in place, or image paths).
        max_bytes: most bytes of decoded frames kept.
    """

    def __init__(self, video, max_bytes: int = 256 * 2**20):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._arrays = self._files = None
        self._cap, self._pos = None, 0
        self._size: tuple[int, int] | None = None
        if isinstance(video, (list, tuple)):
            self._init_list(list(video))
        elif isinstance(video, (str, os.PathLike)):
            self._init_path(os.fspath(video))
        else:
            raise TypeError(f"video must be a path or a list of frames, got {type(video).__name__}")

    def _init_list(self, frames: list) -> None:
        if not frames:
            raise InputError("the list of frames is empty")
        self.path = "<frames>"
        if all(isinstance(f, (str, os.PathLike)) for f in frames):
            self._files = [os.fspath(f) for f in frames]
        else:
            self._arrays = [_check_frame(f, f"frame {i}") for i, f in enumerate(frames)]
        width = max(5, len(str(len(frames) - 1)))
        self.names = [f"{i:0{width}d}" for i in range(len(frames))]
        if self._files is not None:
            self.names = [os.path.splitext(os.path.basename(f))[0] for f in self._files]

    def _init_path(self, path: str) -> None:
        source = open_frames(path)
        self.path = path
        if isinstance(source, FolderSource):
            self._files, self.names = list(source.files), list(source.names)
            return
        assert isinstance(source, VideoFileSource)
        n = source.num_frames
        if n is None:  # the container does not say: count once
            cap = cv2.VideoCapture(path)
            n = 0
            while cap.grab():
                n += 1
            cap.release()
        width = max(5, len(str(n - 1)))
        self.names = [f"{i:0{width}d}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the video (decodes frame 0 once if needed)."""
        if self._size is None:
            self._size = tuple(self[0].shape[:2])
        return self._size

    def __getitem__(self, t: int) -> np.ndarray:
        n = len(self)
        if not isinstance(t, (int, np.integer)) or not 0 <= t < n:
            raise IndexError(f"frame index {t} out of range 0..{n - 1}")
        t = int(t)
        if self._arrays is not None:
            return self._checked(t, self._arrays[t])
        if t in self._cache:
            self._cache.move_to_end(t)
            return self._cache[t]
        if self._files is not None:
            frame = self._checked(t, read_image(self._files[t]))
        else:
            frame = self._decode(t)
        self._keep(t, frame)
        return frame

    def _checked(self, t: int, frame: np.ndarray) -> np.ndarray:
        if self._size is None:
            self._size = tuple(frame.shape[:2])
        elif tuple(frame.shape[:2]) != self._size:
            raise InputError(f"frame {self.names[t]} of {self.path} is {frame.shape[0]}x{frame.shape[1]} "
                             f"but the video is {self._size[0]}x{self._size[1]}")
        return frame

    def _keep(self, t: int, frame: np.ndarray) -> None:
        if frame.nbytes > self.max_bytes:
            return
        self._cache[t] = frame
        self._bytes += frame.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.nbytes

    # ----------------------------------------------------------- video files
    def _read_next(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise InputError(f"cannot decode frame {self._pos} of {self.path}")
        self._pos += 1
        code = cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB
        return self._checked(self._pos - 1, cv2.cvtColor(frame, code))

    def _seek(self, t: int) -> None:
        """Make frame t the next one read: decode through short forward gaps, else seek."""
        if self._cap is None:
            self._cap = cv2.VideoCapture(self.path)
            if not self._cap.isOpened():
                raise InputError(f"cannot open video {self.path}")
            self._pos = 0
        if self._pos <= t <= self._pos + 64:
            return
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, t)
        self._pos = t

    def _decode(self, t: int) -> np.ndarray:
        """Frame t of a video file; going backward decodes a block ending at t into the cache."""
        backward = self._cap is not None and t < self._pos
        start = t
        if backward:
            per_frame = 3 * self._size[0] * self._size[1] if self._size else 1
            block = max(1, min(64, self.max_bytes // (2 * per_frame)))
            start = max(0, t - block + 1)
        self._seek(start)
        while self._pos < start:  # short forward gap: decode through it
            self._read_next()
        frame = None
        while self._pos <= t:
            i = self._pos
            frame = self._read_next()
            if i < t:
                self._keep(i, frame)
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
