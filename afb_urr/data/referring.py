"""Synthetic referring expressions over the procedural videos of :mod:`.synthetic`.

A small grammar of colour, shape, size, position and motion describes one
object of a frame: "the red ellipse", "the small polygon on the left", "the
largest shape", "the shape moving up". An expression is produced only when it
is unambiguous in that frame: no other visible object fits every part of it,
with margins (colour away from a hue boundary, sizes >= 1.5x apart, positions
>= 15% of the frame apart), so the truth is never a coin toss.

Two phrasings of every description exist: ``"train"`` templates ("the red
ellipse on the left") and ``"heldout"`` templates with unseen wording ("the
oval that is red to the left"), for measuring generalisation to new phrasings;
held-out videos are the ``"val"`` split of :class:`SyntheticVideos`. The
descriptions themselves (combinations of attribute values) split in two
parts by a fixed hash (:func:`description_part`): a model trained on the
``"train"`` part (every one-attribute description and most combinations)
meets the ``"heldout"`` part's combinations of known words ("the smallest red
polygon") only when it is evaluated.

Object attributes (shape kind, hue, true centre trajectory) come from
replaying ``render_video``'s random stream; visible area and position come
from the rendered label map of the frame.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np

from . import synthetic as syn

ATTRIBUTES = ("colour", "shape", "size", "position", "motion")
# Motion is not visible in a single frame; a one-image model (LAVT) cannot learn it, so it is opt-in.
STATIC_ATTRIBUTES = ("colour", "shape", "size", "position")
COLOURS = ("red", "yellow", "green", "cyan", "blue", "purple")  # hue bins centred at k/6
HUE_MARGIN = 0.04       # a hue this close to a bin boundary has no single colour name
SIZE_RATIO = 1.5        # "largest"/"smallest": visible area this many times the runner-up
POSITION_GAP = 0.15     # "on the left": centroid this share of the frame apart from the others
MOTION_FRAMES = 4       # motion is measured over this many frames
MOTION_MIN = 0.03       # and must cover this share of the shorter side
MIN_AREA = 0.002        # a target must show this share of the frame
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_PHRASES = {
    "train": dict(noun={"ellipse": "ellipse", "rectangle": "rectangle", "polygon": "polygon", None: "shape"},
                  size={"largest": "largest", "smallest": "smallest"},
                  side={"left": "on the left", "right": "on the right", "top": "at the top",
                        "bottom": "at the bottom"},
                  motion="moving {}", colour_after=False),
    "heldout": dict(noun={"ellipse": "oval", "rectangle": "box", "polygon": "irregular shape", None: "object"},
                    size={"largest": "biggest", "smallest": "tiniest"},
                    side={"left": "to the left", "right": "to the right", "top": "near the top",
                          "bottom": "near the bottom"},
                    motion="going {}", colour_after=True),
}


STYLES = tuple(_PHRASES)  # "train", "heldout"


def colour_names(hue: float) -> set[str]:
    """Colour names a hue could be called: one name, or two within HUE_MARGIN of a boundary."""
    names = set()
    for k, name in enumerate(COLOURS):
        d = abs((hue - k / 6 + 0.5) % 1.0 - 0.5)  # circular distance to the bin centre
        if d < 1 / 12 + HUE_MARGIN:
            names.add(name)
    return names


@dataclass
class ObjectInfo:
    """What the grammar can say about one object in one frame."""
    label: int
    shape: str
    colours: set[str]
    area: int
    centroid: tuple[float, float]  # (x, y) of the visible pixels
    motion: str | None             # "up" / "down" / "left" / "right" / None when unclear
    motions: set[str]              # every direction the motion could be called (for distractors)


@dataclass(frozen=True)
class Replayed:
    """An object of a rendered video as ``render_scene`` drew it, read by the grammar."""
    obj: syn._Object  # outline kind, hue, outline, texture, centre T x 2, scale, angle

    @property
    def shape(self) -> str:
        return self.obj.kind

    @property
    def hue(self) -> float:
        return self.obj.hue


def replay_objects(seed: int, num_frames: int, size: tuple[int, int], num_objects: int) -> list[Replayed]:
    """Each object of ``render_video(seed, num_frames, size, num_objects)`` (rendered again by
    ``render_scene``, the one place that draws them; a video of :class:`SyntheticVideos` keeps them)."""
    return replayed(syn.render_scene(seed, num_frames, size, num_objects)[2])


def replayed(objects) -> list[Replayed]:
    """The objects ``render_scene`` returned, as the grammar reads them."""
    return [Replayed(obj) for obj in objects]


def _motion(centre: np.ndarray, t: int, side: int) -> tuple[str | None, set[str]]:
    """(clear direction or None, every direction it could be called) of the centre over MOTION_FRAMES frames."""
    t0, t1 = (t, t + MOTION_FRAMES) if t + MOTION_FRAMES < len(centre) else (max(0, t - MOTION_FRAMES), t)
    dx, dy = centre[t1] - centre[t0]
    step = MOTION_MIN * side
    plausible = {name for name, v in (("right", dx), ("left", -dx), ("down", dy), ("up", -dy)) if v >= step / 2}
    clear = None
    if max(abs(dx), abs(dy)) >= step and abs(dx) >= 2 * abs(dy):
        clear = "right" if dx > 0 else "left"
    elif max(abs(dx), abs(dy)) >= step and abs(dy) >= 2 * abs(dx):
        clear = "down" if dy > 0 else "up"
    return clear, plausible


def frame_objects(labels: np.ndarray, replay, t: int) -> list[ObjectInfo]:
    """Visible objects of frame ``t`` (labels H x W) with their attributes."""
    h, w = labels.shape
    objs = []
    for k, rep in enumerate(replay):
        ys, xs = np.nonzero(labels == k + 1)
        if len(xs) == 0:
            continue
        clear, plausible = _motion(rep.obj.centre, t, min(h, w))
        objs.append(ObjectInfo(k + 1, rep.shape, colour_names(rep.hue), len(xs), (float(xs.mean()), float(ys.mean())),
                               clear, plausible))
    return objs


def _categorical(o: ObjectInfo, desc: dict) -> bool:
    return ((desc.get("colour") is None or desc["colour"] in o.colours)
            and (desc.get("shape") is None or desc["shape"] == o.shape)
            and (desc.get("motion") is None or desc["motion"] in o.motions))


def _extreme(target: ObjectInfo, others: list[ObjectInfo], key, gap: float) -> bool:
    """``key(target)`` exceeds every other's by ``gap`` (others may be empty)."""
    return all(key(target) - key(o) >= gap for o in others)


