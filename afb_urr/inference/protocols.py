"""Dataset protocol runners: segment every sequence of a dataset folder and write result PNGs.

- DAVIS-2017 (:func:`run_davis`): first-frame masks, all objects, palette PNGs
  ``<out>/<seq>/<frame>.png`` for every frame (frame 0 = the given mask).
- YouTube-VOS (:func:`run_youtube_vos`): objects may start at a later frame
  (their mask is given there); only the frames listed in ``meta.json`` are
  written, as ``<out>/Annotations/<vid>/<frame>.png`` at the original size, and
  ``<out>/submission.zip`` is made for the evaluation server.
- Long videos (:func:`run_long_video`): ``JPEGImages/<video>`` with sparse
  ``Annotations/<video>``; the first frame's annotation starts it, every frame
  is written as ``<out>/<video>/<frame>.png``.

Resume: a finished sequence gets a ``.done`` marker in its output folder; a
sequence with the marker and all its PNGs is skipped. Any other sequence is
segmented again from its first frame, since the feature bank needs the whole
history. Frames are processed at their original resolution.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from ..io import (InputError, SequenceSource, davis_list, read_mask, read_meta, require_file,
                  void_to_background, write_mask)
from .resources import peak_memory
from .stream import segment_stream

DONE_MARKER = ".done"


@dataclass
class ProtocolSummary:
    """What a protocol run did: sequences segmented now / skipped as already done, frames, time."""
    dataset: str
    out_dir: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    frames: int = 0          # frames segmented in this run
    seconds: float = 0.0     # time inside Segmenter.step for those frames
    written: int = 0         # PNGs written in this run
    zip_path: str | None = None

    @property
    def fps(self) -> float:
        """Frames per second of segmentation alone (reading and writing excluded)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def format(self, device=None) -> str:
        """Multi-line report: counts, fps and peak memory of this process on ``device``."""
        lines = [f"{self.dataset}: {len(self.done)} sequence(s) segmented, "
                 f"{len(self.skipped)} skipped (already done), {self.written} PNGs written to {self.out_dir}",
                 f"frames: {self.frames}, segmentation time {self.seconds:.2f} s, fps {self.fps:.2f}",
                 f"peak memory: {peak_memory(device)}"]
        if self.zip_path:
            lines.append(f"submission zip: {self.zip_path}")
        return "\n".join(lines)


def _is_done(folder: str, names: Iterable[str]) -> bool:
    if not os.path.isfile(os.path.join(folder, DONE_MARKER)):
        return False
    return all(os.path.isfile(os.path.join(folder, n + ".png")) for n in names)


def _mark_done(folder: str, frames: int) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, DONE_MARKER), "w") as f:
        json.dump({"frames": frames}, f)


def _clear_done(folder: str) -> None:
    marker = os.path.join(folder, DONE_MARKER)
    if os.path.isfile(marker):
        os.remove(marker)


class _FromName:
    """The frames of a FolderSource from frame ``start`` on (keeps ``len`` for the progress bar)."""

    def __init__(self, source: SequenceSource, start: int):
        self.source, self.start = source, start

    def __len__(self):
        return len(self.source.names) - self.start

    def __iter__(self):
        for i, item in enumerate(self.source):
            if i >= self.start:
                yield item


def _segment_sequence(summary: ProtocolSummary, segmenter_factory: Callable, frames, masks: Mapping,
                      out_folder: str, keep: set | None, progress: bool, desc: str) -> None:
    """Segment one sequence, writing ``<out_folder>/<name>.png`` for frames in ``keep`` (all if None)."""
    _clear_done(out_folder)
    os.makedirs(out_folder, exist_ok=True)
    segmenter = segmenter_factory()
    n = 0
    for step in segment_stream(segmenter, frames, masks=masks, progress=progress, desc=desc):
        summary.frames += 1
        summary.seconds += step.seconds
        if keep is None or step.name in keep:
            write_mask(os.path.join(out_folder, step.name + ".png"), step.result.labels)
            summary.written += 1
        n += 1
    _mark_done(out_folder, n)


def _first_mask(path: str) -> np.ndarray:
    require_file(path, "first-frame mask")
    return void_to_background(read_mask(path))


def _run_from_first_frames(summary: ProtocolSummary, segmenter_factory: Callable, names: list[str],
                           source_of: Callable[[str], SequenceSource], out_dir: str,
                           progress: bool) -> ProtocolSummary:
    """Segment each named sequence from its first frame's annotation into ``<out_dir>/<name>/``
    (every frame written), skipping those already done (the DAVIS and long-video protocols)."""
    for i, name in enumerate(names):
        source = source_of(name)
        folder = os.path.join(out_dir, name)
        if _is_done(folder, source.names):
            summary.skipped.append(name)
            continue
        mask = _first_mask(os.path.join(source.annotation_dir, source.names[0] + ".png"))
        _segment_sequence(summary, segmenter_factory, source, {source.names[0]: mask}, folder, None,
                          progress, f"{name} ({i + 1}/{len(names)})")
        summary.done.append(name)
    return summary


