"""Export label maps in other tools' formats, and read the exports back.

Writers take one frame at a time (``write(index, name, labels, frame=None)``,
labels an H x W uint8 map, frame the H x W x 3 uint8 RGB pixels) in any order,
a frame written again replacing the earlier one, and finish on ``close()`` (or
leaving a ``with`` block). Formats and the files they make:

- ``palette``: ``<out>/<frame>.png``, DAVIS palette PNGs (the label map itself);
- ``binary``: ``<out>/<object id>/<frame>.png``, 0/255 grayscale PNGs;
- ``rgba``: ``<out>/<object id>/<frame>.png``, cut-outs: the frame's pixels where
  the object is, with its mask as alpha (RGB zeroed where alpha is 0);
- ``coco``: one COCO-style JSON per video: ``images`` (one per frame, id = frame
  index, empty frames included) and ``annotations`` with ``frame_index``,
  ``frame_name``, ``object_id``, ``area``, ``bbox`` [x, y, w, h] and
  ``segmentation`` {size [h, w], counts} (pycocotools compressed RLE); its
  ``info.complete`` is false when the writer was closed by an exception.

The per-object formats write one PNG for every object known so far (ids given
as ``object_ids`` plus those seen in earlier frames), empty ones included, so a
frame decodes back whole; a frame written before any object is known leaves no
file. The readers (``read_palette``, ``read_binary``, ``read_rgba``,
``read_coco``) yield ``(name, labels)`` in frame order.
"""
from __future__ import annotations

import abc
import json
import os
import warnings
from typing import Iterable, Iterator

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from .errors import InputError
from .frames import natural_key
from .masks import read_mask, write_mask

FORMATS = ("palette", "binary", "rgba", "coco")
COCO_FILE = "coco.json"


def _check_labels(labels, frame=None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"export: labels must be an H x W uint8 map, got {labels.dtype} {labels.shape}")
    if frame is not None and np.asarray(frame).shape != labels.shape + (3,):
        raise ValueError(f"export: frame is {np.asarray(frame).shape}, labels are {labels.shape}")
    return labels


class ExportWriter(abc.ABC):
    """Base of the writers: ``write`` one frame at a time, ``close`` once; a context manager."""

    needs_frames = False  # True when ``write`` needs the frame's pixels

    @abc.abstractmethod
    def write(self, index: int, name: str, labels: np.ndarray, frame: np.ndarray | None = None) -> None:
        """Export frame ``index`` named ``name``: labels H x W uint8, frame H x W x 3 uint8 RGB."""

    def close(self, complete: bool = True) -> None:
        """Finish the export; ``complete=False`` marks it partial where the format can say so
        (files written frame by frame need nothing)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(complete=exc_type is None)
        return False


class PaletteWriter(ExportWriter):
    """``<folder>/<frame>.png``: the label map as a DAVIS palette PNG."""

    def __init__(self, folder: str):
        self.folder = folder

    def write(self, index, name, labels, frame=None):
        write_mask(os.path.join(self.folder, name + ".png"), _check_labels(labels))


class _PerObjectWriter(ExportWriter):
    """``<folder>/<object id>/<frame>.png`` for every object known so far."""

    def __init__(self, folder: str, object_ids: Iterable[int] = ()):
        self.folder = folder
        self.object_ids = sorted({int(i) for i in object_ids})
        bad = [i for i in self.object_ids if not 1 <= i <= 254]
        if bad:
            raise ValueError(f"export: object ids must be in 1..254, got {bad}")

    def write(self, index, name, labels, frame=None):
        labels = _check_labels(labels, frame)
        present = np.unique(labels)
        self.object_ids = sorted(set(self.object_ids) | {int(i) for i in present if 0 < i < 255})
        for obj in self.object_ids:
            path = os.path.join(self.folder, str(obj), name + ".png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._image(labels == obj, frame).save(path, format="PNG")

    @abc.abstractmethod
    def _image(self, mask: np.ndarray, frame) -> Image.Image:
        """The PNG of one object: mask H x W bool, frame H x W x 3 uint8 RGB or None."""


class BinaryWriter(_PerObjectWriter):
    """One 0/255 grayscale PNG per object and frame: ``<folder>/<object id>/<frame>.png``."""

    def _image(self, mask, frame):
        return Image.fromarray(mask.astype(np.uint8) * 255)


class RgbaWriter(_PerObjectWriter):
    """One RGBA cut-out per object and frame: the frame's pixels, the object's mask as alpha."""

    needs_frames = True

    def _image(self, mask, frame):
        if frame is None:
            raise ValueError("export: the rgba format needs the frame's pixels")
        rgba = np.zeros(mask.shape + (4,), np.uint8)
        rgba[mask, :3] = np.asarray(frame)[mask]
        rgba[..., 3] = mask.astype(np.uint8) * 255
        return Image.fromarray(rgba, mode="RGBA")


def encode_rle(mask: np.ndarray) -> dict:
    """H x W bool mask -> COCO compressed RLE {"size": [h, w], "counts": str}."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO compressed RLE {"size", "counts"} -> H x W bool mask."""
    counts = rle["counts"]
    packed = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools 2.0.11's Cython decode still passes copy=False to numpy 2
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return coco_mask.decode(packed).astype(bool)


