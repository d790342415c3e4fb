"""Frame sources: iterate over a video one frame at a time.

Every source yields ``(name, frame)`` pairs, ``frame`` an H x W x 3 uint8 RGB
array, reading (decoding) one frame per step so that a video of any length
is never held in memory. ``name`` is the frame's file stem for folders of
images and ``00000``, ``00001``, ... for video files; outputs keep it.

``open_frames(path)`` picks the source:
- a file: a video OpenCV can read (:class:`VideoFileSource`);
- a DAVIS-style sequence folder ``<root>/JPEGImages/480p/<seq>`` (or
  ``<root>/JPEGImages/<seq>`` as in YouTube-VOS), or a dataset root holding
  ``JPEGImages``: :class:`SequenceSource`, which also knows the first frame's
  annotation ``<root>/Annotations/480p/<seq>/<first>.png`` when it exists;
- any other folder: its images sorted by name (:class:`FolderSource`);
- a camera index ("0") or a stream URL (rtsp://, http://, ...): frames as they
  arrive (:class:`afb_urr.io.live.LiveSource`, in live.py).
"""
from __future__ import annotations

import abc
import os
import re
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Resolution folders of DAVIS, most common first.
DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")


def natural_key(name: str):
    """Sort key that orders ``frame2`` before ``frame10`` (and zero-padded names as usual)."""
    return [int(t) if i % 2 else t.lower() for i, t in enumerate(re.split(r"(\d+)", name))]


