"""Dataset folder layouts: required files and folders, DAVIS ImageSets lists,
YouTube-VOS ``meta.json``. The one reader of each, shared by the training
data, the inference protocols and the evaluation.

DAVIS: ``<root>/ImageSets/<year>/<split>.txt`` lists one sequence per line.
YouTube-VOS: ``<split>/meta.json`` is ``{"videos": {<video>: {"objects": {<id>:
{"category": ..., "frames": [<frame>, ...]}}}}}``.
"""
from __future__ import annotations

import json
import os

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
