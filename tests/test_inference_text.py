"""Objects from sentences (afb_urr.inference.text, VideoSession.add_text) with a light LAVT whose
output is set by hand: a constant object (or background) logit everywhere."""
import numpy as np
import pytest
import torch

from afb_urr.data.synthetic import render_video
from afb_urr.inference import VideoSession, text_objects
from afb_urr.referring import WordPieceTokenizer
from referring_common import LIGHT_VOCAB, light_lavt

SIZE = (32, 48)


def constant_lavt(object_logit: float):
    """A light LAVT whose classifier outputs (0, object_logit) at every pixel, fed 48 x 64 inputs."""
    model = light_lavt()
    model.config["input_size"] = [48, 64]
    with torch.no_grad():
        model.classifier.conv1_1.weight.zero_()
        model.classifier.conv1_1.bias.copy_(torch.tensor([0.0, object_logit]))
    return model


@pytest.fixture(scope="module")
def video():
    return render_video(3, num_frames=4, size=SIZE, num_objects=1)


def test_add_text_numbers_objects_after_the_sessions_and_reports_misses(light_model, video):
    frames, masks = video
    tok = WordPieceTokenizer(LIGHT_VOCAB)
    with VideoSession(list(frames), light_model) as session:
        session.add_mask(0, masks[0])
        with pytest.warns(UserWarning, match="'a blue cube': outscored everywhere"):
            found = session.add_text(2, ["the red ball", "a blue cube"], constant_lavt(5.0), tok)
        # equal margins everywhere: the first expression takes every pixel, the second none
        assert found.ids == [2, None] and found.masks.missing == [1]
        assert (found.labels == 2).all() and found.masks.confidence[0] == pytest.approx(1 / (1 + np.exp(-5)))
        assert session.objects == [1, 2] and session.annotated_frames == [0, 2]
        out = dict(session.propagate("forward"))
        assert sorted(out) == [0, 1, 2, 3]
        assert (session.labels(2) == 2).all()  # given at frame 2: its pixels win there
        assert (session.labels(0) == masks[0]).all()


def test_text_that_finds_nothing_is_an_error_and_leaves_the_session(light_model, video):
    frames, masks = video
    tok = WordPieceTokenizer(LIGHT_VOCAB)
    with VideoSession(list(frames), light_model) as session:
        session.add_mask(0, masks[0])
        with pytest.raises(ValueError, match="'the ball': found nothing"), pytest.warns(UserWarning):
            session.add_text(1, ["the ball"], constant_lavt(-5.0), tok)
        assert session.objects == [1] and session.annotated_frames == [0]
        with pytest.raises(ValueError, match="out of range"):
            session.add_text(9, ["the ball"], constant_lavt(5.0), tok)


def test_text_objects_start_at_the_given_id_within_the_id_range(video):
    frames, _ = video
    tok = WordPieceTokenizer(LIGHT_VOCAB)
    found = text_objects(constant_lavt(5.0), tok, frames[0], "the ball", first_id=7)
    assert found.ids == [7] and found.labels.dtype == np.uint8 and (found.labels == 7).all()
    with pytest.raises(ValueError, match="largest object id 254"):
        text_objects(constant_lavt(5.0), tok, frames[0], ["the ball", "a cube"], first_id=254)