def _relational_ok(target: ObjectInfo, others: list[ObjectInfo], desc: dict, size: tuple[int, int]) -> bool:
    h, w = size
    if desc.get("size") == "largest" and not all(target.area >= SIZE_RATIO * o.area for o in others):
        return False
    if desc.get("size") == "smallest" and not all(SIZE_RATIO * target.area <= o.area for o in others):
        return False
    side = desc.get("side")
    keys = {"left": (lambda o: -o.centroid[0], w), "right": (lambda o: o.centroid[0], w),
            "top": (lambda o: -o.centroid[1], h), "bottom": (lambda o: o.centroid[1], h)}
    if side is not None and not _extreme(target, others, keys[side][0], POSITION_GAP * keys[side][1]):
        return False
    return True


def unambiguous(target: ObjectInfo, objs: list[ObjectInfo], desc: dict, size: tuple[int, int]) -> bool:
    """True when ``desc`` fits ``target`` and no other visible object.

    Relational parts (size, side) compare the target with the objects that fit
    the categorical parts (colour, shape, motion); they need >= 2 such objects.
    """
    if not _categorical(target, desc) or (desc.get("colour") and len(target.colours) != 1):
        return False
    if desc.get("motion") and desc["motion"] != target.motion:
        return False
    group = [o for o in objs if o.label != target.label and _categorical(o, desc)]
    relational = desc.get("size") is not None or desc.get("side") is not None
    if not relational:
        return not group
    return bool(group) and _relational_ok(target, group, desc, size)


