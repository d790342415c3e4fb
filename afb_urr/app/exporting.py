"""Export a session: a zip of palette PNGs, the COCO JSON, or the overlay mp4.

Files are written under ``<work>/exports/<session>/`` (replaced by the next
export of the same kind) and named after the original frames. Frames that have
no mask yet are exported as empty and the export says so: ``INCOMPLETE.txt``
in the zip, ``info.complete`` false and ``info.missing_frames`` in the COCO JSON, and
an ``X-Incomplete`` header on the download (set by the server).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
import zipfile

import numpy as np

from ..io import OverlayWriter, davis_palette
from ..io.exports import CocoWriter, PaletteWriter
from .errors import AppError
from .paths import confine
from .store import Session
from .videos import VideoInfo, VideoLibrary

KINDS = {"palette": ("masks.zip", "application/zip"),
         "coco": ("coco.json", "application/json"),
         "mp4": ("overlay.mp4", "video/mp4")}


def _frames(session: Session, info: VideoInfo):
    """(t, name, labels, has_mask) for every frame of the video."""
    empty = np.zeros((info.height, info.width), np.uint8)
    for t, name in enumerate(info.names):
        labels = session.labels(t)
        yield t, name, (empty if labels is None else labels), labels is not None


def export(kind: str, session: Session, library: VideoLibrary, work: str) -> tuple[str, list[int]]:
    """Write the ``kind`` export of ``session``; returns (path, frames without a mask)."""
    if kind not in KINDS:
        raise AppError(f"unknown export {kind!r}; choose from {', '.join(KINDS)}")
    info = library.info(session.video)
    folder = confine(work, "exports", session.id)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, KINDS[kind][0])
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex[:8]}")
    try:
        missing = {"palette": _palette_zip, "coco": _coco, "mp4": _overlay}[kind](
            session, info, library, tmp)
        os.replace(tmp if kind != "palette" else tmp + ".zip", path)
    finally:
        for leftover in (tmp, tmp + ".zip"):
            if os.path.isdir(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            elif os.path.exists(leftover):
                os.remove(leftover)
    return path, missing


def _incomplete_note(missing: list[int], info: VideoInfo) -> str:
    names = ", ".join(info.names[t] for t in missing[:50]) + (" ..." if len(missing) > 50 else "")
    return (f"INCOMPLETE: {len(missing)} of {info.num_frames} frames have no mask yet "
            f"(exported as empty): {names}\n")


def _palette_zip(session, info, library, tmp) -> list[int]:
    os.makedirs(tmp)
    writer, missing = PaletteWriter(tmp), []
    with writer:
        for t, name, labels, ok in _frames(session, info):
            writer.write(t, name, labels)
            if not ok:
                missing.append(t)
    with zipfile.ZipFile(tmp + ".zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name in info.names:
            z.write(os.path.join(tmp, name + ".png"), f"masks/{name}.png")
        if missing:
            z.writestr("masks/INCOMPLETE.txt", _incomplete_note(missing, info))
    return missing


def _coco(session, info, library, tmp) -> list[int]:
    writer, missing = CocoWriter(tmp, video=info.name), []
    for t, name, labels, ok in _frames(session, info):
        writer.write(t, name, labels)
        if not ok:
            missing.append(t)
    writer.close(complete=not missing)
    with open(tmp) as f:
        doc = json.load(f)
    doc["info"]["missing_frames"] = missing
    doc["info"]["objects"] = {str(o["id"]): o["name"] for o in session.state["objects"]}
    with open(tmp, "w") as f:
        json.dump(doc, f)
    return missing


def object_palette(session: Session) -> np.ndarray:
    """256 x 3 uint8 RGB: each object's colour on the page at its id, DAVIS colours elsewhere."""
    palette = davis_palette().copy()
    for o in session.state["objects"]:
        hexa = o["color"].lstrip("#")
        palette[int(o["id"])] = [int(hexa[i:i + 2], 16) for i in (0, 2, 4)]
    return palette


def _overlay(session, info, library, tmp) -> list[int]:
    missing = []
    tmp_mp4 = tmp + ".mp4"  # OpenCV picks the container from the extension
    try:
        with OverlayWriter(tmp_mp4, info.fps, (info.height, info.width),
                           palette=object_palette(session)) as writer:
            for t, name, labels, ok in _frames(session, info):
                writer.write(library.read_frame(session.video, t), labels)
                if not ok:
                    missing.append(t)
        os.replace(tmp_mp4, tmp)
    finally:
        if os.path.exists(tmp_mp4):
            os.remove(tmp_mp4)
    return missing