class CocoWriter(ExportWriter):
    """One COCO-style JSON for the video, written on ``close`` (temp file + rename).

    Only the RLEs are kept until then (a few hundred bytes per object and frame).
    """

    def __init__(self, path: str, video: str = ""):
        self.path = path
        self.video = video
        self._frames: dict[int, tuple[str, tuple[int, int], list[dict]]] = {}
        self._closed = False

    def write(self, index, name, labels, frame=None):
        labels = _check_labels(labels)
        objects = []
        for obj in np.unique(labels):
            if 0 < obj < 255:
                rle = encode_rle(labels == obj)
                packed = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
                objects.append({"frame_index": int(index), "frame_name": name, "object_id": int(obj),
                                "area": int(coco_mask.area(packed)),
                                "bbox": [float(v) for v in coco_mask.toBbox(packed)],
                                "segmentation": rle})
        self._frames[int(index)] = (name, labels.shape, objects)

    def to_dict(self, complete: bool = True) -> dict:
        """The JSON document: info, images (one per frame), annotations, one category."""
        images, annotations = [], []
        for index in sorted(self._frames):
            name, (h, w), objects = self._frames[index]
            images.append({"id": index, "file_name": name, "frame_index": index, "height": h, "width": w})
            for ann in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1,
                                    "iscrowd": 0, **ann})
        info = {"description": "afb-urr masks", "video": self.video, "frames": len(images),
                "complete": complete}
        return {"info": info,
                "images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "object"}]}

    def close(self, complete=True):
        if self._closed:
            return
        self._closed = True
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(complete), f)
        os.replace(tmp, self.path)


class Exports(ExportWriter):
    """Several writers fed the same frames; ``needs_frames`` when any of them does."""

    def __init__(self, writers: dict[str, ExportWriter]):
        self.writers = writers
        self.needs_frames = any(w.needs_frames for w in writers.values())

    def write(self, index, name, labels, frame=None):
        for w in self.writers.values():
            w.write(index, name, labels, frame)

    def close(self, complete=True):
        for w in self.writers.values():
            w.close(complete)


def check_formats(formats: Iterable[str]) -> list[str]:
    """The format names, checked, without repeats; ValueError naming an unknown one."""
    out = []
    for f in formats:
        if f not in FORMATS:
            raise ValueError(f"unknown export format '{f}'; choose from {', '.join(FORMATS)}")
        if f not in out:
            out.append(f)
    if not out:
        raise ValueError(f"no export format given; choose from {', '.join(FORMATS)}")
    return out


