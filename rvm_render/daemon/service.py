"""``rvm-render daemon``: hot folders, the job queue, the engine and the HTTP API, until stopped.

:meth:`Daemon.run` reads as the node's life: open the job store (jobs a crash left running are
queued again to resume), load the engine once, start the render loop, watch the folders (a
start-up scan takes what was dropped while the node was down; a folder another live daemon owns
is refused, see :mod:`~rvm_render.daemon.folder_claims`), serve the API, then wait for SIGTERM or
SIGINT, whose handlers only set a flag. Stopping stops taking jobs, interrupts the
running one (queued again, resumes at the next start) and leaves the store consistent.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import os
import secrets
import signal
import threading
import time
from collections import OrderedDict
from pathlib import Path

import uvicorn

from rvm_render import __version__
from rvm_render.api.schemas import HealthOut, JobIn
from rvm_render.api.server import create_app
from rvm_render.daemon.config import TOKEN_FILE, DaemonConfig, Preset, WatchFolder
from rvm_render.daemon.folder_claims import FolderClaims
from rvm_render.daemon.instance_lock import claim_state_dir, listening_socket
from rvm_render.daemon.intake import (
    TIMELINE_SUFFIXES,
    checked_timeline,
    preload_readers,
    probed,
    refuse_special_file,
    watch_entry_refusal,
)
from rvm_render.daemon.roots import MediaRoots
from rvm_render.daemon.runner import WATCH_SOURCE, JobRunner, submitted_timelines_dir, work_root_of
from rvm_render.daemon.watcher import HotFolders
from rvm_render.engine import EngineOptions, open_matter, open_planning_matter
from rvm_render.engine.weights import resolve_weights_path
from rvm_render.errors import (
    ConfigError,
    JobError,
    JobNotFoundError,
    MediaError,
    NodeStorageError,
    PathNotAllowedError,
    RvmRenderError,
)
from rvm_render.jobs.earlier_render import outputs_whole
from rvm_render.jobs.ray_executor import join_ray, leave_ray
from rvm_render.jobs.store import JobKind, JobRecord, JobState, JobStore, input_fingerprint, store_path
from rvm_render.media.probe import IMAGE_EXTENSIONS
from rvm_render.media.thumbnail import matte_thumbnail_png
from rvm_render.media.writers import is_colour

log = logging.getLogger(__name__)

__all__ = ["Daemon", "TOKEN_ENV", "TOKEN_FILE", "resolve_token"]

TOKEN_ENV = "RVM_RENDER_TOKEN"
LOG_FILE = "daemon.log"
#: A stop interrupts the running segment at its next frame batch, well within this.
STOP_TIMEOUT_S = 8.0
TICK_S = 0.2
THUMBNAILS_KEPT = 64
#: A job the node died under (crash or kill) is queued again at the next start this many times; the
#: next time it fails, as that start would most likely die on it too (an input that crashes a decoder).
MAX_CRASHES = 2


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {"time": record.created, "level": record.levelname, "logger": record.name,
                    "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def resolve_token(config: DaemonConfig) -> tuple[str, str]:
    """(the API token, where it comes from): ``api.token``, ``$RVM_RENDER_TOKEN``, else ``STATE_DIR/token``.

    The file is made at the first start (mode 0600). Raises ConfigError for a host beyond
    localhost without a configured token.
    """
    if config.api.token:
        return config.api.token, f"api.token in {config.path}"
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], f"${TOKEN_ENV}"
    if not config.api.loopback_only:
        raise ConfigError(f"api.host: {config.api.host} listens beyond localhost; set api.token or "
                          f"${TOKEN_ENV} first")  # fmt: skip
    path = config.state_dir / TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), str(path)


def _first_image(folder: Path) -> Path | None:
    """The first image of a folder of numbered images (probed, it names the whole sequence); None when it has none."""
    return min((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), default=None)


class Daemon:
    """The render node; also the :class:`~rvm_render.api.server.Controller` behind the API."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.roots = MediaRoots(config.media_roots)
        self.store: JobStore
        self.token = ""
        self._runner: JobRunner | None = None
        self._hot: dict[Path, HotFolders] = {}
        """The watched folders (those this daemon owns), by path."""
        self._claims = FolderClaims(config.state_dir, config.claim_timeout_seconds)
        self._stop = threading.Event()
        self._probe_failures: dict[Path, str] = {}
        """Entries that did not read, with their content then: they fail once they stop changing."""
        self._thumbnails: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._thumbnail_lock = threading.Lock()

    # --- life ----------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; return the exit code (0 after a clean stop)."""
        config = self.config
        state_lock = claim_state_dir(config.state_dir)  # before the log, the token and the store are touched
        try:
            sock = listening_socket(config.api.host, config.api.port)
        except ConfigError:
            state_lock.release()
            raise
        file_log = logging.handlers.RotatingFileHandler(config.state_dir / LOG_FILE, maxBytes=5 << 20, backupCount=3)
        file_log.setFormatter(_JsonLines())
        file_log.setLevel(logging.INFO)
        root = logging.getLogger()
        for handler in root.handlers:  # stderr keeps the verbosity asked for; the JSON log gets INFO
            handler.setLevel(max(handler.level, root.level))
        root.addHandler(file_log)
        root.setLevel(min(root.level, logging.INFO))
        self.token, token_source = resolve_token(config)
        self.store = JobStore(store_path(config.state_dir))
        requeued, failed = self.store.requeue_interrupted(MAX_CRASHES)
        for job_id in requeued:
            log.warning("job %d was interrupted (crash or kill); queued again, it resumes", job_id)
        for job_id in failed:
            log.error("job %d failed: %s", job_id, self.store.get(job_id).error)
        preload_readers()
        weights = resolve_weights_path(config.weights, given_as=f"weights in {config.path}")
        options = EngineOptions(device=config.device, downsample_ratio="auto")
        # over Ray the actors hold the model; this process only plans the jobs' segments
        matter = (open_planning_matter if config.executor == "ray" else open_matter)(weights, options)
        self._runner = JobRunner(self.store, matter, config, self.roots, weights)
        server = uvicorn.Server(uvicorn.Config(create_app(self), host=config.api.host, port=config.api.port,
                                               log_level="warning", lifespan="off", access_log=False))  # fmt: skip
        in_ray = config.executor == "ray" and join_ray(config.address, logging.INFO)  # before our signal handlers
        previous = {sig: signal.signal(sig, lambda *_: self._stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._runner.start()
            self._watch_unclaimed_folders()
            api = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rvm-api", daemon=True)
            api.start()
            while not server.started and api.is_alive():
                time.sleep(0.05)
            if not api.is_alive():
                raise ConfigError(f"api: cannot listen on {config.api.host}:{config.api.port} (in use?); "
                                  "change api.port")  # fmt: skip
            log.info("rvm-render daemon %s: http://%s:%d/ (token: %s), state in %s", __version__, config.api.host,
                     config.api.port, token_source, config.state_dir)  # fmt: skip
            while not self._stop.is_set():
                for hot in self._hot.values():
                    hot.tick()
                self._claims.renew()
                self._watch_unclaimed_folders()
                self._stop.wait(TICK_S)
            log.info("stopping: no new jobs; the running one is interrupted and resumes at the next start")
        finally:
            for hot in self._hot.values():
                hot.stop()
            self._claims.release()
            self._runner.stop(STOP_TIMEOUT_S)
            server.should_exit = True
            self.store.close()
            if in_ray:
                leave_ray()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logging.getLogger().removeHandler(file_log)
            file_log.close()
            sock.close()
            state_lock.release()
        return 0

    # --- hot folders ---------------------------------------------------------------------

    def _watch_unclaimed_folders(self) -> None:
        """Watch each watch folder this daemon can claim and does not watch yet (at start, and on a takeover)."""
        for folder in self.config.watch:
            if folder.path not in self._hot and self._claims.due(folder.path) and self._claims.claim(folder.path):
                self._hot[folder.path] = HotFolders([folder], self.config.settle_seconds, self._on_ready)
                self._hot[folder.path].start()

    def _on_ready(self, folder: WatchFolder, entry: Path) -> None:
        """A watch-folder entry is complete: queue it (once it also reads as media or a timeline)."""
        if not self._claims.owns(folder.path):
            return  # taken over by another daemon
        refusal = watch_entry_refusal(folder.kind, entry, self.roots)
        if refusal is not None:
            log.warning("%s in %s ignored: %s", ascii(entry.name), folder.path, refusal)
            return
        try:
            source = self._source_of(folder, entry)
        except (RvmRenderError, OSError) as err:
            try:
                content = input_fingerprint(entry)
            except JobError:
                content = "unreadable"
            if self._probe_failures.get(entry) != content and folder.path in self._hot:
                self._probe_failures[entry] = content  # maybe still arriving: fails only once it stops changing
                self._hot[folder.path].recheck(folder, entry)
                return
            source = entry  # it fails as a job, with its reason in the store and in .error.txt
            log.warning("'%s' does not read as %s (%s); queued to fail with that reason",
                        entry, folder.kind.value, err)  # fmt: skip
        self._probe_failures.pop(entry, None)
        if source is None:
            return
        try:
            record, created = self._queue(folder.kind, source, folder.output, folder.preset, folder.priority,
                                          f"{WATCH_SOURCE}{folder.path}", fingerprint_of=entry)  # fmt: skip
        except (RvmRenderError, OSError) as err:
            log.error("cannot queue '%s': %s", entry, err)
            return
        if created:
            log.info("job %d queued from %s", record.id, entry)

    def _source_of(self, folder: WatchFolder, entry: Path) -> Path | None:
        """What to render for a watch-folder entry: a clip, an image sequence's pattern, a timeline; None: not ours."""
        if folder.kind == JobKind.TIMELINE:
            return checked_timeline(entry, "timeline")
        if entry.is_dir():
            first = _first_image(entry)
            if first is None:
                log.info("folder '%s' holds no images; ignored", entry)
                return None
            return Path(probed(first, "image").path)  # the sequence's pattern
        probed(entry, "clip")
        return entry

    # --- the controller of the API -------------------------------------------------------

    def _default_output_dir(self, source: Path) -> Path:
        """Beside the input, or for an input in a watch folder, that folder's output (never into a watch folder)."""
        folder = self.config.watch_folder_holding(source)
        return folder.output.resolve() if folder is not None else source.parent

    def _queue(self, kind: JobKind, source: Path, output_dir: Path, preset: Preset, priority: int, origin: str,
               *, fingerprint_of: Path, frames: str = "") -> tuple[JobRecord, bool]:  # fmt: skip
        record, created = self.store.add(
            kind, str(source), input_fingerprint(fingerprint_of), preset.to_json(), str(output_dir),
            frames=frames, priority=priority, source=origin,
        )  # fmt: skip
        if not created and record.state == JobState.DONE and not outputs_whole(record.outputs):
            record = self.store.render_again(record.id)
            log.info("job %d: its outputs are gone; queued to render again", record.id)
        if record.state == JobState.QUEUED and self._runner is not None:
            self._runner.wake()
        return record, created

    def submit(self, job: JobIn) -> tuple[JobRecord, bool]:
        """Queue an API request (paths must lie in ``media_roots``)."""
        if job.otio is not None:
            output_dir = self.roots.check(job.output_dir or "", "output_dir")
            folder = submitted_timelines_dir(self.config.state_dir)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{secrets.token_hex(8)}.otio"
            try:
                path.write_text(json.dumps(job.otio, sort_keys=True), encoding="utf-8")
            except OSError as err:
                path.unlink(missing_ok=True)
                if err.errno != errno.ENOSPC:
                    raise
                raise NodeStorageError(f"the node's disk is full: cannot keep the posted timeline in '{folder}' "
                                       f"({err.strerror}); free space on that disk and try again") from err  # fmt: skip
            try:
                checked_timeline(path, "otio")
            except RvmRenderError:
                path.unlink()
                raise
            kind, source, fingerprint_of = JobKind.TIMELINE, path, path
        else:
            source = self.roots.check(job.path or "", "path")
            refuse_special_file(source, "path")
            kind = JobKind(job.kind) if job.kind else (
                JobKind.TIMELINE if source.suffix.lower() in TIMELINE_SUFFIXES else JobKind.CLIP)  # fmt: skip
            fingerprint_of = source
            if kind == JobKind.CLIP:
                named = _first_image(source) if source.is_dir() else source
                if named is None:
                    raise MediaError(f"folder '{source}' holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                                     "give a clip, a sequence pattern or a folder of numbered images")  # fmt: skip
                info = probed(named, "path")  # a clip, a pattern, or a sequence frame: what is rendered
                source = Path(info.path)
                fingerprint_of = source.parent if info.is_sequence else source
            elif not source.exists():
                raise MediaError(f"timeline '{source}' not found; check the path")
            else:
                checked_timeline(source, "path")
            output_dir = (self.roots.check(job.output_dir, "output_dir") if job.output_dir
                          else self._default_output_dir(source))  # fmt: skip
        self.config.check_output_dir(output_dir, "output_dir")
        overrides = job.preset.overrides() if job.preset is not None else {}
        if overrides.get("background") is not None and not is_colour(overrides["background"]):
            self.roots.check(overrides["background"], "preset.background")  # before anything looks at the file
        preset = Preset.from_json(overrides, "preset", base=self.config.default_preset)
        if output_dir.exists() and not output_dir.is_dir():
            raise MediaError(f"output_dir '{output_dir}' is a file; name a folder (it is made if missing)")
        output_dir.mkdir(parents=True, exist_ok=True)
        return self._queue(kind, source, output_dir, preset, job.priority, "api", fingerprint_of=fingerprint_of,
                           frames=job.frames or "")  # fmt: skip

    def cancel(self, job_id: int) -> JobRecord:
        record, before = self.store.cancel(job_id)
        if before == JobState.RUNNING and self._runner is not None:
            self._runner.cancel(job_id)
        log.info("job %d cancelled (was %s)", job_id, before.value)
        return record

    def retry(self, job_id: int) -> JobRecord:
        """Queue a failed or cancelled job again; a done one only when its outputs are gone."""
        record = self.store.get(job_id)
        if record.state == JobState.DONE and not outputs_whole(record.outputs):
            record = self.store.render_again(job_id)
        else:
            record = self.store.retry(job_id)
        if self._runner is not None:
            self._runner.wake()
        return record

    def health(self) -> HealthOut:
        runner = self._runner
        return HealthOut(
            version=__version__,
            device=str(runner.matter.device) if runner is not None else self.config.device,
            workers=self.config.workers or 1,
            queue_depth=self.store.queue_depth(),
            running_job=runner.running_job if runner is not None else None,
        )

    def thumbnail(self, job_id: int) -> bytes | None:
        """The latest matte of a job over a checkerboard: its output, else its newest finished segment."""
        matte = self._latest_matte(self.store.get(job_id))
        if matte is None:
            return None
        try:
            stat = matte.stat() if matte.exists() else matte.parent.stat()
        except OSError:
            return None
        key = (str(matte), stat.st_mtime_ns, stat.st_size)
        with self._thumbnail_lock:
            if key in self._thumbnails:
                self._thumbnails.move_to_end(key)
                return self._thumbnails[key]
        try:
            png = matte_thumbnail_png(matte)
        except ValueError:
            return None
        with self._thumbnail_lock:
            self._thumbnails[key] = png
            while len(self._thumbnails) > THUMBNAILS_KEPT:
                self._thumbnails.popitem(last=False)
        return png

    def output_file(self, job_id: int, index: int) -> Path:
        """Output ``index`` of a job, to serve: resolved now (an output replaced by a link is followed) and
        only a regular file inside media_roots.

        Raises:
            JobNotFoundError: no such job, output, or file; PathNotAllowedError: it resolves outside media_roots.
        """
        outputs = self.store.get(job_id).outputs
        if not 0 <= index < len(outputs):
            raise JobNotFoundError(f"job {job_id} has no output {index} (it has {len(outputs)}); list them with "
                                   f"GET /jobs/{job_id}")  # fmt: skip
        real = Path(os.path.realpath(outputs[index]))
        if not self.roots.contains(real):
            raise PathNotAllowedError(f"output {index} of job {job_id} now leads outside the media roots (a link?); "
                                      "it is not served: render the job again")  # fmt: skip
        if not real.is_file():
            raise JobNotFoundError(f"output {index} of job {job_id} is no longer a file ('{outputs[index]}')")
        return real

    def _latest_matte(self, job: JobRecord) -> Path | None:
        outputs = [p for p in job.outputs if self.roots.contains(p)]
        candidates = [Path(p) for p in outputs if p.endswith(("_matte.mov", "_alpha.mov"))]
        candidates += [Path(p) for p in outputs if "%" in Path(p).name]
        if candidates:
            return candidates[0]
        work = work_root_of(self.config.state_dir, job.id)
        parts = sorted(work.glob("*/segments/*/*_matte.mov"), key=lambda p: p.stat().st_mtime_ns)
        parts = parts or sorted(work.glob("*/segments/*/*_alpha.mov"), key=lambda p: p.stat().st_mtime_ns)
        return parts[-1] if parts else None

