"""The app's error type: an HTTP status and a one-line message for the client."""
from __future__ import annotations


class AppError(Exception):
    """A request the app refuses; ``status`` is the HTTP code, ``message`` one line."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(" ".join(str(message).split()))
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self)


class NotFound(AppError):
    status = 404


class Conflict(AppError):
    status = 409


class TooLarge(AppError):
    status = 413


class Unsupported(AppError):
    status = 415


class Unauthorized(AppError):
    status = 401
