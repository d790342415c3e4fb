"""Drive a Segmenter over a frame source, one frame at a time, with a progress bar,
and write what it yields (label PNGs, an overlay video).

Shared by the ``infer`` command, the demo and the dataset protocol runners: they
differ only in where frames and masks come from and what is done with each result.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from ..io import OverlayWriter, read_mask, void_to_background, write_mask


@dataclass
class StreamStep:
    """One segmented frame: its position, name, RGB pixels (H x W x 3 uint8) and the step result."""
    index: int
    name: str
    frame: np.ndarray
    result: Any          # Segmenter.step's StepResult (.labels H x W uint8, .probs, .object_ids)
    seconds: float       # time spent in Segmenter.step for this frame


def with_last(items: Iterable) -> Iterator[tuple[Any, bool]]:
    """Yield ``(item, is_last)``, looking one item ahead (holds at most one extra item).

    When reading the next item fails (a corrupt frame), the current one is still
    yielded (as not last) before the error is raised, so no finished work is lost.
    """
    it = iter(items)
    try:
        current = next(it)
    except StopIteration:
        return
    while True:
        try:
            nxt = next(it)
        except StopIteration:
            break
        except Exception:
            yield current, False
            raise
        yield current, False
        current = nxt
    yield current, True


def bank_entries(segmenter) -> int:
    """Total entries in the segmenter's feature bank (all objects), 0 before the first frame."""
    bank = getattr(segmenter, "bank", None)
    if bank is None:
        return 0
    return int(sum(bank.sizes))


def _limited(frames, max_frames):
    for i, item in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            return
        yield item


def segment_stream(segmenter, frames: Iterable[tuple[str, np.ndarray]],
                   masks: Mapping[str, Any] | None = None, first_mask: Any = None,
                   first_mask_name: str | None = None,
                   max_frames: int | None = None,
                   progress: bool = True, desc: str = "segment") -> Iterator[StreamStep]:
    """Segment ``frames`` (``(name, H x W x 3 uint8 RGB)`` pairs) with ``segmenter``.

    masks: frame name -> label map (H x W ints) or the path of a label-map PNG
    (read when that frame comes, the void label 255 mapped to background); the
    first frame needs one: ``masks[its name]`` or else ``first_mask`` (label map
    or path), for sources whose first name is not known in advance;
    ``first_mask_name`` names it in errors (e.g. its file). The last frame is
    not memorised (the published behaviour). ``max_frames`` stops early (the
    frame where it stops is then the last one). The tqdm bar shows the overall
    rate, the Segmenter-only fps and the bank size.
    """
    masks = masks or {}
    total = None
    try:
        total = len(frames)  # type: ignore[arg-type]
    except TypeError:
        pass
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    bar = tqdm(total=total, desc=desc, unit="frame", disable=not progress, dynamic_ncols=True)
    step_time = 0.0
    try:
        for index, ((name, frame), is_last) in enumerate(with_last(_limited(frames, max_frames))):
            mask = masks.get(name)
            mask_path = f"the mask given for frame {name}"
            if mask is None and index == 0:
                mask = first_mask
                mask_path = first_mask_name or mask_path
            if isinstance(mask, str):
                mask_path, mask = f"mask {mask}", void_to_background(read_mask(mask))
            if mask is not None:
                mask = np.asarray(mask)
                if mask.shape != frame.shape[:2]:
                    raise ValueError(
                        f"{mask_path} is {mask.shape[0]}x{mask.shape[1]} but frame {name} is "
                        f"{frame.shape[0]}x{frame.shape[1]}; the mask must have the frame's size")
            elif index == 0:
                raise ValueError(f"no mask for the first frame ({name}); the first frame needs one")
            t0 = time.perf_counter()
            result = segmenter.step(frame, mask=mask, memorize=not is_last)
            dt = time.perf_counter() - t0
            step_time += dt
            bar.set_postfix(fps=f"{(index + 1) / max(step_time, 1e-9):.1f}",
                            bank=bank_entries(segmenter), refresh=False)
            bar.update(1)
            yield StreamStep(index, name, frame, result, dt)
    finally:
        bar.close()


def write_outputs(steps: Iterable[StreamStep], out: str | None = None, overlay: str | None = None,
                  fps: float = 24.0) -> int:
    """Consume ``steps``: each one's labels as ``<out>/<name>.png`` (DAVIS palette) and as a
    frame of the ``overlay`` mp4 (either may be None); returns the number of steps."""
    n = 0
    with contextlib.ExitStack() as stack:
        writer = None
        for step in steps:
            labels = step.result.labels
            if out:
                write_mask(os.path.join(out, step.name + ".png"), labels)
            if overlay:
                if writer is None:
                    writer = stack.enter_context(OverlayWriter(overlay, fps, labels.shape))
                writer.write(step.frame, labels)
            n += 1
    return n
