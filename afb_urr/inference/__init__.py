"""Running a model over videos: sessions (annotations at any frame, both directions, corrections)."""
from .session import FrameResult, VideoSession

__all__ = ["VideoSession", "FrameResult"]
