"""The demo: a deterministic synthetic video segmented from its first frame, scored by J.

``python tools/infer.py --demo`` runs it with the committed demo weights
(``weights/demo_synthetic_resnet18.pth``, made by ``configs/train_synthetic.yaml``)
and prints the mean J over frames 1.. and both objects. ``--demo --text`` first
makes each object's frame-0 mask from a sentence describing it (the synthetic
grammar's shortest unambiguous expression) with the light referring weights
(``weights/demo_referring_light.pth``, made by the stages and cycles of
``configs/train_referring_synthetic*.yaml``; the README's "Training a referring
model"), then propagates from those masks.
"""
from __future__ import annotations

import os

from ..config import CONFIG_DIR
from ..data.referring import expressions, replay_objects
from ..data.synthetic import DEMO_SEED, render_video
from ..evaluation.metrics import j_measure
from .segmenter import Segmenter
from .stream import segment_stream, write_outputs
from .text import TextObjects, text_objects

DEMO_WEIGHTS = os.path.join("weights", "demo_synthetic_resnet18.pth")  # relative to the repo root
TRAIN_DEMO_HINT = ("python tools/train.py --config configs/train_synthetic.yaml "
                   f"--export {DEMO_WEIGHTS}")
DEMO_REFERRING_WEIGHTS = os.path.join("weights", "demo_referring_light.pth")  # its vocabulary: *_vocab.txt
TRAIN_REFERRING_HINT = ("python tools/train.py --config configs/train_referring_synthetic.yaml --threads 1 "
                        f"--export {DEMO_REFERRING_WEIGHTS}")
DEMO_SIZE = (120, 216)  # the size the demo weights were trained at (configs/train_synthetic.yaml)
DEMO_FRAMES = 40
DEMO_OBJECTS = 2


def demo_weights(referring: bool = False) -> str:
    """Where the committed demo checkpoint lies (``DEMO_WEIGHTS`` or, with ``referring``,
    ``DEMO_REFERRING_WEIGHTS`` under the repo root)."""
    return os.path.join(os.path.dirname(CONFIG_DIR), DEMO_REFERRING_WEIGHTS if referring else DEMO_WEIGHTS)


def demo_video(num_frames: int | None = None, size: tuple[int, int] | None = None):
    """(frames, label maps) of the demo video (``DEMO_FRAMES`` frames of ``DEMO_SIZE`` unless given)."""
    return render_video(DEMO_SEED, num_frames=num_frames or DEMO_FRAMES, size=size or DEMO_SIZE,
                        num_objects=DEMO_OBJECTS)


def demo_sentences(truth: list) -> list[str]:
    """One sentence per object of the demo video's frame 0 (objects in id order): the shortest
    unambiguous expression of the synthetic grammar's training wording (ties: alphabetical)."""
    h, w = truth[0].shape
    replay = replay_objects(DEMO_SEED, len(truth), (h, w), DEMO_OBJECTS)
    found = expressions(truth[0], replay, 0)
    objects = [int(v) for v in sorted(set(truth[0].ravel().tolist())) if v != 0]
    missing = [o for o in objects if o not in found]
    if missing:
        raise ValueError(f"demo objects {missing} have no unambiguous expression at frame 0")
    return [min(found[o], key=lambda e: (len(e.split()), e)) for o in objects]


def run_text_demo(segmenter: Segmenter, model, tokenizer, sentences: list[str] | None = None,
                  **kwargs) -> tuple[float, float, TextObjects, list[str]]:
    """The demo started from sentences: sentence i -> the frame-0 mask of object i + 1 (by
    ``model``, a referring LAVT), then propagation as :func:`run_demo` (``kwargs``).
    Returns (mean J over frames 1.. and every true object, mean J of the frame-0 text masks,
    the text objects, the sentences)."""
    frames, truth = demo_video(kwargs.pop("num_frames", None), kwargs.pop("size", None))
    sentences = list(sentences) if sentences else demo_sentences(truth)
    found = text_objects(model, tokenizer, frames[0], sentences)
    objects = [int(v) for v in sorted(set(truth[0].ravel().tolist())) if v != 0]
    first_j = sum(j_measure(truth[0] == o, found.labels == o) for o in objects) / len(objects)
    return run_demo(segmenter, video=(frames, truth), first_mask=found.labels, **kwargs), first_j, found, sentences


def run_demo(segmenter: Segmenter, out: str | None = None, overlay: str | None = None, fps: float = 24.0,
             progress: bool = True, num_frames: int | None = None, size: tuple[int, int] | None = None,
             video=None, first_mask=None) -> float:
    """Segment the demo video (``DEMO_FRAMES`` frames of ``DEMO_SIZE`` unless given, or
    ``video`` = (frames, label maps)) from its first frame's truth (or ``first_mask``);
    write PNGs to ``out`` / an mp4 to ``overlay`` when given.

    Returns the mean J over frames 1.. and every object of the truth.
    """
    frames, truth = video if video is not None else demo_video(num_frames, size)
    names = [f"{i:05d}" for i in range(len(frames))]
    objects = [int(v) for v in sorted(set(truth[0].ravel().tolist())) if v != 0]
    scores = []

    def scored(steps):
        for step in steps:
            if step.index > 0:
                labels = step.result.labels
                scores.extend(j_measure(truth[step.index] == o, labels == o) for o in objects)
            yield step

    if out:
        os.makedirs(out, exist_ok=True)
    first = truth[0] if first_mask is None else first_mask
    steps = segment_stream(segmenter, list(zip(names, frames)), masks={names[0]: first},
                           progress=progress, desc="demo")
    write_outputs(scored(steps), out, overlay, fps)
    return sum(scores) / len(scores)
