"""The demo: a deterministic synthetic video segmented from its first frame, scored by J.

``python tools/infer.py --demo`` runs it with the committed demo weights
(``weights/demo_synthetic_resnet18.pth``, made by ``configs/train_synthetic.yaml``)
and prints the mean J over frames 1.. and both objects.
"""
from __future__ import annotations

import os

from ..config import CONFIG_DIR
from ..data.synthetic import DEMO_SEED, render_video
from ..evaluation.metrics import j_measure
from .segmenter import Segmenter
from .stream import segment_stream, write_outputs

DEMO_WEIGHTS = os.path.join("weights", "demo_synthetic_resnet18.pth")  # relative to the repo root
TRAIN_DEMO_HINT = ("python tools/train.py --config configs/train_synthetic.yaml "
                   f"--export {DEMO_WEIGHTS}")
DEMO_SIZE = (120, 216)  # the size the demo weights were trained at (configs/train_synthetic.yaml)
DEMO_FRAMES = 40
DEMO_OBJECTS = 2


def demo_weights() -> str:
    """Where the committed demo checkpoint lies (``DEMO_WEIGHTS`` under the repo root)."""
    return os.path.join(os.path.dirname(CONFIG_DIR), DEMO_WEIGHTS)


def run_demo(segmenter: Segmenter, out: str | None = None, overlay: str | None = None, fps: float = 24.0,
             progress: bool = True, num_frames: int | None = None, size: tuple[int, int] | None = None) -> float:
    """Segment the demo video (``DEMO_FRAMES`` frames of ``DEMO_SIZE`` unless given) from its
    first frame's truth; write PNGs to ``out`` / an mp4 to ``overlay`` when given.

    Returns the mean J over frames 1.. and every object.
    """
    frames, truth = render_video(DEMO_SEED, num_frames=num_frames or DEMO_FRAMES, size=size or DEMO_SIZE,
                                 num_objects=DEMO_OBJECTS)
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
    steps = segment_stream(segmenter, list(zip(names, frames)), masks={names[0]: truth[0]},
                           progress=progress, desc="demo")
    write_outputs(scored(steps), out, overlay, fps)
    return sum(scores) / len(scores)
