"""Sessions saved under the work folder, so that they survive a server restart.

``<work>/sessions/<id>/session.json`` holds the video id, the objects (id,
name, colour), the annotated frames, the frames with results, the per-frame
uncertainty scores and the frames whose results are out of date;
``annotations/<t>.png`` and ``results/<t>.png`` are label maps (DAVIS palette
PNGs). A propagation writes into ``staging/`` and only :meth:`Session.commit`
moves its frames into ``results/``, so a job that fails leaves the saved
session exactly as it was (:meth:`Session.discard`).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid

import numpy as np

from ..io import davis_palette, read_mask, write_mask
from .errors import AppError, NotFound
from .paths import atomic_write, check_id, confine

MAX_OBJECTS = 254


# Bright, distinct colours for the page (exports keep the DAVIS palette by label id).
COLOURS = ("#ff4d5e", "#2ecc71", "#4c8bf5", "#ffb020", "#b45cff", "#00c9d8", "#ff7ab8", "#a3e048",
           "#ff8a3d", "#5d6cff")


def default_colour(obj: int) -> str:
    if obj <= len(COLOURS):
        return COLOURS[obj - 1]
    r, g, b = (int(c) for c in davis_palette()[obj])
    return f"#{r:02x}{g:02x}{b:02x}"


def check_colour(colour: str) -> str:
    ok = isinstance(colour, str) and len(colour) == 7 and colour[0] == "#"
    if ok:
        try:
            int(colour[1:], 16)
        except ValueError:
            ok = False
    if not ok:
        raise AppError(f"colour {colour!r} is not of the form #rrggbb")
    return colour.lower()


def dependents(anchors, t: int, num_frames: int) -> set[int]:
    """Frames whose result may change when the annotation of frame t changes: those between
    the annotated frames (``anchors``) around t, t excluded."""
    before = [a for a in anchors if a < t]
    after = [a for a in anchors if a > t]
    lo = before[-1] + 1 if before else 0
    hi = after[0] - 1 if after else num_frames - 1
    return set(range(lo, hi + 1)) - {t}


class Session:
    """One annotated video: its saved state and label maps (see the module docstring)."""

    def __init__(self, folder: str, state: dict):
        self.folder = folder
        self.state = state
        self.lock = threading.RLock()
        self.staged_scores: dict[int, float] = {}
        self.staged: set[int] = set()

    @property
    def id(self) -> str:
        return self.state["id"]

    @property
    def video(self) -> str:
        return self.state["video"]

    def _png(self, kind: str, t: int) -> str:
        return confine(self.folder, kind, f"{int(t):06d}.png")

    def _write(self, kind: str, t: int, labels: np.ndarray) -> None:
        """Write a label map atomically (readers never see half a PNG)."""
        path = self._png(kind, t)
        tmp = f"{path}.{threading.get_ident()}.tmp"
        write_mask(tmp, labels)
        os.replace(tmp, path)

    def save(self) -> None:
        with self.lock:
            self.state["updated"] = time.time()
            atomic_write(os.path.join(self.folder, "session.json"),
                         json.dumps(self.state, indent=1).encode())

    # ------------------------------------------------------------ label maps
    def anchors(self) -> list[int]:
        """Frames with an annotation (objects given or marked absent)."""
        return sorted({int(t) for t in self.state["annotated"]} | {int(t) for t in self.state["removed"]})

    def annotated(self) -> dict[int, list[int]]:
        return {int(t): ids for t, ids in self.state["annotated"].items()}

    def annotation(self, t: int) -> np.ndarray | None:
        path = self._png("annotations", t)
        return read_mask(path) if str(t) in self.state["annotated"] else None

    def labels(self, t: int) -> np.ndarray | None:
        """Newest label map of frame ``t``: the running job's, else the saved result."""
        with self.lock:
            for kind in ("staging", "results"):
                path = self._png(kind, t)
                if (t in self.staged if kind == "staging" else t in self.done_set()) \
                        and os.path.isfile(path):
                    return read_mask(path)
        return None

    def done_set(self) -> set[int]:
        return set(self.state["done"])

    def object_ids(self) -> list[int]:
        return [o["id"] for o in self.state["objects"]]

    def removed(self) -> dict[int, list[int]]:
        """Frame -> ids marked absent there."""
        return {int(t): ids for t, ids in self.state["removed"].items()}

    def set_annotation(self, t: int, labels: np.ndarray, removed: list[int], stale: set[int]) -> None:
        """Save ``labels`` as frame ``t``'s annotation and result, ``removed`` ids absent at t;
        ``stale`` frames are now out of date."""
        with self.lock:
            ids = [int(v) for v in np.unique(labels) if v != 0]
            gone = (set(self.state["removed"].get(str(t), [])) | set(removed)) - set(ids)
            if gone:
                self.state["removed"][str(t)] = sorted(gone)
            else:
                self.state["removed"].pop(str(t), None)
            for obj in ids:
                if obj not in self.object_ids():
                    self._add_object(obj, None, None)
            self._write("annotations", t, labels)
            self._write("results", t, labels)
            self.state["annotated"][str(t)] = ids
            self.state["done"] = sorted(self.done_set() | {t})
            self.state["scores"].pop(str(t), None)
            self.state["stale"] = sorted((set(self.state["stale"]) | stale) - {t})
            self.save()

    def drop_annotation(self, t: int) -> None:
        """Forget frame ``t``'s annotation (its result stays until the next propagation)."""
        with self.lock:
            if str(t) not in self.state["annotated"] and str(t) not in self.state["removed"]:
                raise NotFound(f"frame {t} has no annotation")
            self.state["annotated"].pop(str(t), None)
            self.state["removed"].pop(str(t), None)
            if os.path.isfile(self._png("annotations", t)):
                os.remove(self._png("annotations", t))
            self.state["stale"] = sorted(set(self.state["stale"]) | {t})
            self.save()

    # ------------------------------------------------------------ propagation results
    def stage(self, t: int, labels: np.ndarray, score: float | None) -> None:
        """Keep a running job's result for frame ``t`` (shown at once, saved on commit)."""
        self._write("staging", t, labels)
        with self.lock:
            self.staged.add(t)
            if score is not None:
                self.staged_scores[t] = float(score)

    def commit(self, fresh: set[int]) -> None:
        """Move the staged frames into the results; ``fresh`` frames are no longer stale."""
        with self.lock:
            for t in sorted(self.staged):
                os.replace(self._png("staging", t), self._png("results", t))
            self.state["done"] = sorted(self.done_set() | self.staged)
            self.state["scores"].update({str(t): s for t, s in self.staged_scores.items()})
            self.state["stale"] = sorted(set(self.state["stale"]) - fresh - self.staged)
            self.staged, self.staged_scores = set(), {}
            self.save()
        shutil.rmtree(os.path.join(self.folder, "staging"), ignore_errors=True)

    def discard(self) -> None:
        """Drop the staged frames: the session is as it was before the job."""
        with self.lock:
            self.staged, self.staged_scores = set(), {}
        shutil.rmtree(os.path.join(self.folder, "staging"), ignore_errors=True)

    def scores(self) -> dict[int, float]:
        with self.lock:
            out = {int(t): s for t, s in self.state["scores"].items()}
            out.update(self.staged_scores)
        return out

    # ------------------------------------------------------------ objects
    def _add_object(self, obj: int | None, name: str | None, colour: str | None) -> dict:
        used = set(self.object_ids())
        if obj is None:
            obj = next((i for i in range(1, MAX_OBJECTS + 1) if i not in used), None)
            if obj is None:
                raise AppError(f"a session holds at most {MAX_OBJECTS} objects")
        elif not 1 <= obj <= MAX_OBJECTS or obj in used:
            raise AppError(f"object id {obj} is taken or outside 1..{MAX_OBJECTS}")
        entry = {"id": obj, "name": name or f"Object {obj}",
                 "color": check_colour(colour) if colour else default_colour(obj)}
        self.state["objects"].append(entry)
        self.state["objects"].sort(key=lambda o: o["id"])
        return entry

    def add_object(self, name: str | None = None, colour: str | None = None,
                   obj: int | None = None) -> dict:
        with self.lock:
            entry = self._add_object(obj, name, colour)
            self.save()
            return entry

    def object(self, obj: int) -> dict:
        for o in self.state["objects"]:
            if o["id"] == obj:
                return o
        raise NotFound(f"unknown object {obj} in session {self.id}")

    def edit_object(self, obj: int, name: str | None, colour: str | None) -> dict:
        with self.lock:
            entry = self.object(obj)
            if name is not None:
                name = " ".join(name.split())
                if not name or len(name) > 100:
                    raise AppError("an object name must have 1 to 100 characters")
                entry["name"] = name
            if colour is not None:
                entry["color"] = check_colour(colour)
            self.save()
            return entry

    def delete_object(self, obj: int) -> None:
        """Remove object ``obj`` everywhere: its pixels become background in every label map."""
        with self.lock:
            self.object(obj)
            for kind in ("annotations", "results"):
                folder = os.path.join(self.folder, kind)
                names = os.listdir(folder) if os.path.isdir(folder) else []
                for f in [n for n in names if n.endswith(".png") and n[:-4].isdigit()]:
                    labels = read_mask(os.path.join(folder, f))
                    if (labels == obj).any():
                        labels[labels == obj] = 0
                        self._write(kind, int(f.split(".")[0]), labels)
            for table in ("annotated", "removed"):
                for t, ids in list(self.state[table].items()):
                    self.state[table][t] = [i for i in ids if i != obj]
            self.state["objects"] = [o for o in self.state["objects"] if o["id"] != obj]
            self.save()


