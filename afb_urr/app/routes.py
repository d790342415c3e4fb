"""The JSON API (all under ``/api``); the page uses it, and so can scripts (``/docs``)."""
from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Literal, Optional

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from .. import __version__
from ..io import write_mask
from . import exporting
from .context import AppContext
from .errors import AppError
from .uploads import check_upload_name, decode_mask, receive_file

MASK_BODY = {"requestBody": {"required": True, "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
VIDEO_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
MAX_MASK_BYTES = 64 * 2**20


class OpenVideo(BaseModel):
    name: str = Field(description="a name listed by GET /api/videos under 'available'")


class NewSession(BaseModel):
    video: str = Field(description="video id (from POST /api/videos or /api/videos/open)")
    name: Optional[str] = Field(None, max_length=100)


class ObjectIn(BaseModel):
    name: Optional[str] = Field(None, max_length=100)
    color: Optional[str] = Field(None, description="#rrggbb")


class TextIn(BaseModel):
    frame: int = Field(description="the frame the sentence describes (0-based)")
    text: str = Field(max_length=500, description="an English expression, e.g. 'the dog on the left'")
    name: Optional[str] = Field(None, max_length=100, description="default: the text")
    color: Optional[str] = Field(None, description="#rrggbb")


class PropagateIn(BaseModel):
    direction: Literal["forward", "backward", "both"] = "both"
    start: Optional[int] = Field(None, description="first frame (default 0)")
    end: Optional[int] = Field(None, description="last frame (default: the last)")


def make_router(ctx: AppContext) -> APIRouter:
    """All routes under /api, in groups: videos, sessions and objects, masks, jobs, exports."""
    r = APIRouter(prefix="/api")
    for add in (_video_routes, _session_routes, _mask_routes, _job_routes, _export_routes):
        add(r, ctx)
    return r


def _video_routes(r: APIRouter, ctx: AppContext) -> None:
    @r.get("/info", summary="Versions, model and limits")
    def info():
        s = ctx.settings
        return {"version": __version__, "demo": s.demo, "weights": s.weights_path.rsplit("/", 1)[-1],
                "device": str(ctx.engine.device()), "max_upload_bytes": s.max_upload_bytes,
                "text": s.referring_path is not None,
                "token_required": s.token is not None}

    @r.get("/videos", summary="Videos to open by name, and videos already decoded")
    def videos():
        return {"available": ctx.library.available(), "imported": ctx.library.imported()}

    @r.post("/videos", status_code=201, openapi_extra=VIDEO_BODY,
            summary="Upload a video file or a zip of frames (raw body); decoded once")
    async def upload_video(request: Request, filename: str = Query(..., max_length=255)):
        ext = check_upload_name(filename)
        path = await receive_file(request, ctx.library.uploads, ext, ctx.settings.max_upload_bytes)
        return (await run_in_threadpool(ctx.library.open_upload, path, filename)).public()

    @r.post("/videos/open", summary="Decode (once) a video listed under 'available'")
    def open_video(body: OpenVideo):
        return ctx.library.open_named(body.name).public()

    @r.get("/videos/{vid}", summary="A decoded video's size, frame count and fps")
    def video(vid: str):
        return ctx.library.info(vid).public()

    @r.get("/videos/{vid}/frames/{t}", summary="Frame t as JPEG or PNG",
           response_class=FileResponse)
    def frame(vid: str, t: int):
        path = ctx.library.frame_path(vid, t)
        media = "image/png" if path.endswith(".png") else "image/jpeg"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=86400"})


def _session_routes(r: APIRouter, ctx: AppContext) -> None:
    @r.get("/sessions", summary="Saved sessions, newest first")
    def sessions():
        return ctx.store.list()

    @r.post("/sessions", status_code=201, summary="Start a session on a decoded video")
    def new_session(body: NewSession):
        return ctx.state(ctx.create_session(body.video, body.name))

    @r.get("/sessions/{sid}", summary="A session: objects, annotated/done/stale frames, scores, job")
    def session(sid: str):
        return ctx.state(ctx.session(sid))

    @r.delete("/sessions/{sid}", status_code=204)
    def delete_session(sid: str):
        ctx.delete_session(sid)
        return Response(status_code=204)

    @r.post("/sessions/{sid}/objects", status_code=201, summary="Add an object")
    def add_object(sid: str, body: ObjectIn):
        return ctx.session(sid).add_object(body.name, body.color)

    @r.patch("/sessions/{sid}/objects/{obj}", summary="Rename or recolour an object")
    def edit_object(sid: str, obj: int, body: ObjectIn):
        return ctx.session(sid).edit_object(obj, body.name, body.color)

    @r.delete("/sessions/{sid}/objects/{obj}", status_code=204,
              summary="Delete an object from every frame")
    def delete_object(sid: str, obj: int):
        ctx.delete_object(ctx.session(sid), obj)
        return Response(status_code=204)


def _mask_routes(r: APIRouter, ctx: AppContext) -> None:
    @r.get("/sessions/{sid}/masks/{t}", summary="Frame t's label map (PNG, or raw H*W bytes)",
           response_class=Response)
    def get_mask(sid: str, t: int, format: Literal["png", "raw"] = "png"):
        s = ctx.session(sid)
        ctx.check_frame(s, t)
        info = ctx.library.info(s.video)
        labels = s.labels(t)
        source = "none" if labels is None else ("annotation" if t in s.anchors() else "result")
        headers = {"X-Mask-Source": source, "X-Height": str(info.height), "X-Width": str(info.width),
                   "Cache-Control": "no-store"}
        if labels is None:
            labels = np.zeros((info.height, info.width), np.uint8)
        if format == "raw":
            return Response(labels.tobytes(), media_type="application/octet-stream", headers=headers)
        return Response(_png(labels), media_type="image/png", headers=headers)

    @r.put("/sessions/{sid}/masks/{t}", openapi_extra=MASK_BODY,
           summary="Annotate frame t with a whole label map (PNG or raw H*W bytes)")
    async def put_mask(sid: str, t: int, request: Request):
        s = ctx.session(sid)
        ctx.check_frame(s, t)
        body = await _body(request, MAX_MASK_BYTES)
        info = ctx.library.info(s.video)
        labels = decode_mask(body, request.headers.get("content-type", ""), (info.height, info.width),
                             ctx.library.uploads)
        await run_in_threadpool(ctx.put_mask, s, t, labels)
        return ctx.state(s)

    @r.post("/sessions/{sid}/text", status_code=201,
            summary="A new object from a sentence on a frame (referring model), annotated there")
    def text_object(sid: str, body: TextIn):
        return ctx.text_object(ctx.session(sid), body.frame, body.text, body.name, body.color)

    @r.delete("/sessions/{sid}/masks/{t}", summary="Forget frame t's annotation")
    def drop_mask(sid: str, t: int):
        s = ctx.session(sid)
        ctx.drop_mask(s, t)
        return ctx.state(s)


def _job_routes(r: APIRouter, ctx: AppContext) -> None:
    @r.post("/sessions/{sid}/propagate", status_code=202,
            summary="Start propagating (one job per session); progress on /events")
    def propagate(sid: str, body: PropagateIn):
        return ctx.start_propagation(ctx.session(sid), body.direction, body.start, body.end).public()

    @r.post("/sessions/{sid}/cancel", summary="Cancel the running job (finished frames are kept)")
    def cancel(sid: str):
        ctx.session(sid)
        job = ctx.jobs.cancel(sid)
        return job.public() if job else None

    @r.get("/sessions/{sid}/job", summary="The session's current or last job")
    def job(sid: str):
        ctx.session(sid)
        job = ctx.jobs.current(sid)
        return job.public() if job else None

    @r.get("/sessions/{sid}/events", summary="Server-sent events: job, frame and mask events",
           response_class=StreamingResponse)
    async def events(sid: str, request: Request, since: Optional[int] = None,
                     follow: Literal["all", "job"] = "all"):
        ctx.session(sid)
        log = ctx.jobs.events(sid)
        last = request.headers.get("last-event-id")
        seq = int(last) if last and last.isdigit() else (since if since is not None else log.last)
        if seq > log.last:  # numbered by an earlier run of the server: replay what this one has
            seq = 0
        return StreamingResponse(_stream(ctx, sid, request, seq, follow == "job"),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _export_routes(r: APIRouter, ctx: AppContext) -> None:
    @r.get("/sessions/{sid}/suggest", summary="Frames most worth annotating next (uncertainty)")
    def suggest(sid: str, k: int = Query(5, ge=1, le=1000)):
        return ctx.suggest(ctx.session(sid), k)

    @r.get("/sessions/{sid}/export/{kind}", response_class=FileResponse,
           summary="Download masks.zip (palette PNGs), coco.json or overlay.mp4")
    def export(sid: str, kind: Literal["palette", "coco", "mp4"]):
        s = ctx.session(sid)
        if ctx.jobs.busy(sid):
            raise AppError("a propagation is running; export when it has finished", 409)
        path, missing = exporting.export(kind, s, ctx.library, ctx.settings.work)
        filename, media = exporting.KINDS[kind]
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in s.state["name"])[:60] or s.id
        return FileResponse(path, media_type=media, filename=f"{stem}-{filename}",
                            headers={"X-Incomplete": str(len(missing))})


def _png(labels) -> bytes:
    """A label map as DAVIS palette PNG bytes."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        write_mask(f.name, labels)
        with open(f.name, "rb") as g:
            return g.read()


async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise AppError(f"the request body exceeds {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _stream(ctx: AppContext, sid: str, request: Request, seq: int, until_idle: bool):
    """SSE lines for the session's events after ``seq``; a comment line keeps the link alive."""
    yield "retry: 2000\n\n"
    quiet = 0.0
    while not ctx.closing:
        idle = until_idle and not ctx.jobs.busy(sid)  # read before the events: none is missed
        items = ctx.jobs.events(sid).since(seq)
        for n, event in items:
            seq = n
            yield f"id: {n}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"
        if idle and not items:
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.1)
        quiet = 0.0 if items else quiet + 0.1
        if quiet >= 15:
            quiet = 0.0
            yield ": keep-alive\n\n"
