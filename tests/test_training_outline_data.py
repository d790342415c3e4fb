"""Outline frames as network input: the published squashing and normalisation, seeded batches."""
import numpy as np
import torch

from afb_urr.data.outline import OUTLINE_KINDS, outline_frame, outline_split
from afb_urr.referring import preprocess
from afb_urr.training.outline_data import OutlineBatches, outline_sample


def test_a_sample_is_the_published_input_with_its_objects_kinds():
    video = outline_split("val", 2, 2, (60, 108), 2, 3)[1]
    frame, classes, labels = outline_frame(video, 1, (40, 72))
    assert frame.shape == (40, 72, 3) and classes.shape == labels.shape == (40, 72)
    sample = outline_sample(frame, classes, labels)
    assert torch.allclose(sample["image"], preprocess(video.frames[1], (40, 72))[0])
    for k in np.unique(labels)[1:]:  # every object's pixels carry its kind
        assert set(np.unique(classes[labels == k])) == {1 + OUTLINE_KINDS.index(video.objects[k - 1].kind)}
    assert not classes[labels == 0].any()
    flipped = outline_sample(frame, classes, labels, flip=True)
    for key in ("image", "label", "instance"):
        assert torch.equal(flipped[key], sample[key].flip(-1))


def test_batches_are_a_function_of_seed_epoch_and_index():
    data = OutlineBatches(outline_split("train", 5, 2, (60, 108), 1, 3), 3, (40, 72), seed=1, flip=0.5)
    assert len(data) == 3
    first = data[2]
    assert first["image"].shape == (3, 3, 40, 72) and first["label"].shape == first["instance"].shape == (3, 40, 72)
    again = OutlineBatches(outline_split("train", 5, 2, (60, 108), 1, 3), 3, (40, 72), seed=1, flip=0.5)[2]
    assert all(torch.equal(first[k], again[k]) for k in first)
    data.set_epoch(1)
    assert not torch.equal(data[2]["image"], first["image"])
    kept = len(data._frames)  # frames are squashed once and kept
    assert 3 < kept <= 6
    data[2]
    assert len(data._frames) == kept
