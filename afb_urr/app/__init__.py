"""Local web app: annotate a video in the browser, propagate, review and correct, export.

``create_app(AppSettings(work=...))`` builds the FastAPI application;
``python tools/app.py`` (:func:`afb_urr.cli.app.main`) serves it with uvicorn.
"""
from .settings import AppSettings


def create_app(settings: AppSettings):
    """The FastAPI application for ``settings`` (imports FastAPI only when called)."""
    from .server import create_app as _create
    return _create(settings)


__all__ = ["AppSettings", "create_app"]
