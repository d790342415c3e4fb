"""``tools/infer.py --text``: first masks from sentences with a referring (LAVT) model.

  python tools/infer.py --video clip.mp4 --text "the man in white" --text "the referee" \\
      --referring-weights lavt_one_refcoco.pth --vocab bert-base-uncased/vocab.txt \\
      --weights afb_urr.pth --out masks/
  python tools/infer.py --demo --text

Each --text expression becomes one object at --text-frame (default 0): its mask
comes from the referring model (published pre/post-processing, see
afb_urr.referring.prompt), then AFB-URR propagates as usual. With --mask, the
text objects get ids after the mask's; at the mask's frame its pixels win.
With --text-frame t > 0 and no --mask the run starts at frame t (forward
propagation: earlier frames hold no object and get no PNG).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

import numpy as np

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


def load_referring(weights: str, vocab: str | None, device):
    """(model in eval mode on ``device``, tokenizer), with one-line errors for a missing file,
    an AFB-URR checkpoint, or a missing / mismatched vocabulary."""
    from ..referring import load_referring_model, load_tokenizer
    from ..referring.loading import vocab_file_for
    from ..referring.prompt import check_vocabulary

    if not weights:
        raise ValueError("--referring-weights is required with --text: a LAVT checkpoint")
    if vocab is None:
        beside = vocab_file_for(weights)
        if not os.path.isfile(beside):
            raise ValueError(f"--vocab is required: no vocabulary beside {weights} ({beside}); give the "
                             "vocab.txt of the model's BERT (bert-base-uncased for released LAVT files)")
        vocab = beside
    tokenizer = load_tokenizer(vocab)
    model = load_referring_model(weights, device)
    check_vocabulary(model, tokenizer)
    return model, tokenizer


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


def _frame_at(video: str, sequence: str | None, t: int) -> tuple[str, np.ndarray]:
    from ..io import open_frames
    for i, (name, frame) in enumerate(open_frames(video, sequence=sequence)):
        if i == t:
            return name, frame
    raise ValueError(f"--text-frame {t} is past the end of {video} ({t} frames or fewer)")


def prompted_masks(args, mask: np.ndarray | None, device) -> tuple[np.ndarray, dict, int]:
    """(first frame's mask, {frame name: label map} for later frames, frames to skip) of a
    --text run; ``mask``: the --mask label map of the first frame, or None."""
    expressions = list(args.text)
    t = args.text_frame
    if t < 0:
        raise ValueError(f"--text-frame must be >= 0, got {t}")
    model, tokenizer = load_referring(args.referring_weights, args.vocab, device)
    check_expressions(tokenizer, expressions)
    name, frame = _frame_at(args.video, args.sequence, t)
    if mask is not None and mask.shape != frame.shape[:2]:
        raise ValueError(f"--mask is {mask.shape[0]}x{mask.shape[1]} but the video is "
                         f"{frame.shape[0]}x{frame.shape[1]}")
    first_id = int(mask.max()) + 1 if mask is not None else 1
    labels = text_objects_at(model, tokenizer, frame, expressions, first_id).labels
    if mask is None:
        if t > 0:
            print(f"starting at frame {t} ({name}): frames before it hold no object")
        return labels, {}, t
    if t == 0:
        return np.where(mask != 0, mask, labels).astype(np.uint8), {}, 0
    return mask, {name: labels}, 0


def run_text_demo(args, build_segmenter) -> int:
    """``--demo --text``: the demo video's first masks from sentences (the grammar's, or the
    --text values, sentence i = object i), propagated with the demo weights; prints mean J."""
    from ..inference import demo, resolve_device

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