def descriptions(target: ObjectInfo, attributes=STATIC_ATTRIBUTES) -> list[dict]:
    """Every combination of the target's attribute values (at most one relational part, each kind once)."""
    options = {"colour": sorted(target.colours) if len(target.colours) == 1 else [],
               "shape": [target.shape], "size": ["largest", "smallest"],
               "position": ["left", "right", "top", "bottom"],
               "motion": [target.motion] if target.motion else []}
    slots = [[None] + (options[a] if a in attributes else []) for a in ("colour", "shape", "motion")]
    rel = [{}] + [{"size": v} for v in options["size"] if "size" in attributes] \
        + [{"side": v} for v in options["position"] if "position" in attributes]
    out = []
    for colour, shape, motion in itertools.product(*slots):
        for r in rel:
            desc = dict(colour=colour, shape=shape, motion=motion, **r)
            if any(v is not None for v in desc.values()):
                out.append(desc)
    return out


def realise(desc: dict, style: str = "train") -> str:
    """The English phrase of a description in the ``"train"`` or ``"heldout"`` templates."""
    p = _PHRASES[style]
    words = ["the"]
    if desc.get("size"):
        words.append(p["size"][desc["size"]])
    if desc.get("colour") and not p["colour_after"]:
        words.append(desc["colour"])
    words.append(p["noun"][desc.get("shape")])
    if desc.get("colour") and p["colour_after"]:
        words += ["that", "is", desc["colour"]]
    if desc.get("side"):
        words.append(p["side"][desc["side"]])
    if desc.get("motion"):
        words.append(p["motion"].format(desc["motion"]))
    return " ".join(words)


DESCRIPTION_PARTS = ("all", "train", "heldout")


def description_part(desc: dict, heldout_fraction: float = 0.2) -> str:
    """``"heldout"`` for a fixed share (about ``heldout_fraction``) of the combinations, else ``"train"``.

    Descriptions of one attribute ("the red shape", "the ellipse", "the shape
    on the left") are always "train": every word is learnt alone; a share of
    the combinations of two or more ("the red ellipse on the left") is kept
    for evaluation. Decided by a CRC32 of the description's "train" wording,
    so it depends on neither the frame nor the run.
    """
    if sum(v is not None for v in desc.values()) < 2:
        return "train"
    return "heldout" if zlib.crc32(realise(desc, "train").encode()) % 10_000 < heldout_fraction * 10_000 else "train"


def description_kind(desc: dict) -> str:
    """The attributes a description uses, e.g. "shape+size" for "the smallest ellipse"
    (what ``sampling="kind"`` evens out)."""
    parts = (("colour", "colour"), ("shape", "shape"), ("size", "size"), ("side", "position"), ("motion", "motion"))
    return "+".join(name for key, name in parts if desc.get(key) is not None)


def _checked(part: str, style: str, attributes) -> None:
    if style not in _PHRASES:
        raise ValueError(f"template style must be one of {sorted(_PHRASES)}, got {style!r}")
    if part not in DESCRIPTION_PARTS:
        raise ValueError(f"description part must be one of {DESCRIPTION_PARTS}, got {part!r}")
    unknown = set(attributes) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown referring attributes {sorted(unknown)}; expected a subset of {ATTRIBUTES}")


