"""Moving frames and masks in and out: frame sources, label-map PNGs, overlay videos."""
from .errors import InputError
from .frames import (FolderSource, FrameSource, SequenceSource, VideoFileSource, natural_key,
                     open_frames, read_image)
from .masks import VOID, davis_palette, read_mask, void_to_background, write_mask
from .overlay import OverlayWriter, blend_labels
from .stream import StreamStep, bank_entries, segment_stream, with_last

__all__ = [
    "InputError", "FrameSource", "VideoFileSource", "FolderSource", "SequenceSource",
    "open_frames", "read_image", "natural_key", "davis_palette", "read_mask", "write_mask",
    "VOID", "void_to_background",
    "OverlayWriter", "blend_labels", "StreamStep", "segment_stream", "with_last", "bank_entries",
]
