"""The app's videos: decoded once into a frame folder under the work folder, then read from disk.

``<work>/videos/<id>/meta.json`` (name, frame count, size, fps, original frame
names) and ``frames/<t>.jpg`` (``.png`` when the source frames were lossless).
A video comes from an upload (a video file or a zip of frames), from the
``--videos`` folder (picked by a name from :meth:`VideoLibrary.available`), or
is the synthetic demo. Decoding streams one frame at a time, so memory stays
bounded whatever the length; a half-decoded video never appears (temp folder +
rename).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
import zipfile
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..io import InputError, open_frames, read_image
from ..io.frames import IMAGE_EXTENSIONS
from .errors import AppError, NotFound, TooLarge, Unsupported
from .paths import atomic_write, check_id, confine

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
LOSSLESS = (".png", ".bmp", ".webp")
DEMO_ID = "demo"
DEMO_NAME = "demo: synthetic, 40 frames"  # inference.demo's video
JPEG_QUALITY = 95


@dataclass
class VideoInfo:
    id: str
    name: str
    num_frames: int
    height: int
    width: int
    fps: float
    ext: str
    names: list[str]

    def public(self) -> dict:
        d = asdict(self)
        d.pop("names")
        return d


def sniff(path: str) -> str:
    """'zip' or 'video' from the file's first bytes; Unsupported for anything else."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if (head[4:8] == b"ftyp" or head.startswith(b"\x1aE\xdf\xa3")
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
            or head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3")):
        return "video"
    raise Unsupported("the upload is neither a video file (mp4, mov, avi, mkv, webm, mpeg) "
                      "nor a zip of frames")


