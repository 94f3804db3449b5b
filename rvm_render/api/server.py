"""The render node's HTTP API (FastAPI) and its status page.

Every route but ``GET /health`` and the page's assets needs the token, as
``Authorization: Bearer TOKEN`` or the cookie ``POST /login`` sets. Errors are JSON
``{"detail": ...}`` with the status of :data:`ERROR_STATUS` for the error's type (a request
field out of range is a 422 naming it); bodies over :data:`MAX_BODY_BYTES` get 413, whether
they announce their length or come in chunks. The daemon behind the routes is a :class:`Controller`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rvm_render import __version__
from rvm_render.api.schemas import MAX_JOB_ID, ErrorOut, HealthOut, JobIn, JobOut, LoginIn
from rvm_render.errors import (
    ConfigError,
    JobError,
    JobNotFoundError,
    MediaError,
    NodeStorageError,
    PathNotAllowedError,
    RvmRenderError,
    TimelineError,
)
from rvm_render.jobs.store import FINAL_STATES, JobRecord, JobState, JobStore

__all__ = ["Controller", "create_app", "ERROR_STATUS", "MAX_BODY_BYTES", "TOKEN_COOKIE"]

#: HTTP status per error type (most specific first).
ERROR_STATUS: dict[type[RvmRenderError], int] = {
    NodeStorageError: 507,  # Insufficient Storage: the node's disk, not the request; try again later
    JobNotFoundError: 404,
    PathNotAllowedError: 403,
    ConfigError: 400,
    MediaError: 400,
    TimelineError: 400,
    JobError: 409,
    RvmRenderError: 400,
}
#: Largest request body (an OTIO document of a long edit fits).
MAX_BODY_BYTES = 16 << 20
TOKEN_COOKIE = "rvm_render_token"
EVENT_POLL_S = 0.5
JobId = Annotated[int, PathParameter(ge=1, le=MAX_JOB_ID, description="a job's id")]


class Controller(Protocol):
    """What the routes need from the daemon."""

    store: JobStore
    token: str

    def submit(self, job: JobIn) -> tuple[JobRecord, bool]: ...

    def cancel(self, job_id: int) -> JobRecord: ...

    def retry(self, job_id: int) -> JobRecord: ...

    def health(self) -> HealthOut: ...

    def thumbnail(self, job_id: int) -> bytes | None: ...

    def output_file(self, job_id: int, index: int) -> Path: ...


class _BodyLimit:
    """413 for bodies over the limit, whether or not they announce their length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        received = 0
        answered = False

        async def counted() -> Message:
            """The body as it arrives; past the limit the 413 is sent and the app sees the client gone."""
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    answered = True
                    await _too_large(send, self.limit)
                    return {"type": "http.disconnect"}
            return message

        async def unless_answered(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, counted, unless_answered)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit >> 20} MiB; send a path instead"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _status_of(err: RvmRenderError) -> int:
    return next(status for kind, status in ERROR_STATUS.items() if isinstance(err, kind))


def create_app(controller: Controller) -> FastAPI:
    """The API and status page over ``controller``."""
    app = FastAPI(title="rvm-render", version=__version__, description="Robust Video Matting render node")

    @app.exception_handler(RvmRenderError)
    async def _error(request: Request, err: RvmRenderError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=_status_of(err))

    def authorized(request: Request) -> None:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE, "")
        if not given or not hmac.compare_digest(given.encode(), controller.token.encode()):
            raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' (the daemon's "
                                     "api.token, $RVM_RENDER_TOKEN or STATE_DIR/token)",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    auth = [Depends(authorized)]
    statuses = (400, 401, 403, 404, 409, 413, 507)
    errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in statuses}

    @app.get("/health", response_model=HealthOut)
    def health() -> HealthOut:
        return controller.health()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("rvm_render.api").joinpath("static", "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    @app.post("/login", status_code=204, responses=errors)
    def login(body: LoginIn, response: Response) -> Response:
        if not hmac.compare_digest(body.token.encode(), controller.token.encode()):
            raise HTTPException(401, "wrong token")
        response.status_code = 204
        response.set_cookie(TOKEN_COOKIE, body.token, httponly=True, samesite="strict")
        return response

    @app.post("/jobs", response_model=JobOut, status_code=201, dependencies=auth, responses=errors)
    def submit(body: JobIn, response: Response) -> JobOut:
        record, created = controller.submit(body)
        if not created:
            response.status_code = 200
        return JobOut.of(record)

    @app.get("/jobs", response_model=list[JobOut], dependencies=auth, responses=errors)
    def jobs(state: JobState | None = None) -> list[JobOut]:
        return [JobOut.of(record) for record in controller.store.jobs(state)]

    @app.get("/jobs/{job_id}", response_model=JobOut, dependencies=auth, responses=errors)
    def job(job_id: JobId) -> JobOut:
        return JobOut.of(controller.store.get(job_id))

    @app.delete("/jobs/{job_id}", response_model=JobOut, dependencies=auth, responses=errors)
    def cancel(job_id: JobId) -> JobOut:
        return JobOut.of(controller.cancel(job_id))

    @app.post("/jobs/{job_id}/retry", response_model=JobOut, dependencies=auth, responses=errors)
    def retry(job_id: JobId) -> JobOut:
        return JobOut.of(controller.retry(job_id))

    @app.get("/jobs/{job_id}/events", dependencies=auth, responses=errors,
             response_class=StreamingResponse)  # fmt: skip
    async def events(job_id: JobId) -> StreamingResponse:
        controller.store.get(job_id)  # 404 before the stream starts

        async def stream() -> AsyncIterator[bytes]:
            last = None
            while True:
                record = await asyncio.to_thread(controller.store.get, job_id)
                document = JobOut.of(record).model_dump_json()
                if document != last:
                    last = document
                    yield f"event: job\ndata: {document}\n\n".encode()
                if record.state in FINAL_STATES:
                    return
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/jobs/{job_id}/thumbnail.png", dependencies=auth, responses=errors, response_class=Response)
    def thumbnail(job_id: JobId) -> Response:
        png = controller.thumbnail(job_id)
        if png is None:
            raise HTTPException(404, f"job {job_id} has no matte to show yet")
        # the page asks with its job's progress in the query: a new URL whenever the matte can have changed
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})

    @app.get("/jobs/{job_id}/outputs/{index}", dependencies=auth, responses=errors, response_class=FileResponse)
    def output(job_id: JobId, index: int) -> FileResponse:
        path = controller.output_file(job_id, index)
        return FileResponse(path, filename=path.name)

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    return app
