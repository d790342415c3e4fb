"""Everything that runs a model over videos.

build      ``build_segmenter`` (weights + config + device -> Segmenter), ``resolve_device``
segmenter  ``Segmenter``: one video's state (bank, object ids, frame index) and ``step``
stream     driving a Segmenter over a frame source with progress; writing its results
protocols  DAVIS-2017 / YouTube-VOS / long-video runners over dataset folders
demo       the synthetic demo video and its mean J
resources  memory probes (resident set, CUDA peak)
session    ``VideoSession``: annotations at any frame, forward/backward, corrections, results
plan       which annotation governs each frame (the runs a session makes)
results    ``ResultStore``: label maps within a byte budget, spilling to a work folder
uncertainty  per-frame score, per-object confidence and area, suggestions
"""
from .build import build_segmenter, resolve_device, segmenter_factory
from .segmenter import Segmenter, StepResult
from .session import FrameResult, VideoSession
from .stream import StreamStep, bank_entries, segment_stream, with_last, write_outputs

__all__ = ["Segmenter", "StepResult", "build_segmenter", "segmenter_factory", "resolve_device",
           "StreamStep", "segment_stream", "with_last", "bank_entries", "write_outputs",
           "VideoSession", "FrameResult"]