def open_exports(out: str, formats: Iterable[str] = ("palette",), object_ids: Iterable[int] = (),
                 video: str = "") -> Exports:
    """Writers for ``formats`` under ``out``: palette PNGs in ``out`` itself, ``out/binary/``,
    ``out/rgba/`` and ``out/coco.json``."""
    writers: dict[str, ExportWriter] = {}
    for f in check_formats(formats):
        if f == "palette":
            writers[f] = PaletteWriter(out)
        elif f == "coco":
            writers[f] = CocoWriter(os.path.join(out, COCO_FILE), video)
        else:
            cls = BinaryWriter if f == "binary" else RgbaWriter
            writers[f] = cls(os.path.join(out, f), object_ids)
    return Exports(writers)


# ---------------------------------------------------------------- readers
def _pngs(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise InputError(f"export folder not found: {folder}")
    names = [f for f in os.listdir(folder)
             if f.lower().endswith(".png") and os.path.isfile(os.path.join(folder, f))]
    return sorted(names, key=natural_key)


def read_palette(folder: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, labels)`` for each ``<folder>/<frame>.png``, in frame order."""
    for f in _pngs(folder):
        yield os.path.splitext(f)[0], read_mask(os.path.join(folder, f))


def _read_per_object(folder: str, object_mask) -> Iterator[tuple[str, np.ndarray]]:
    """Merge ``<folder>/<id>/<frame>.png`` back into label maps; ``object_mask(path)`` -> bool map."""
    if not os.path.isdir(folder):
        raise InputError(f"export folder not found: {folder}")
    ids = sorted(int(d) for d in os.listdir(folder) if d.isdigit() and os.path.isdir(os.path.join(folder, d)))
    files = {obj: {os.path.splitext(f)[0] for f in _pngs(os.path.join(folder, str(obj)))} for obj in ids}
    for name in sorted(set().union(*files.values()), key=natural_key):
        labels = None
        for obj in ids:
            if name not in files[obj]:
                continue
            path = os.path.join(folder, str(obj), name + ".png")
            mask = object_mask(path)
            if labels is None:
                labels = np.zeros(mask.shape, np.uint8)
            elif mask.shape != labels.shape:
                raise InputError(f"{path} is {mask.shape[0]}x{mask.shape[1]}, other objects of frame "
                                 f"{name} are {labels.shape[0]}x{labels.shape[1]}")
            labels[mask] = obj
        yield name, labels


def _binary_mask(path: str) -> np.ndarray:
    return read_mask(path) > 0


def _alpha_mask(path: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode != "RGBA":
                raise InputError(f"cut-out {path} is a {img.mode} image; expected RGBA")
            return np.array(img)[..., 3] > 0
    except OSError as e:
        raise InputError(f"cannot read cut-out {path}: {e}") from e


def read_binary(folder: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, labels)`` from ``<folder>/<object id>/<frame>.png`` 0/255 masks, in frame order."""
    return _read_per_object(folder, _binary_mask)


def read_rgba(folder: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, labels)`` from the alpha of ``<folder>/<object id>/<frame>.png`` cut-outs."""
    return _read_per_object(folder, _alpha_mask)


def read_coco(path: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, labels)`` for each image of a COCO JSON written by :class:`CocoWriter`, by frame index."""
    try:
        with open(path) as f:
            doc = json.load(f)
        images = sorted(doc["images"], key=lambda im: im["frame_index"])
        by_image: dict[int, list[dict]] = {}
        for ann in doc["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read COCO file {path}: {e}") from e
    for im in images:
        labels = np.zeros((im["height"], im["width"]), np.uint8)
        for ann in by_image.get(im["id"], []):
            labels[decode_rle(ann["segmentation"])] = ann["object_id"]
        yield im["file_name"], labels


def read_export(out: str, fmt: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, labels)`` from the ``fmt`` export under ``out`` (the layout of :func:`open_exports`)."""
    fmt = check_formats([fmt])[0]
    if fmt == "palette":
        return read_palette(out)
    if fmt == "coco":
        return read_coco(os.path.join(out, COCO_FILE))
    return (read_binary if fmt == "binary" else read_rgba)(os.path.join(out, fmt))
