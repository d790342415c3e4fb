"""``tools/infer.py --text``: first masks from sentences with a referring (LAVT) model.

  python tools/infer.py --video clip.mp4 --text "the man in white" --text "the referee" \\
      --referring-weights lavt_one_refcoco.pth --vocab bert-base-uncased/vocab.txt \\
      --weights afb_urr.pth --out masks/
  python tools/infer.py --demo --text

Each --text expression becomes one object at --text-frame (default 0): its mask
comes from the referring model (published pre/post-processing, see
afb_urr.referring.prompt) and joins the run's other annotations (--mask,
--masks, a DAVIS sequence's) as the mask of that frame; then AFB-URR propagates
as usual (--direction). Text objects get ids after the other masks' objects;
where a mask is given for the same frame its pixels win.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

import numpy as np

from ..io.annotations import MaskFolder

MAX_TOKENS = 20  # the published text length


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """The "text prompts" argument group of tools/infer.py."""
    g = parser.add_argument_group(
        "text prompts",
        "make the first masks from English expressions with a referring (LAVT) model, then propagate")
    g.add_argument("--text", action="append", nargs="?", const="", metavar="EXPRESSION",
                   help="an expression describing one object (repeat for several: expression i is "
                        "object i, after any --mask objects). Longer than 18 word pieces: truncated to "
                        f"{MAX_TOKENS} ids as published, with a warning. With --demo and no value: "
                        "one sentence per demo object from the synthetic grammar")
    g.add_argument("--referring-weights", metavar="PTH",
                   help="LAVT checkpoint: a released lavt_one or lavt file from the authors' repository, or "
                        "one of ours (tools/train.py with a referring config); for --demo default "
                        "weights/demo_referring_light.pth")
    g.add_argument("--vocab", metavar="TXT",
                   help="the BERT vocabulary of the referring model: bert-base-uncased's vocab.txt (or "
                        "its folder) for released files; default for our files: <weights stem>_vocab.txt")
    g.add_argument("--text-frame", type=int, default=0, metavar="T",
                   help="frame (0-based) the expressions describe")


@contextlib.contextmanager
def warning_lines():
    """Python warnings raised inside (truncation, expressions that found nothing) as one
    ``warning: ...`` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def check_expressions(tokenizer, expressions: list[str]) -> None:
    """Encode every expression first: an empty one is an error; a truncated one prints a warning line."""
    for text in expressions:
        if not text or not text.strip():
            raise ValueError(f"empty --text expression {text!r}: describe the object in words")
        with warning_lines():
            tokenizer.encode(text)


def report(expressions: list[str], found) -> None:
    """One line per expression: its object id or why it found nothing, and its confidence."""
    for k, (text, obj) in enumerate(zip(expressions, found.ids)):
        what = f"object {obj}" if obj is not None else f"no object ({found.masks.reasons[k]})"
        print(f"text {text!r}: {what}, confidence {found.masks.confidence[k]:.2f}")


def text_objects_at(model, tokenizer, frame: np.ndarray, expressions: list[str], first_id: int):
    """:func:`afb_urr.inference.text.text_objects`, warnings as lines, then :func:`report`."""
    from ..inference.text import text_objects

    with warning_lines():
        found = text_objects(model, tokenizer, frame, expressions, first_id)
    report(expressions, found)
    return found


class PromptedMasks(MaskFolder):
    """A run's annotations with the --text masks of one frame added (held in memory)."""

    def __init__(self, base: MaskFolder, arrays: dict[str, np.ndarray], order: list[str]):
        paths = dict(base.paths, **{n: f"(--text at frame {n})" for n in arrays})
        ids = dict(base.object_ids, **{n: tuple(int(i) for i in np.unique(a) if i) for n, a in arrays.items()})
        rank = {n: i for i, n in enumerate(order)}
        keys = sorted(paths, key=rank.__getitem__)
        super().__init__({k: paths[k] for k in keys}, {k: ids[k] for k in keys}, base.frame_size, base.resize,
                         base.binary_255_is_object)
        self.arrays = arrays

    def read(self, name: str) -> np.ndarray:
        return self.arrays[name] if name in self.arrays else super().read(name)