def run_davis(segmenter_factory: Callable, root: str, split: str, out_dir: str,
              resolution: str = "480p", progress: bool = True) -> ProtocolSummary:
    """DAVIS-2017 semi-supervised protocol on ``root`` (sequences of ``ImageSets/2017/<split>.txt``).

    segmenter_factory() returns a fresh Segmenter (one per sequence). Every object of
    the first frame's mask ``Annotations/<resolution>/<seq>/<first>.png`` is tracked
    (void 255 -> background); ``<out_dir>/<seq>/<frame>.png`` is written for every frame.
    """
    sequences = davis_list(root, split)

    def source_of(seq: str) -> SequenceSource:
        return SequenceSource(os.path.join(root, "JPEGImages", resolution, seq),
                              os.path.join(root, "Annotations", resolution, seq), seq)
    return _run_from_first_frames(ProtocolSummary("DAVIS-2017 " + split, out_dir), segmenter_factory,
                                  sequences, source_of, out_dir, progress)


def _load_meta(path: str) -> dict[str, dict[str, list[str]]]:
    """meta.json's videos -> {video: {object id: [frames]}}; every object must list a frame."""
    videos = read_meta(path)
    for vid, objects in videos.items():
        for oid, frames in objects.items():
            if not frames:
                raise InputError(f"YouTube-VOS meta file {path}: video {vid} object {oid} lists no frames")
    return videos


def run_youtube_vos(segmenter_factory: Callable, root: str, split: str, out_dir: str,
                    progress: bool = True, make_zip: bool = True) -> ProtocolSummary:
    """YouTube-VOS protocol on ``<root>/<split>`` (meta.json, JPEGImages/, Annotations/).

    Each object starts at the first frame of its meta "frames" list, with its
    label taken from that frame's annotation PNG (labels of objects starting
    elsewhere are dropped). Segmentation starts at the earliest such frame.
    Writes ``<out_dir>/Annotations/<vid>/<frame>.png`` for the frames the meta
    lists (union over objects) and, when ``make_zip``, ``<out_dir>/submission.zip``.
    """
    base = os.path.join(root, split)
    videos = _load_meta(os.path.join(base, "meta.json"))
    summary = ProtocolSummary("YouTube-VOS " + split, out_dir)
    ann_out = os.path.join(out_dir, "Annotations")
    expected: dict[str, list[str]] = {}
    for i, (vid, objects) in enumerate(sorted(videos.items())):
        starts: dict[str, list[int]] = {}
        listed: set[str] = set()
        for oid, frames in objects.items():
            try:
                label = int(oid)
            except ValueError:
                raise InputError(f"video {vid}: object id {oid!r} in meta.json is not an integer") from None
            starts.setdefault(frames[0], []).append(label)
            listed.update(frames)
        source = SequenceSource(os.path.join(base, "JPEGImages", vid),
                                os.path.join(base, "Annotations", vid), vid)
        names = set(source.names)
        missing = sorted(listed - names)
        if missing:
            raise InputError(f"video {vid}: meta.json lists frame(s) {', '.join(missing[:3])} not found "
                             f"in {source.path}")
        expected[vid] = sorted(listed, key=source.names.index)
        folder = os.path.join(ann_out, vid)
        if _is_done(folder, expected[vid]):
            summary.skipped.append(vid)
            continue
        masks = {}
        for frame, labels in starts.items():
            m = _first_mask(os.path.join(source.annotation_dir, frame + ".png"))
            masks[frame] = np.where(np.isin(m, labels), m, 0).astype(np.uint8)
        start = min(source.names.index(f) for f in starts)
        _segment_sequence(summary, segmenter_factory, _FromName(source, start), masks, folder,
                          set(listed), progress, f"{vid} ({i + 1}/{len(videos)})")
        summary.done.append(vid)
    if make_zip:
        summary.zip_path = write_submission_zip(out_dir, expected)
    return summary


def write_submission_zip(out_dir: str, expected: Mapping[str, list[str]]) -> str:
    """Zip ``Annotations/<vid>/<frame>.png`` of every expected frame into ``<out_dir>/submission.zip``."""
    path = os.path.join(out_dir, "submission.zip")
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        for vid, frames in sorted(expected.items()):
            for frame in frames:
                arc = f"Annotations/{vid}/{frame}.png"
                z.write(require_file(os.path.join(out_dir, arc), "result PNG"), arc)
    os.replace(tmp, path)
    return path


def run_long_video(segmenter_factory: Callable, root: str, out_dir: str,
                   progress: bool = True) -> ProtocolSummary:
    """Long-time Video protocol: every video folder of ``<root>/JPEGImages`` from its first
    frame's annotation ``<root>/Annotations/<video>/<first>.png``; all frames are written
    as ``<out_dir>/<video>/<frame>.png`` (scored later only where ground truth exists)."""
    images = os.path.join(root, "JPEGImages")
    if not os.path.isdir(images):
        raise InputError(f"long-video frame folder not found: {images}")
    videos = sorted(d for d in os.listdir(images) if os.path.isdir(os.path.join(images, d)))
    if not videos:
        raise InputError(f"no video folders in {images}")

    def source_of(vid: str) -> SequenceSource:
        return SequenceSource(os.path.join(images, vid), os.path.join(root, "Annotations", vid), vid)
    return _run_from_first_frames(ProtocolSummary("long videos", out_dir), segmenter_factory, videos,
                                  source_of, out_dir, progress)
