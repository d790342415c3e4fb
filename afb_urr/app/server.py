"""The FastAPI application: the page, the API, the token guard and one-line JSON errors."""
from __future__ import annotations

import hmac
import logging
import os
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..io import InputError
from .context import AppContext
from .errors import AppError
from .routes import make_router
from .settings import AppSettings

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
COOKIE = "afb_urr_token"
log = logging.getLogger("afb_urr.app")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class Guard:
    """ASGI middleware: with a token, every request must carry it (``Authorization: Bearer``,
    ``X-Token``, ``?token=`` or the cookie the page gets); without one, only loopback
    Host headers are served (a page on another site cannot reach the app by DNS rebinding)."""

    def __init__(self, app, settings: AppSettings):
        self.app = app
        self.settings = settings

    def _token(self, scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if "x-token" in headers:
            return headers["x-token"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0]
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    def _host_ok(self, scope) -> bool:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in self.settings.allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            token = self.settings.token
            if token is not None:
                given = self._token(scope)
                if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                    return await _error(401, "missing or wrong token: pass it as "
                                             "'Authorization: Bearer TOKEN' or ?token=TOKEN")(
                        scope, receive, send)
            elif not self._host_ok(scope):
                return await _error(403, "this app only answers requests addressed to "
                                         "localhost / 127.0.0.1")(scope, receive, send)
        return await self.app(scope, receive, send)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, e: AppError):
        return _error(e.status, e.message)

    @app.exception_handler(InputError)
    async def input_error(request: Request, e: InputError):
        return _error(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        detail = e.detail if isinstance(e.detail, str) else "request refused"
        if e.status_code == 404 and detail == "Not Found":
            detail = f"no such path: {request.url.path}"
        return _error(e.status_code, detail)

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception):
        log.exception("error in %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}): {e}")


def create_app(settings: AppSettings) -> FastAPI:
    """The app for ``settings``; ``app.state.ctx`` is its :class:`AppContext`."""
    ctx = AppContext(settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        ctx.close()

    app = FastAPI(title="afb-urr", version=__version__, lifespan=lifespan,
                  description="Annotate, propagate, review and correct video object masks.")
    app.state.ctx = ctx
    _handlers(app)
    app.include_router(make_router(ctx))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page(request: Request):
        response = FileResponse(os.path.join(STATIC, "index.html"),
                                headers={"Cache-Control": "no-cache"})
        if settings.token is not None:  # the token came in the query; later requests send it as a cookie
            response.set_cookie(COOKIE, settings.token, httponly=True, samesite="strict")
        return response

    app.add_middleware(Guard, settings=settings)
    return app
