"""A client of the rvm-render daemon's HTTP API, on the Python standard library only.

Editor plug-ins (Resolve, Nuke) import or vendor this one file: it imports nothing outside the
standard library, so it loads in any host's Python without clashing with its libraries.

    client = RvmRenderClient("http://127.0.0.1:8765", token)
    job = client.submit(path="/show/plates/take.mov")
    job = client.wait(job["id"], on_update=print)

The URL and token default to ``$RVM_RENDER_URL`` and ``$RVM_RENDER_TOKEN``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Dict  # noqa: UP035

__all__ = ["RvmRenderClient", "ApiError", "progress_text", "DEFAULT_URL", "URL_ENV", "TOKEN_ENV", "FINAL_STATES"]

DEFAULT_URL = "http://127.0.0.1:8765"
URL_ENV = "RVM_RENDER_URL"
TOKEN_ENV = "RVM_RENDER_TOKEN"
FINAL_STATES = frozenset({"done", "failed", "cancelled"})

Job = Dict[str, Any]  # noqa: UP006 - evaluated at import: editors' Python may be 3.7 (Nuke 13)


class ApiError(Exception):
    """The daemon refused a request or cannot be reached; ``status`` 0 when it cannot be reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RvmRenderClient:
    """Calls of the daemon's API (jobs are plain dicts, as the API's JSON)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            request = urllib.request.Request(self.url + path, data=data, method=method)
        except ValueError:
            raise ApiError(0, f"'{self.url}' is not a URL of an rvm-render daemon; give one like {DEFAULT_URL} "
                              f"(${URL_ENV} or the config's api.host and api.port)") from None  # fmt: skip
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8")
            return json.loads(text) if text else None
        except ValueError:  # not UTF-8 or not JSON: a web server, but not the daemon's API
            raise ApiError(0, f"{self.url} answered {method} {path} with something that is not the rvm-render API's "
                              f"JSON; is this the daemon's address? (${URL_ENV}, or api.port in its config)") from None
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, _detail(err)) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ApiError(0, f"cannot reach the rvm-render daemon at {self.url} ({reason}); is it running? "
                              f"(rvm-render daemon; or set {URL_ENV})") from None  # fmt: skip

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def submit(
        self,
        path: str | None = None,
        *,
        otio: dict[str, Any] | None = None,
        kind: str | None = None,
        output_dir: str | None = None,
        priority: int = 0,
        preset: dict[str, Any] | None = None,
        frames: str | None = None,
    ) -> Job:
        """Queue a clip, sequence or timeline file (``path``) or an OTIO document (``otio``).

        ``frames`` (``"FIRST-LAST"``, inclusive) limits a clip job to a range: the file numbers of an
        image sequence, 0-based indexes of a movie.
        """
        body: dict[str, Any] = {"priority": priority}
        for key, value in (("path", path), ("otio", otio), ("kind", kind), ("output_dir", output_dir),
                           ("preset", preset), ("frames", frames)):  # fmt: skip
            if value is not None:
                body[key] = value
        return self._call("POST", "/jobs", body)

    def job(self, job_id: int) -> Job:
        return self._call("GET", f"/jobs/{int(job_id)}")

    def jobs(self, state: str | None = None) -> list[Job]:
        query = "" if state is None else "?" + urllib.parse.urlencode({"state": state})
        return self._call("GET", f"/jobs{query}")

    def cancel(self, job_id: int) -> Job:
        return self._call("DELETE", f"/jobs/{int(job_id)}")

    def retry(self, job_id: int) -> Job:
        return self._call("POST", f"/jobs/{int(job_id)}/retry")

    def wait(self, job_id: int, *, poll_s: float = 1.0, on_update: Callable[[Job], None] | None = None,
             timeout_s: float | None = None) -> Job:  # fmt: skip
        """Poll until the job is done, failed or cancelled; return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last = None
        while True:
            job = self.job(job_id)
            if on_update is not None and job != last:
                on_update(job)
            last = job
            if job["state"] in FINAL_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(0, f"job {job_id} still {job['state']} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def progress_text(job: Job) -> str:
    """One line for a job, as the plug-ins show it: ``job 12 running: 40/96 frames, 3.1 fps, 00:00:18 left``."""
    text = f"job {job['id']} {job['state']}"
    if job.get("frames_total"):
        text += f": {job['frames_done']}/{job['frames_total']} frames"
    if job["state"] == "running" and job.get("fps"):
        text += f", {job['fps']:.1f} fps"
        if job.get("eta_s") is not None:
            text += f", {time.strftime('%H:%M:%S', time.gmtime(job['eta_s']))} left"
    return text


def _detail(err: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(err.read().decode("utf-8")).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    if isinstance(detail, list):  # field errors of a request model
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return f"HTTP {err.code}: {detail or err.reason}"