class SessionStore:
    """All sessions of the work folder, loaded lazily from ``<work>/sessions``."""

    def __init__(self, work: str):
        self.root = os.path.join(work, "sessions")
        os.makedirs(self.root, exist_ok=True)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, video: str, name: str) -> Session:
        sid = uuid.uuid4().hex[:12]
        folder = confine(self.root, sid)
        state = {"id": sid, "video": video, "name": name, "created": time.time(), "objects": [],
                 "annotated": {}, "removed": {}, "done": [], "scores": {}, "stale": []}
        session = Session(folder, state)
        os.makedirs(folder)
        session.save()
        with self._lock:
            self._sessions[sid] = session
        return session

    def get(self, sid: str) -> Session:
        check_id("session", sid)
        with self._lock:
            if sid not in self._sessions:
                folder = confine(self.root, sid)
                path = os.path.join(folder, "session.json")
                if not os.path.isfile(path):
                    raise NotFound(f"unknown session {sid!r}")
                with open(path) as f:
                    session = Session(folder, json.load(f))
                session.discard()  # a job interrupted by a restart left nothing saved
                self._sessions[sid] = session
            return self._sessions[sid]

    def list(self) -> list[dict]:
        out = []
        for sid in sorted(os.listdir(self.root)):
            try:
                s = self.get(sid)
            except AppError:
                continue
            out.append({"id": s.id, "name": s.state["name"], "video": s.video,
                        "updated": s.state.get("updated", s.state["created"])})
        return sorted(out, key=lambda d: -d["updated"])

    def delete(self, sid: str) -> None:
        session = self.get(sid)
        with self._lock:
            self._sessions.pop(sid, None)
        shutil.rmtree(session.folder, ignore_errors=True)