def _usable(labels: np.ndarray, replay, t: int, attributes, part: str, heldout_fraction: float):
    """(target, every visible object, description) for each unambiguous description of the ``part``
    of each large-enough object of frame ``t``."""
    objs = frame_objects(labels, replay, t)
    for o in objs:
        if o.area < MIN_AREA * labels.size:
            continue
        for d in descriptions(o, attributes):
            in_part = part == "all" or description_part(d, heldout_fraction) == part
            if in_part and unambiguous(o, objs, d, labels.shape):
                yield o, objs, d


def described(labels: np.ndarray, replay, t: int, style: str = "train", attributes=STATIC_ATTRIBUTES,
              part: str = "all", heldout_fraction: float = 0.2) -> dict[int, list[tuple[str, str]]]:
    """label -> sorted (expression, :func:`description_kind`) pairs of the unambiguous expressions
    for that object in frame ``t`` (objects with none are left out).

    ``part``: "all" descriptions, or only the "train" / "heldout" part of :func:`description_part`.
    """
    _checked(part, style, attributes)
    found: dict[int, set] = {}
    for o, _, d in _usable(labels, replay, t, attributes, part, heldout_fraction):
        found.setdefault(o.label, set()).add((realise(d, style), description_kind(d)))
    return {label: sorted(pairs) for label, pairs in sorted(found.items())}


CATEGORICAL = ("colour", "shape", "motion")


def filter_matters(target: ObjectInfo, objs: list[ObjectInfo], desc: dict, size: tuple[int, int]) -> bool:
    """Whether a relational description with a filter ("the smallest ellipse") stops fitting
    ``target`` alone once its colour/shape/motion words are dropped ("the smallest shape"):
    the answer depends on filtering first, then comparing."""
    relational = desc.get("size") is not None or desc.get("side") is not None
    if not relational or all(desc.get(k) is None for k in CATEGORICAL):
        return False
    bare = {k: (None if k in CATEGORICAL else v) for k, v in desc.items()}
    return not unambiguous(target, objs, bare, size)


def contrastive(labels: np.ndarray, replay, t: int, style: str = "train", attributes=STATIC_ATTRIBUTES,
                part: str = "all", heldout_fraction: float = 0.2) -> dict[int, list[str]]:
    """label -> sorted expressions of :func:`described` whose filter matters (:func:`filter_matters`)."""
    _checked(part, style, attributes)
    found: dict[int, set] = {}
    for o, objs, d in _usable(labels, replay, t, attributes, part, heldout_fraction):
        if filter_matters(o, objs, d, labels.shape):
            found.setdefault(o.label, set()).add(realise(d, style))
    return {label: sorted(texts) for label, texts in sorted(found.items())}


def expressions(labels: np.ndarray, replay, t: int, style: str = "train",
                attributes=STATIC_ATTRIBUTES, part: str = "all",
                heldout_fraction: float = 0.2) -> dict[int, list[str]]:
    """label -> the unambiguous expressions for that object in frame ``t`` (:func:`described` without kinds)."""
    return without_kinds(described(labels, replay, t, style, attributes, part, heldout_fraction))


def without_kinds(found: dict[int, list[tuple[str, str]]]) -> dict[int, list[str]]:
    """:func:`described`'s label -> (expression, kind) pairs as label -> expressions."""
    return {label: [text for text, _ in pairs] for label, pairs in found.items()}


def grammar_words() -> list[str]:
    """Every word any template can produce (both styles), sorted."""
    words = set()
    for style, p in _PHRASES.items():
        for text in list(p["noun"].values()) + list(p["size"].values()) + list(p["side"].values()):
            words.update(text.split())
        for d in ("up", "down", "left", "right"):
            words.update(p["motion"].format(d).split())
    words.update(COLOURS)
    words.update(("the", "that", "is"))
    return sorted(words)


def write_vocab(path: str) -> list[str]:
    """A WordPiece vocab.txt for the grammar: [PAD] (id 0), [UNK], [CLS], [SEP], [MASK], then the words."""
    tokens = list(SPECIAL_TOKENS) + grammar_words()
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return tokens
