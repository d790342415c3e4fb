"""Synthetic referring expressions: faithful attributes, unambiguous expressions, held-out phrasing, vocabulary."""
import colorsys
import itertools

import numpy as np
import pytest

from afb_urr.data import synthetic as syn
from afb_urr.data.referring import (ATTRIBUTES, COLOURS, STATIC_ATTRIBUTES, ObjectInfo, colour_names, contrastive,
                                    described, description_kind, descriptions, expressions, filter_matters,
                                    realise, replay_objects, unambiguous, without_kinds, write_vocab)
from afb_urr.referring.tokenizer import load_tokenizer

SIZE = (96, 160)


def _video(seed, n=3, frames=6):
    return syn.render_video(seed, frames, SIZE, n), replay_objects(seed, frames, SIZE, n)


def test_replay_reproduces_the_rendered_objects():
    for seed in (3, 4, 5):
        (frames, masks), replay = _video(seed)
        for t in (0, 5):
            for k, rep in enumerate(replay):
                y0, x0, m, _ = syn._draw(rep.obj, t, *SIZE)
                drawn = np.zeros(SIZE, bool)
                drawn[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
                visible = masks[t] == k + 1
                assert visible.any() and not (visible & ~drawn).any()  # every labelled pixel is this outline's


def test_colour_names_by_hand_and_on_rendered_pixels():
    assert colour_names(0.0) == {"red"} and colour_names(0.98) == {"red"}
    assert colour_names(1 / 6) == {"yellow"} and colour_names(4 / 6) == {"blue"}
    assert colour_names(1 / 12) == {"red", "yellow"} and colour_names(0.25 + 0.01) == {"yellow", "green"}
    checked = 0
    for seed in range(10, 16):
        (frames, masks), replay = _video(seed, frames=1)
        for k, rep in enumerate(replay):
            names = colour_names(rep.hue)
            pix = frames[0][masks[0] == k + 1].astype(np.float64) / 255
            if len(names) != 1 or len(pix) < 50:
                continue
            hues = np.array([colorsys.rgb_to_hsv(*p)[0] for p in pix[::7]])
            mean = np.angle(np.exp(2j * np.pi * hues).mean()) / (2 * np.pi) % 1.0  # circular mean
            assert names <= colour_names(mean), (seed, k, rep.hue, mean)
            checked += 1
    assert checked >= 8


def _obj(label, shape="ellipse", colour="red", area=100, x=50.0, y=50.0, motion=None):
    return ObjectInfo(label, shape, {colour} if isinstance(colour, str) else set(colour), area, (x, y), motion,
                      {motion} if motion else set())


def test_unambiguity_by_hand():
    size = (100, 100)
    red, blue = _obj(1, colour="red", area=100, x=20), _obj(2, colour="blue", area=140, x=80)
    objs = [red, blue]
    assert unambiguous(red, objs, dict(colour="red", shape="ellipse"), size)
    assert not unambiguous(red, objs, dict(shape="ellipse"), size)
    assert not unambiguous(blue, objs, dict(size="largest"), size)  # 1.4x: too close to call
    assert unambiguous(red, objs, dict(side="left"), size)
    assert not unambiguous(red, objs, dict(side="top"), size)  # same height
    assert unambiguous(red, [red, _obj(2, colour="blue", area=150, x=80)], dict(size="smallest"), size)
    assert not unambiguous(red, [red, _obj(2, colour=("red", "yellow"))], dict(colour="red"), size)
    assert not unambiguous(_obj(1, colour=("red", "yellow")), objs, dict(colour="red"), size)
    square = _obj(3, shape="rectangle", x=85)
    assert unambiguous(red, [red, blue, square], dict(shape="ellipse", side="left"), size)  # square is no ellipse
    assert not unambiguous(blue, [red, blue, square], dict(side="right"), size)  # square is further right
    mover = _obj(1, motion="up")
    assert unambiguous(mover, [mover, _obj(2, motion="left")], dict(motion="up"), size)
    assert not unambiguous(mover, [mover, _obj(2, motion=None)], dict(motion="up", colour="blue"), size)


def test_every_generated_expression_names_one_object():
    for seed in range(30, 36):
        (frames, masks), replay = _video(seed, n=4)
        for t in (0, 3):
            found = expressions(masks[t], replay, t, "train", ATTRIBUTES)
            owners = {}
            for label, texts in found.items():
                assert (masks[t] == label).any()
                for text in texts:
                    assert owners.setdefault(text, label) == label, (seed, t, text)


def test_heldout_phrasing_never_appears_in_training_phrasing():
    target = _obj(1, shape="ellipse", colour="red", motion="up")
    everything = []
    for shape in ("ellipse", "rectangle", "polygon"):
        target.shape = shape
        everything += descriptions(target, ATTRIBUTES)
    everything = [dict(t) for t in {tuple(sorted(d.items())) for d in everything}]
    train = {realise(d, "train") for d in everything}
    heldout = {realise(d, "heldout") for d in everything}
    assert len(train) == len(everything) and not train & heldout
    assert realise(dict(colour="red", shape="ellipse"), "train") == "the red ellipse"
    assert realise(dict(shape="polygon", size="smallest", side="left"), "train") == "the smallest polygon on the left"
    assert realise(dict(motion="up"), "train") == "the shape moving up"
    assert realise(dict(colour="red", shape="ellipse", side="left"), "heldout") == "the oval that is red to the left"


def test_vocabulary_covers_the_grammar(tmp_path):
    path = str(tmp_path / "vocab.txt")
    vocab = write_vocab(path)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(set(vocab)) == len(vocab)
    tok = load_tokenizer(path)
    target = _obj(1, motion="down")
    for shape, style in itertools.product(("ellipse", "rectangle", "polygon"), ("train", "heldout")):
        target.shape = shape
        for d in descriptions(target, ATTRIBUTES):
            text = realise(d, style)
            assert tok.tokenize(text) == text.split()  # whole words, no [UNK]


def test_unknown_attributes_are_refused():
    (_, masks), replay = _video(2)
    with pytest.raises(ValueError, match="unknown referring attributes"):
        expressions(masks[0], replay, 0, "train", ("smell",))


def test_described_gives_each_expression_its_kind():
    (_, masks), replay = _video(7, n=3)
    found = described(masks[2], replay, 2, "train", STATIC_ATTRIBUTES)
    assert found and without_kinds(found) == expressions(masks[2], replay, 2)
    assert {k: [t for t, _ in v] for k, v in found.items()} == without_kinds(found)
    words = {"colour": set(COLOURS), "shape": {"ellipse", "rectangle", "polygon"}, "size": {"largest", "smallest"},
             "position": {"left", "right", "top", "bottom"}}
    for pairs in found.values():
        for text, kind in pairs:
            assert kind.split("+") == [a for a in ("colour", "shape", "size", "position") if words[a] & set(text.split())]
    assert description_kind(dict(colour=None, shape="ellipse", motion=None, size="smallest")) == "shape+size"
    assert description_kind(dict(colour="red", shape=None, motion="up", side="left")) == "colour+position+motion"


def test_filter_matters_when_dropping_the_filter_changes_the_answer():
    size = (100, 100)
    small_ellipse, big_ellipse = _obj(1, area=100, x=20), _obj(2, area=400, x=50)
    tiny_polygon = _obj(3, shape="polygon", area=30, x=80)
    scene = [small_ellipse, big_ellipse, tiny_polygon]
    smallest_ellipse = dict(shape="ellipse", size="smallest")
    assert unambiguous(small_ellipse, scene, smallest_ellipse, size)
    assert filter_matters(small_ellipse, scene, smallest_ellipse, size)  # "the smallest shape" is the polygon
    assert not filter_matters(small_ellipse, scene[:2], smallest_ellipse, size)  # no polygon: same answer
    assert not filter_matters(small_ellipse, scene, dict(shape="ellipse"), size)  # nothing relational
    assert not filter_matters(small_ellipse, scene, dict(side="left"), size)  # no filter to drop
    assert filter_matters(small_ellipse, [small_ellipse, big_ellipse, _obj(3, colour="blue", area=30)],
                          dict(colour="red", size="smallest"), size)


def _unfiltered(text: str) -> str:
    """ "the smallest red ellipse" -> "the smallest shape": the expression without colour and shape words."""
    words = [w for w in text.split() if w not in {"ellipse", "rectangle", "polygon", "shape", *COLOURS}]
    words.insert(2 if words[1] in ("largest", "smallest") else 1, "shape")
    return " ".join(words)


def test_contrastive_expressions_are_described_ones_whose_filter_matters():
    assert _unfiltered("the smallest red ellipse") == "the smallest shape"
    assert _unfiltered("the red shape on the left") == "the shape on the left"
    seen = 0
    for seed in range(40):
        (_, masks), replay = _video(seed, n=3)
        for t in (0, 3):
            found = contrastive(masks[t], replay, t)
            plain = expressions(masks[t], replay, t)
            for label, texts in found.items():
                for text in texts:
                    seen += 1
                    assert text in plain[label]
                    assert _unfiltered(text) not in plain[label]  # without its filter it no longer names this object
    assert seen > 0
