"""Dense outline frames: the outline kind of each object's pixels."""
from types import SimpleNamespace

import numpy as np

from afb_urr.data.outline import OUTLINE_KINDS, outline_classes


def test_outline_classes_follow_each_objects_kind():
    labels = np.array([[0, 1, 2], [3, 3, 0]], np.uint8)
    objects = [SimpleNamespace(kind="polygon"), SimpleNamespace(kind="ellipse"), SimpleNamespace(kind="rectangle")]
    want = np.array([[0, 3, 1], [2, 2, 0]], np.uint8)
    assert OUTLINE_KINDS == ("ellipse", "rectangle", "polygon")
    assert np.array_equal(outline_classes(labels, objects), want)
