"""Overlay video: frames with the predicted objects tinted and outlined, for a visual check."""
from __future__ import annotations

import os

import cv2
import numpy as np

from .errors import InputError
from .masks import davis_palette


UNCERTAIN_COLOUR = (255, 0, 255)  # magenta: no DAVIS object colour is near it
UNCERTAIN_ALPHA = 0.85            # opacity of the shade where the uncertainty is 1


def shade_uncertainty(image: np.ndarray, uncertainty: np.ndarray, alpha: float = UNCERTAIN_ALPHA,
                      colour=UNCERTAIN_COLOUR) -> np.ndarray:
    """Shade ``image`` (H x W x 3 uint8 RGB) towards ``colour`` by ``alpha * sqrt(uncertainty)``
    (H x W in [0, 1]; the square root makes the thin bands of mild doubt along object
    edges visible): certain pixels stay as they are, a tie between two objects is
    almost solid magenta. Returns a new H x W x 3 uint8 image."""
    u = np.asarray(uncertainty, np.float32)
    if u.shape != image.shape[:2]:
        raise ValueError(f"overlay: uncertainty is {u.shape[0]}x{u.shape[1]} "
                         f"but the frame is {image.shape[0]}x{image.shape[1]}")
    a = (alpha * np.sqrt(np.clip(u, 0.0, 1.0)))[..., None]
    out = (1.0 - a) * image.astype(np.float32) + a * np.asarray(colour, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def blend_labels(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5,
                 contour_thickness: int = 2, uncertainty: np.ndarray | None = None,
                 palette: np.ndarray | None = None) -> np.ndarray:
    """Tint each object of ``labels`` (H x W ints, 0 = background) with its colour:
    ``palette[id]`` (256 x 3 uint8 RGB; the DAVIS palette when None).

    frame: H x W x 3 uint8 RGB. Returns a new H x W x 3 uint8 RGB image where
    object pixels are ``(1 - alpha) * frame + alpha * colour`` and each object's
    outline is drawn in its colour. With ``uncertainty`` (H x W in [0, 1]) the
    unsure pixels are then shaded magenta (:func:`shade_uncertainty`).
    """
    if frame.shape[:2] != labels.shape:
        raise ValueError(f"overlay: frame is {frame.shape[0]}x{frame.shape[1]} "
                         f"but labels are {labels.shape[0]}x{labels.shape[1]}")
    palette = davis_palette() if palette is None else check_palette(palette)
    labels = np.asarray(labels).astype(np.uint8, copy=False)
    colour = palette[labels].astype(np.float32)
    fg = (labels > 0)[..., None]
    out = np.where(fg, (1.0 - alpha) * frame.astype(np.float32) + alpha * colour,
                   frame.astype(np.float32))
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if contour_thickness > 0:
        for obj in np.unique(labels):
            if obj == 0:
                continue
            binary = (labels == obj).astype(np.uint8)
            contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            rgb = tuple(int(c) for c in palette[obj])
            cv2.drawContours(out, contours, -1, rgb, contour_thickness)
    if uncertainty is not None:
        out = shade_uncertainty(out, uncertainty)
    return out


def check_palette(palette) -> np.ndarray:
    """``palette`` as a 256 x 3 uint8 array; ValueError for another shape."""
    arr = np.asarray(palette)
    if arr.shape != (256, 3):
        raise ValueError(f"overlay: a palette is 256 x 3 RGB, got shape {arr.shape}")
    return arr.astype(np.uint8, copy=False)


class OverlayWriter:
    """Write an mp4 ('mp4v') of frames with their label maps blended in.

    ``size`` is (height, width) of the frames. Use as a context manager, or call
    ``close()``; ``write(frame, labels, uncertainty=None)`` takes an H x W x 3 uint8
    RGB frame, an H x W label map and optionally the H x W uncertainty in [0, 1] to shade.
    ``palette`` (256 x 3 uint8 RGB) colours the objects by id; the DAVIS palette when None.
    """

    def __init__(self, path: str, fps: float, size: tuple[int, int], alpha: float = 0.5,
                 palette: np.ndarray | None = None):
        self.path = path
        self.palette = None if palette is None else check_palette(palette)
        self.height, self.width = int(size[0]), int(size[1])
        self.alpha = alpha
        self.frames_written = 0
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        if not fps or fps <= 0:
            raise ValueError(f"overlay {path}: fps must be positive, got {fps}")
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                       (self.width, self.height))
        if not self._writer.isOpened():
            self._writer.release()
            raise InputError(
                f"cannot open {path} for writing an mp4 video (OpenCV 'mp4v' writer failed; "
                f"check the folder is writable and the name ends in .mp4)")

    def write(self, frame: np.ndarray, labels: np.ndarray, uncertainty: np.ndarray | None = None) -> None:
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(f"overlay {self.path}: frame is {frame.shape[0]}x{frame.shape[1]}, "
                             f"the video was opened for {self.height}x{self.width}")
        out = blend_labels(frame, labels, self.alpha, uncertainty=uncertainty, palette=self.palette)
        self._writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
