"""``rvm-render submit``, ``status`` and ``cancel``: talk to a running daemon through its API client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rvm_render.api.client import TOKEN_ENV, URL_ENV, ApiError, RvmRenderClient
from rvm_render.cli.daemon import config_path_from
from rvm_render.cli.options import parse_formats, parse_frame_range
from rvm_render.cli.progress import format_duration
from rvm_render.daemon.config import TOKEN_FILE, load_config
from rvm_render.errors import ConfigError, JobError

__all__ = ["add_parsers", "client_from"]


def client_from(args: argparse.Namespace) -> RvmRenderClient:
    """A client with ``$RVM_RENDER_URL``/``$RVM_RENDER_TOKEN``, else the URL and token of the config."""
    url, token = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
    path = config_path_from(args)
    if (url is None or token is None) and path.is_file():
        config = load_config(path)
        url = url or f"http://{config.api.host}:{config.api.port}"
        token = token or config.api.token or _token_in(config.state_dir / TOKEN_FILE)
    return RvmRenderClient(url, token)


def _token_in(path: Path) -> str | None:
    """The token the daemon wrote to ``path`` (mode 0600: readable by the user it runs as); None if it wrote none."""
    try:
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None
    except OSError as err:
        raise ConfigError(f"cannot read the daemon's token '{path}': {err.strerror}; run as the daemon's user, or "
                          f"set ${TOKEN_ENV}") from None  # fmt: skip


def _line(job: dict[str, Any]) -> str:
    total = job.get("frames_total")
    progress = f"{job['frames_done']}/{total if total is not None else '?'}"
    if job["state"] == "running" and job.get("fps"):
        eta = format_duration(job["eta_s"]) if job.get("eta_s") is not None else "--:--"
        progress += f" {job['fps']:.1f} fps ETA {eta}"
    tail = f"  {job['error']}" if job.get("error") else ""
    return f"{job['id']:>5}  {job['state']:<9}  {progress:<28}  {job['input']}{tail}"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="PATH",
                        help=f"the daemon's config, for its URL and token (default: ${URL_ENV}/${TOKEN_ENV}, "
                             "$RVM_RENDER_CONFIG, ./config.yaml)")  # fmt: skip


def add_parsers(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser("submit", help="queue a clip, sequence or timeline on a running daemon",
                                 description="Queue PATH on the daemon (it must lie in its media_roots).")  # fmt: skip
    submit.add_argument("path", metavar="PATH", help="clip, image sequence (pattern or folder) or timeline")
    submit.add_argument("-o", "--output-dir", default=None, metavar="DIR", help="default: beside the input")
    submit.add_argument("--frames", type=parse_frame_range, default=None, metavar="FIRST-LAST",
                        help="only these frames of a clip, inclusive: 0-based for movies, the file numbers "
                             "for image sequences (default: all)")  # fmt: skip
    submit.add_argument("--priority", type=int, default=0, help="higher runs first (default: 0)")
    submit.add_argument("--formats", type=parse_formats, default=None, help="deliverables (default: the daemon's)")
    submit.add_argument("--wait", action="store_true", help="wait until the job is done and show its progress")
    _add_common(submit)
    submit.set_defaults(run=_submit)

    status = commands.add_parser("status", help="show the daemon's jobs, or one job")
    status.add_argument("job", nargs="?", type=int, metavar="JOB", help="a job id (default: every job)")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    _add_common(status)
    status.set_defaults(run=_status)

    cancel = commands.add_parser("cancel", help="cancel a queued or running job (a retry resumes it)")
    cancel.add_argument("job", type=int, metavar="JOB")
    _add_common(cancel)
    cancel.set_defaults(run=_cancel)


def _calling(action: Any) -> Any:
    try:
        return action()
    except ApiError as err:  # a refused request is the caller's to fix (exit 2); the rest is the job's or node's
        kind = ConfigError if err.status in (400, 401, 403, 413, 422) else JobError
        raise kind(str(err)) from None


def _submit(args: argparse.Namespace) -> int:
    client = client_from(args)
    preset = None if args.formats is None else {"formats": [fmt.value for fmt in args.formats]}
    path = str(Path(args.path).absolute())
    output_dir = None if args.output_dir is None else str(Path(args.output_dir).absolute())
    frames = None if args.frames is None else "{}-{}".format(*args.frames)
    job = _calling(lambda: client.submit(path, output_dir=output_dir, priority=args.priority, preset=preset,
                                         frames=frames))  # fmt: skip
    print(f"job {job['id']} {job['state']}: {job['input']}")
    if not args.wait:
        return 0
    job = _calling(lambda: client.wait(job["id"], on_update=None if args.quiet else lambda j: print(_line(j))))
    for output in job["outputs"]:
        print(output)
    return 0 if job["state"] == "done" else 1


def _status(args: argparse.Namespace) -> int:
    client = client_from(args)
    jobs = [_calling(lambda: client.job(args.job))] if args.job is not None else _calling(client.jobs)
    if args.json:
        print(json.dumps(jobs[0] if args.job is not None else jobs, indent=2))
        return 0
    for job in jobs:
        print(_line(job))
        if args.job is not None:
            for output in job["outputs"]:
                print(f"       {output}")
    if not jobs:
        print("no jobs", file=sys.stderr)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    job = _calling(lambda: client_from(args).cancel(args.job))
    print(f"job {job['id']} {job['state']}")
    return 0
