"""Every path the app touches is built here and stays inside the work folder.

Client input never becomes a path by itself: ids are checked against a strict
pattern, names are looked up in listings, and ``confine`` resolves the joined
path (symbolic links included) and refuses anything outside its root.
"""
from __future__ import annotations

import os
import re

from .errors import AppError, NotFound

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_id(kind: str, value: str) -> str:
    """``value`` if it is a plain id (letters, digits, _ and -, at most 64); else 404."""
    if not isinstance(value, str) or not _ID.match(value):
        raise NotFound(f"unknown {kind} {value!r}")
    return value


def confine(root: str, *parts: str) -> str:
    """``root/parts...`` resolved; AppError when a part is absolute or the result leaves ``root``."""
    base = os.path.realpath(root)
    for p in parts:
        if not isinstance(p, str) or not p or "\x00" in p or os.path.isabs(p):
            raise AppError(f"path {p!r} is not allowed here")
    path = os.path.realpath(os.path.join(base, *parts))
    if path != base and os.path.commonpath([base, path]) != base:
        raise AppError(f"path {os.path.join(*parts)!r} leaves the work folder")
    return path


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename (never a half-written file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
