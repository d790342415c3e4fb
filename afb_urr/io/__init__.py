"""Moving frames and masks in and out: frame sources, label-map PNGs, dataset layouts,
overlay videos."""
from .datasets import davis_list, read_list, read_meta, require_dir, require_file
from .errors import InputError, MaskFormatError, MissingInputError
from .frames import (IMAGE_EXTENSIONS, FolderSource, FrameSource, SequenceSource, VideoFileSource, natural_key,
                     open_frames, read_image)
from .masks import VOID, davis_palette, read_mask, void_to_background, write_mask
from .pngio import read_index_png
from .overlay import OverlayWriter, blend_labels

__all__ = [
    "InputError", "MissingInputError", "MaskFormatError", "FrameSource", "IMAGE_EXTENSIONS", "VideoFileSource", "FolderSource", "SequenceSource",
    "open_frames", "read_image", "natural_key", "davis_palette", "read_mask", "write_mask",
    "VOID", "void_to_background", "read_index_png",
    "require_dir", "require_file", "read_list", "davis_list", "read_meta",
    "OverlayWriter", "blend_labels",
]