def add_text_prompts(args, inp):
    """The --video run ``inp`` (infer_inputs.VideoInput) with the objects of the --text
    expressions added at --text-frame: ids after the run's objects, a mask given for that
    frame keeping its pixels. Returns ``inp`` (its masks and engine updated)."""
    from ..inference import resolve_device
    from ..inference.text import load_referring
    from ..io.frame_cache import FrameCache
    from .infer_inputs import max_objects
    from .infer_model import bank_budget
    if inp.live or inp.names is None:
        raise ValueError("--text needs a video file or a frame folder (the frame it describes is read first)")
    t = args.text_frame
    if not 0 <= t < len(inp.names):
        raise ValueError(f"--text-frame {t}: the video has frames 0..{len(inp.names) - 1}")
    if (args.direction == "forward" and t > inp.end) or (args.direction == "backward" and t < inp.start):
        raise ValueError(f"--text-frame {t} is outside the frames this run segments "
                         f"({args.direction} over {inp.start}..{inp.end})")
    expressions = list(args.text)
    fit = max_objects(bank_budget(args), inp.size)
    if len(inp.object_ids) + len(expressions) > fit:
        raise ValueError(f"{len(inp.object_ids)} objects from masks and {len(expressions)} from --text: at most "
                         f"{fit} fit the feature bank at this frame size (--budget)")
    model, tokenizer = load_referring(args.referring_weights, args.vocab, resolve_device(args.device))
    check_expressions(tokenizer, expressions)
    cache = FrameCache(inp.source.path, max_bytes=0)
    try:
        frame = cache[t]
    finally:
        cache.close()
    name = inp.names[t]
    first_id = max(inp.object_ids, default=0) + 1
    labels = text_objects_at(model, tokenizer, frame, expressions, first_id).labels
    if name in inp.masks.paths:
        given = inp.masks.read(name)
        labels = np.where(given != 0, given, labels).astype(np.uint8)
    inp.masks = PromptedMasks(inp.masks, {name: labels}, inp.names)
    first = inp.names.index(next(iter(inp.masks.paths)))
    inp.session = len(inp.masks.paths) > 1 or args.direction != "forward" or first != 0 or inp.start != 0
    if not inp.mask_from:
        inp.mask_from = f"--text at frame {name}"
    return inp


def run_text_demo(args, build_segmenter) -> int:
    """``--demo --text``: the demo video's first masks from sentences (the grammar's, or the
    --text values, sentence i = object i), propagated with the demo weights; prints mean J."""
    from ..inference import demo, resolve_device
    from ..inference.text import load_referring

    weights = args.weights or demo.demo_weights()
    referring = args.referring_weights or demo.demo_weights(referring=True)
    for given, path, hint in ((args.weights, weights, demo.TRAIN_DEMO_HINT),
                              (args.referring_weights, referring, demo.TRAIN_REFERRING_HINT)):
        if not given and not os.path.isfile(path):
            raise ValueError(f"demo weights not found at {path}; train them with `{hint}`")
    model, tokenizer = load_referring(referring, args.vocab, resolve_device(args.device))
    sentences = [t for t in args.text if t]
    check_expressions(tokenizer, sentences)
    segmenter = build_segmenter(args, weights)
    with warning_lines():
        mean_j, first_j, found, sentences = demo.run_text_demo(
            segmenter, model, tokenizer, sentences or None, out=args.out, overlay=args.overlay, fps=args.fps,
            progress=not args.no_progress)
    report(sentences, found)
    print(f"first-frame J of the text masks: {first_j:.3f}")
    print(f"mean J: {mean_j:.3f}")
    return 0
