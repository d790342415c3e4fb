"""Dataset folder layouts: required files and folders, DAVIS ImageSets lists,
YouTube-VOS ``meta.json``. The one reader of each, shared by the training
data, the inference protocols and the evaluation.

DAVIS: ``<root>/ImageSets/<year>/<split>.txt`` lists one sequence per line.
A video list (``tools/infer.py --videos``): one ``VIDEO MASKS [NAME]`` per line.
YouTube-VOS: ``<split>/meta.json`` is ``{"videos": {<video>: {"objects": {<id>:
{"category": ..., "frames": [<frame>, ...]}}}}}``.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass

from .errors import InputError, MissingInputError


def require_dir(path: str, what: str) -> str:
    """``path`` if it is a folder, else a MissingInputError naming it and what it should hold."""
    if not os.path.isdir(path):
        raise MissingInputError(f"{what} folder not found: {path}")
    return path


def require_file(path: str, what: str) -> str:
    """``path`` if it is a file, else a MissingInputError naming it and what it should be."""
    if not os.path.isfile(path):
        raise MissingInputError(f"{what} not found: {path}")
    return path


def read_list(path: str, what: str = "sequence list") -> list[str]:
    """Non-empty stripped lines of a text file (an ImageSets split list); InputError if none."""
    require_file(path, what)
    with open(path) as f:
        names = [line.strip() for line in f]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"{what} is empty: {path}")
    return names


def davis_list(root: str, split: str, year: str = "2017") -> list[str]:
    """The sequences of ``<root>/ImageSets/<year>/<split>.txt``."""
    return read_list(os.path.join(root, "ImageSets", year, f"{split}.txt"),
                     f"DAVIS-{year} sequence list for split '{split}'")


def _meta_error(path: str, problem: str) -> InputError:
    return InputError(f"YouTube-VOS meta file {path}: {problem}")


def read_meta(path: str) -> dict[str, dict[str, list[str]]]:
    """meta.json -> {video: {object id: [frame stems]}}; InputError naming the file if malformed."""
    require_file(path, "YouTube-VOS meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read YouTube-VOS meta file {path}: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        raise _meta_error(path, "expected {\"videos\": {...}} at the top")
    out = {}
    for vid, entry in meta["videos"].items():
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict):
            raise _meta_error(path, f"video {vid!r} has no \"objects\" mapping")
        out[vid] = {}
        for oid, obj in objects.items():
            frames = obj.get("frames") if isinstance(obj, dict) else None
            if not isinstance(frames, list):
                raise _meta_error(path, f"video {vid!r} object {oid!r} has no \"frames\" list")
            out[vid][str(oid)] = [str(s) for s in frames]
    return out


@dataclass
class ListedVideo:
    """One line of a ``--videos`` list: output name, video (file or frame folder) and masks
    (a label PNG of the first frame, or a folder of label PNGs named after frames)."""
    name: str
    video: str
    masks: str


def _listed(path: str, number: int, fields: list[str]) -> ListedVideo:
    where = f"{path}:{number}"
    if len(fields) not in (2, 3):
        raise InputError(f"{where}: expected 'VIDEO MASKS [NAME]', got {len(fields)} field(s)")
    base = os.path.dirname(os.path.abspath(path))
    video, masks = (os.path.join(base, os.path.expanduser(f)) for f in fields[:2])
    if not os.path.exists(video):
        raise MissingInputError(f"{where}: video not found: {fields[0]}")
    if not os.path.exists(masks):
        raise MissingInputError(f"{where}: masks not found: {fields[1]}")
    name = fields[2] if len(fields) == 3 else \
        os.path.splitext(os.path.basename(os.path.normpath(video)))[0]
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise InputError(f"{where}: output name {name!r} is not a plain folder name")
    return ListedVideo(name, video, masks)


def read_video_list(path: str) -> list[ListedVideo]:
    """A ``--videos`` list file: one video per line, ``VIDEO MASKS [NAME]``.

    Fields are split like a shell does (quote paths with spaces); relative paths
    are relative to the list file; blank lines and lines starting with ``#`` are
    skipped. NAME (default: the video's file or folder name without extension)
    is the output folder; two videos with one name are an error.
    """
    require_file(path, "video list")
    videos: dict[str, ListedVideo] = {}
    with open(path) as f:
        lines = list(f)
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = shlex.split(line)
        except ValueError as e:
            raise InputError(f"{path}:{number}: {e}") from None
        item = _listed(path, number, fields)
        if item.name in videos:
            raise InputError(f"{path}:{number}: the output name {item.name!r} is taken by another "
                             f"line; give a third field NAME")
        videos[item.name] = item
    if not videos:
        raise InputError(f"video list is empty: {path}")
    return list(videos.values())