def read_image(path: str) -> np.ndarray:
    """Decode one image file -> H x W x 3 uint8 RGB; InputError naming the file if it cannot."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated or corrupt file fails here
            arr = np.array(img.convert("RGB"))  # writable copy (torch.from_numpy warns on read-only)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot decode frame {path}: {e}") from e
    return arr


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """An OpenCV frame (H x W x 3 BGR, or H x W gray) -> H x W x 3 uint8 RGB."""
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)


class FrameSource(abc.ABC):
    """Iterable of ``(name, H x W x 3 uint8 RGB)``; one frame decoded per step.

    Attributes: ``path``; ``num_frames`` (int, or None when unknown); ``fps``
    (float from a video file, else None); ``default_mask`` (path of the first
    frame's annotation when the layout provides one, else None).
    """

    path: str
    num_frames: int | None = None
    fps: float | None = None
    default_mask: str | None = None

    @abc.abstractmethod
    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, H x W x 3 uint8 RGB)``, decoding one frame per step."""

    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the frames, e.g. to check masks before segmenting; decodes the first frame."""
        frames = iter(self)
        try:
            return next(frames)[1].shape[:2]
        finally:
            getattr(frames, "close", lambda: None)()

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f"the number of frames of {self.path} is not known in advance")
        return self.num_frames


class VideoFileSource(FrameSource):
    """Frames of a video file read with ``cv2.VideoCapture``; names 00000, 00001, ..."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise InputError(f"video not found: {path}")
        cap = cv2.VideoCapture(path)
        try:
            if not cap.isOpened():
                raise InputError(
                    f"cannot open video {path}: OpenCV cannot read it "
                    f"(not a video file, or a codec this OpenCV build lacks)")
            ok, frame = cap.read()
            if not ok or frame is None:
                raise InputError(f"video {path} yields no frames (empty or corrupt)")
            self.height, self.width = frame.shape[:2]
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(cap.get(cv2.CAP_PROP_FPS))
        finally:
            cap.release()
        # The container's frame count can be missing (0 or negative) for streams.
        self.num_frames = count if count > 0 else None
        self.fps = fps if fps > 0 else None

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise InputError(f"cannot open video {self.path}")
        width = max(5, len(str(self.num_frames - 1))) if self.num_frames else 5
        try:
            index = 0
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                yield f"{index:0{width}d}", to_rgb(frame)
                index += 1
        finally:
            cap.release()
        if index == 0:
            raise InputError(f"video {self.path} yields no frames (empty or corrupt)")

    def frame_size(self) -> tuple[int, int]:
        return self.height, self.width


class FolderSource(FrameSource):
    """The images of a folder (jpg/jpeg/png/bmp/webp), sorted by name; names are the file stems."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isdir(path):
            raise InputError(f"frame folder not found: {path}")
        files = [f for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, f))]
        if not files:
            raise InputError(
                f"no frames in {path}: expected images with one of the extensions "
                f"{', '.join(IMAGE_EXTENSIONS)}")
        files.sort(key=natural_key)
        stems: dict[str, str] = {}
        for f in files:
            stem = os.path.splitext(f)[0]
            if stem in stems:
                raise InputError(
                    f"frames {stems[stem]} and {f} in {path} share the name '{stem}'; "
                    f"output masks are named after frames, so names must be unique")
            stems[stem] = f
        self.files = [os.path.join(path, f) for f in files]
        self.names = list(stems)
        self.num_frames = len(files)

    def __iter__(self):
        first_shape = None
        for name, file in zip(self.names, self.files):
            frame = read_image(file)
            if first_shape is None:
                first_shape = frame.shape
            elif frame.shape != first_shape:
                raise InputError(
                    f"frame {file} is {frame.shape[0]}x{frame.shape[1]} but the first frame is "
                    f"{first_shape[0]}x{first_shape[1]}; all frames of a video must have one size")
            yield name, frame


class SequenceSource(FolderSource):
    """One sequence of a DAVIS / YouTube-VOS layout: ``<root>/JPEGImages[/<res>]/<seq>``.

    ``annotation_dir`` is the matching ``<root>/Annotations[/<res>]/<seq>``;
    ``default_mask`` is its PNG for the first frame when present.
    """

    def __init__(self, path: str, annotation_dir: str, sequence: str):
        super().__init__(path)
        self.sequence = sequence
        self.annotation_dir = annotation_dir
        first = os.path.join(annotation_dir, self.names[0] + ".png")
        self.default_mask = first if os.path.isfile(first) else None


def _sequence_parts(path: str):
    """If ``path`` is ``<root>/JPEGImages[/<res>]/<seq>``, return (root, res or None, seq)."""
    path = os.path.abspath(path)
    seq = os.path.basename(path)
    parent = os.path.dirname(path)
    if os.path.basename(parent) == "JPEGImages":
        return os.path.dirname(parent), None, seq
    grand = os.path.dirname(parent)
    if os.path.basename(grand) == "JPEGImages":
        return os.path.dirname(grand), os.path.basename(parent), seq
    return None


def _sequence_source(root: str, res: str | None, seq: str) -> SequenceSource:
    parts = ["JPEGImages"] + ([res] if res else []) + [seq]
    ann = ["Annotations"] + ([res] if res else []) + [seq]
    return SequenceSource(os.path.join(root, *parts), os.path.join(root, *ann), seq)


def _from_dataset_root(root: str, sequence: str | None) -> SequenceSource:
    images = os.path.join(root, "JPEGImages")
    res = next((r for r in DAVIS_RESOLUTIONS if os.path.isdir(os.path.join(images, r))), None)
    seq_root = os.path.join(images, res) if res else images
    sequences = sorted(d for d in os.listdir(seq_root) if os.path.isdir(os.path.join(seq_root, d)))
    if sequence is None:
        if len(sequences) != 1:
            shown = ", ".join(sequences[:5]) + (", ..." if len(sequences) > 5 else "")
            raise InputError(
                f"{root} is a dataset root with {len(sequences)} sequences ({shown or 'none'}); "
                f"give one sequence folder, e.g. {os.path.join(seq_root, sequences[0] if sequences else '<seq>')}")
        sequence = sequences[0]
    elif sequence not in sequences:
        raise InputError(f"sequence '{sequence}' not found under {seq_root}")
    return _sequence_source(root, res, sequence)


def open_frames(path: str, sequence: str | None = None, stream_timeout: float = 10.0) -> FrameSource:
    """Open ``path`` as a frame source (see the module docstring for what is accepted).

    ``sequence`` picks one sequence when ``path`` is a dataset root holding
    several under ``JPEGImages``. A camera index or stream URL opens a
    :class:`~afb_urr.io.live.LiveSource` that gives up after ``stream_timeout`` s without a frame.
    """
    from .live import LiveSource, is_live  # live.py builds on FrameSource, defined here
    if is_live(path):
        return LiveSource(path, stream_timeout)
    if not os.path.exists(path):
        raise InputError(f"video not found: {path}")
    if os.path.isfile(path):
        if path.lower().endswith(IMAGE_EXTENSIONS):
            raise InputError(
                f"{path} is a single image; give a video file or a folder of frames")
        return VideoFileSource(path)
    if os.path.isdir(os.path.join(path, "JPEGImages")):
        return _from_dataset_root(path, sequence)
    if os.path.basename(os.path.abspath(path)) == "JPEGImages":
        return _from_dataset_root(os.path.dirname(os.path.abspath(path)), sequence)
    parts = _sequence_parts(path)
    if parts is not None:
        return _sequence_source(*parts)
    return FolderSource(path)