class VideoLibrary:
    """Videos decoded into ``<work>/videos``; see the module docstring."""

    def __init__(self, work: str, videos_dir: str | None, offer_demo: bool, max_frames: int):
        self.root = os.path.join(work, "videos")
        self.uploads = os.path.join(work, "uploads")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.uploads, exist_ok=True)
        self.videos_dir = videos_dir
        self.offer_demo = offer_demo
        self.max_frames = max_frames
        self._lock = threading.Lock()
        self._infos: dict[str, VideoInfo] = {}

    # ------------------------------------------------------------ listing
    def available(self) -> list[dict]:
        """Videos one can open by name: the demo (with the demo weights) and ``--videos`` entries."""
        out = [{"name": DEMO_ID, "label": DEMO_NAME}] if self.offer_demo else []
        if self.videos_dir:
            for entry in sorted(os.listdir(self.videos_dir)):
                path = os.path.join(self.videos_dir, entry)
                if os.path.isfile(path) and entry.lower().endswith(VIDEO_EXTENSIONS):
                    out.append({"name": entry, "label": entry})
                elif os.path.isdir(path) and any(f.lower().endswith(IMAGE_EXTENSIONS)
                                                 for f in os.listdir(path)):
                    out.append({"name": entry, "label": entry + "/"})
        return out

    def imported(self) -> list[dict]:
        """Videos already decoded into the work folder."""
        out = []
        for vid in sorted(os.listdir(self.root)):
            try:
                out.append(self.info(vid).public())
            except AppError:
                continue
        return out

    def info(self, vid: str) -> VideoInfo:
        check_id("video", vid)
        if vid not in self._infos:
            meta = confine(self.root, vid, "meta.json")
            if not os.path.isfile(meta):
                raise NotFound(f"unknown video {vid!r}")
            with open(meta) as f:
                self._infos[vid] = VideoInfo(**json.load(f))
        return self._infos[vid]

    def frame_dir(self, vid: str) -> str:
        return confine(self.root, check_id("video", vid), "frames")

    def frame_path(self, vid: str, t: int) -> str:
        info = self.info(vid)
        if not isinstance(t, int) or not 0 <= t < info.num_frames:
            raise NotFound(f"frame {t} is not in video {vid!r} (it has {info.num_frames} frames)")
        return confine(self.root, vid, "frames", f"{t:06d}{info.ext}")

    def read_frame(self, vid: str, t: int) -> np.ndarray:
        return read_image(self.frame_path(vid, t))

    # ------------------------------------------------------------ importing
    def open_named(self, name: str) -> VideoInfo:
        """Decode (once) the video named ``name`` in :meth:`available`."""
        if name not in {v["name"] for v in self.available()}:
            raise NotFound(f"no video named {name!r} (see GET /api/videos)")
        if name == DEMO_ID:
            return self._import(DEMO_ID, DEMO_NAME, self._demo_frames, fps=10.0, lossless=True)
        path = confine(self.videos_dir, name)
        vid = "v" + hashlib.sha1(path.encode()).hexdigest()[:16]
        return self._import(vid, name, lambda: self._source_frames(path), fps=None,
                            lossless=os.path.isdir(path))

    def open_upload(self, tmp_path: str, filename: str) -> VideoInfo:
        """Decode an uploaded file (already size-checked in ``tmp_path``); the file is consumed."""
        try:
            kind = sniff(tmp_path)
            digest = hashlib.sha1()
            with open(tmp_path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            vid = "u" + digest.hexdigest()[:16]
            name = os.path.basename(filename.replace("\\", "/")) or "upload"
            if kind == "zip":
                folder = self._unzip(tmp_path)
                try:
                    return self._import(vid, name, lambda: self._source_frames(folder), None, True)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
            return self._import(vid, name, lambda: self._source_frames(tmp_path), None, False)
        finally:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)

    def _unzip(self, path: str) -> str:
        """Extract the images of a zip (names flattened, nothing else) into a temp folder."""
        folder = os.path.join(self.uploads, "zip-" + uuid.uuid4().hex)
        os.makedirs(folder)
        try:
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.infolist() if not m.is_dir()
                           and m.filename.lower().endswith(IMAGE_EXTENSIONS)]
                if not members:
                    raise AppError("the zip holds no frames (jpg, png, bmp or webp images)")
                if len(members) > self.max_frames:
                    raise TooLarge(f"the zip holds {len(members)} frames; the limit is {self.max_frames}")
                for m in members:
                    base = os.path.basename(m.filename.replace("\\", "/"))
                    with z.open(m) as src, open(confine(folder, base), "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, OSError) as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise AppError(f"corrupt zip upload: {e}") from None
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder

    def _source_frames(self, path: str):
        source = open_frames(path)
        return source, source.fps

    def _demo_frames(self):
        from ..data.synthetic import DEMO_SEED, render_video
        from ..inference.demo import DEMO_FRAMES, DEMO_OBJECTS, DEMO_SIZE
        frames, _ = render_video(DEMO_SEED, num_frames=DEMO_FRAMES, size=DEMO_SIZE,
                                 num_objects=DEMO_OBJECTS)
        return [(f"{i:05d}", f) for i, f in enumerate(frames)], 10.0

    def _import(self, vid, name, open_source, fps, lossless) -> VideoInfo:
        with self._lock:
            try:
                return self.info(vid)
            except NotFound:
                pass
            tmp = os.path.join(self.root, f".tmp-{vid}-{uuid.uuid4().hex[:8]}")
            try:
                info = self._decode(tmp, vid, name, open_source, fps, lossless)
                os.replace(tmp, os.path.join(self.root, vid))
            except InputError as e:
                raise AppError(f"cannot decode the video: {e}") from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._infos[vid] = info
            return info

    def _decode(self, tmp, vid, name, open_source, fps, lossless) -> VideoInfo:
        frames_dir = os.path.join(tmp, "frames")
        os.makedirs(frames_dir)
        ext = ".png" if lossless else ".jpg"
        params = [] if lossless else [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        source, source_fps = open_source()
        names, shape = [], None
        for t, (frame_name, frame) in enumerate(source):
            if t >= self.max_frames:
                raise TooLarge(f"the video has more than {self.max_frames} frames (the limit)")
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise AppError(f"frame {frame_name} is {frame.shape[1]}x{frame.shape[0]}, "
                               f"the first is {shape[1]}x{shape[0]}")
            path = os.path.join(frames_dir, f"{t:06d}{ext}")
            if not cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params):
                raise AppError(f"cannot write frame {t} into the work folder")
            names.append(frame_name)
        if not names:
            raise AppError("the video has no frames")
        info = VideoInfo(id=vid, name=name, num_frames=len(names), height=int(shape[0]),
                         width=int(shape[1]), fps=float(fps or source_fps or 24.0), ext=ext,
                         names=names)
        atomic_write(os.path.join(tmp, "meta.json"), json.dumps(asdict(info)).encode())
        return info
