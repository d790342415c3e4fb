"""Pre/post-processing and mask_from_text with a random light LAVT."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from afb_urr.referring import VocabularyError, mask_from_text, preprocess
from afb_urr.referring.prompt import IMAGENET_MEAN, IMAGENET_STD, labels_from_logits
from afb_urr.referring.tokenizer import WordPieceTokenizer
from referring_common import LIGHT_VOCAB, light_lavt, single_thread, tokens  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    return light_lavt(11)


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(LIGHT_VOCAB)


def _frame(h=50, w=70, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_preprocess_squash_bilinear_and_imagenet_normalisation():
    frame = _frame()
    x = preprocess(frame, size=48)
    assert x.shape == (1, 3, 48, 48) and x.dtype == torch.float32
    pil = np.asarray(Image.fromarray(frame).resize((48, 48), Image.BILINEAR), dtype=np.float32) / 255
    for c in range(3):
        np.testing.assert_allclose(x[0, c].numpy(), (pil[..., c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c], atol=1e-6)
    flat = preprocess(np.full((9, 13, 3), 255, np.uint8), size=8)
    np.testing.assert_allclose(flat[0, :, 0, 0].numpy(), [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        preprocess(np.zeros((4, 4), np.uint8))


def test_labels_more_confident_expression_wins():
    logits = torch.zeros(2, 2, 1, 4)
    logits[0, 1] = torch.tensor([2.0, 3.0, -1.0, 0.0])   # margins expression 0: 2, 3, -1, 0
    logits[1, 1] = torch.tensor([1.0, 5.0, 4.0, -2.0])   # margins expression 1: 1, 5, 4, -2
    labels, _ = labels_from_logits(logits)
    assert labels[0].tolist() == [1, 2, 2, 0]  # tie logit1 == logit0 is background


def test_single_expression_matches_argmax_then_nearest(model, tok):
    frame = _frame(45, 61, seed=1)
    out = mask_from_text(model, tok, frame, ["the red ball"], size=64)
    ids, mask = tokens("the red ball")
    with torch.no_grad():
        logits = model(preprocess(frame, 64), ids, mask)
    small = logits[0].argmax(0).float()
    expected = F.interpolate(small[None, None], size=(45, 61), mode="nearest")[0, 0].to(torch.uint8).numpy()
    assert out.labels.dtype == np.uint8 and out.labels.shape == (45, 61)
    np.testing.assert_array_equal(out.labels, expected)


def test_conflicts_and_missing_expressions_are_reported(tok):
    frame = _frame(seed=2)
    model = light_lavt(12)
    with torch.no_grad():
        model.classifier.conv1_1.weight.zero_()
        model.classifier.conv1_1.bias.copy_(torch.tensor([0.0, 1.0]))  # everything claimed, equally
    with pytest.warns(UserWarning, match="outscored everywhere"):
        out = mask_from_text(model, tok, frame, ["the red ball", "a blue cube"], size=64)
    assert (out.labels == 1).all() and out.missing == [1] and out.reasons == {1: "outscored everywhere"}
    assert out.confidence[0] == pytest.approx(1 / (1 + np.exp(-1)), rel=1e-5) and out.confidence[1] == 0.0
    with torch.no_grad():
        model.classifier.conv1_1.bias.copy_(torch.tensor([1.0, 0.0]))  # nothing claimed
    with pytest.warns(UserWarning, match="found nothing"):
        out = mask_from_text(model, tok, frame, ["the red ball", "a blue cube"], size=64)
    assert (out.labels == 0).all() and out.missing == [0, 1]


def test_random_model_gives_labels_in_range(model, tok):
    frame = _frame(seed=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = mask_from_text(model, tok, frame, ["the red ball", "the small blue cube on the left", "a big cube"],
                             size=64, batch_size=2)
    assert len(caught) == (1 if out.missing else 0)
    assert out.labels.shape == frame.shape[:2] and set(np.unique(out.labels)) <= {0, 1, 2, 3}
    assert len(out.confidence) == 3
    assert sorted(set(range(3)) - set(out.missing)) == sorted(int(v) - 1 for v in np.unique(out.labels) if v)


def test_bad_input(model, tok):
    with pytest.raises(VocabularyError, match="expects"):
        mask_from_text(model, WordPieceTokenizer(LIGHT_VOCAB + ["extra"]), _frame(), ["the ball"], size=64)
    with pytest.raises(ValueError, match="empty referring expression"):
        mask_from_text(model, tok, _frame(), ["the ball", " "], size=64)
    with pytest.raises(ValueError, match="1..255 expressions"):
        mask_from_text(model, tok, _frame(), [], size=64)
