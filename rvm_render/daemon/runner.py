"""The daemon's render loop: one job at a time on the loaded engine, in priority then arrival order.

A job runs through the same machinery as the commands: a clip as ``rvm-render matte`` renders it
(:func:`~rvm_render.jobs.batch.render_batch`), always in checkpointed segments whose work dirs are
under ``<state_dir>/work/job-<id>/``, so a job stopped by a crash, ``kill -9`` or a stop resumes
from its last finished segment; a timeline as ``rvm-render timeline`` conforms it. The engine
stays loaded between jobs. A cancel or a stop interrupts the running job at its next frame
batch: its unfinished outputs are removed on the way out and its work dir is kept. A failure is
one line in the store and in ``<stem>.error.txt`` beside the outputs; the loop goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from pathlib import Path

from rvm_render.daemon.config import DaemonConfig, Preset
from rvm_render.daemon.guards import disk_shortfall, estimated_output_bytes, memory_available_gib
from rvm_render.daemon.outputs import choose_outputs
from rvm_render.daemon.roots import MediaRoots
from rvm_render.engine import Matter, preferred_batch_frames
from rvm_render.errors import CheckpointMismatchError, JobError, RvmRenderError, TimelineError
from rvm_render.jobs.batch import BatchInput, BatchPolicy, render_batch
from rvm_render.jobs.store import JobKind, JobRecord, JobState, JobStore, input_fingerprint
from rvm_render.media.commit import write_bytes_atomically
from rvm_render.media.frame_pattern import frame_field
from rvm_render.media.probe import probe
from rvm_render.media.untrusted import parse_untrusted
from rvm_render.media.writers import parse_background
from rvm_render.otio import ConformOptions, ConformPlan, conform_timeline
from rvm_render.otio.reading import check_timeline
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings, output_stem
from rvm_render.pipeline.progress import ProgressEvent
from rvm_render.pipeline.render import frame_range

log = logging.getLogger(__name__)

__all__ = ["JobRunner", "JobStopped", "ERROR_SUFFIX", "WATCH_SOURCE", "work_root_of"]

ERROR_SUFFIX = ".error.txt"
#: How the ``source`` of a job queued from a watch folder starts (``watch:<folder>``).
WATCH_SOURCE = "watch:"
#: Seconds between progress writes to the store.
PROGRESS_INTERVAL_S = 0.25
#: How long the loop waits for work before looking again.
IDLE_WAIT_S = 0.5


class JobStopped(KeyboardInterrupt):
    """Raised inside a render to stop it (cancel, or the daemon stopping); a KeyboardInterrupt, so
    every layer cleans up as on Ctrl-C."""


def submitted_timelines_dir(state_dir: Path) -> Path:
    """Where OTIO documents posted to the API are kept: the daemon's own files, read outside media_roots."""
    return state_dir / "timelines"


def work_root_of(state_dir: Path, job_id: int) -> Path:
    """``<state_dir>/work/job-<id>``: the work dirs of a job's clips."""
    return state_dir / "work" / f"job-{job_id}"


class _Progress:
    """Turns the render's progress events into the job's (a timeline's ranges add up) and stops it on demand."""

    def __init__(self, runner: JobRunner, job_id: int, frames_total: int | None) -> None:
        self.runner = runner
        self.job_id = job_id
        self.frames_total = frames_total
        self.done_before = 0
        self.current: tuple[Path, int] | None = None
        self.last_frames = 0
        self.written_at = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if self.runner.stop_requested(self.job_id):
            raise JobStopped
        key = (event.input_path, event.frames_total)
        if self.current is not None and (key != self.current or event.frames_done < self.last_frames):
            self.done_before += self.current[1]  # the previous clip or range finished
        self.current, self.last_frames = key, event.frames_done
        now = time.perf_counter()
        if now - self.written_at < PROGRESS_INTERVAL_S and event.frames_done < event.frames_total:
            return
        self.written_at = now
        done = self.done_before + event.frames_done
        total = max(self.frames_total or event.frames_total, done)
        fps = event.fps or None  # this clip's speed in this run (resumed frames do not count)
        eta = (total - done) / fps if fps else None
        self.runner.store.progress(self.job_id, done, total, fps, eta)


def _input_stem(input_path: str) -> str:
    """The name a job's outputs start with: a file's stem, a sequence pattern's text before its frame field."""
    name = Path(input_path).name
    field = frame_field(name)
    if field is not None:
        return field.prefix(name).rstrip("._-") or "sequence"
    return Path(name).stem


def _error_path(job: JobRecord) -> Path:
    """``<output_dir>/<input stem>.error.txt``: a failed job's reason, beside its outputs."""
    return Path(job.output_dir) / f"{_input_stem(job.input)}{ERROR_SUFFIX}"


def _changed_since_queued(job: JobRecord) -> bool:
    """Whether the file (or an image sequence's folder) a job was queued for has changed since: size, mtime or head."""
    source = Path(job.input)
    if source.is_file():
        fingerprinted = source
    elif frame_field(source.name) is not None:
        fingerprinted = source.parent  # a folder of numbered images
    else:
        return False  # gone: nothing to wait for
    try:
        return input_fingerprint(fingerprinted) != job.fingerprint
    except JobError:
        return False


def _frames_to_matte(job: JobRecord, plan: ConformPlan) -> int:
    """A timeline job's frame count, before anything renders.

    Raises:
        TimelineError: the edit leaves nothing to matte (every video clip skipped, or none at all).
    """
    if not plan.ranges:
        what = f"all {len(plan.skipped)} video clips were skipped: {plan.skipped_text()}"
        if not plan.skipped:
            what = "it has no video clips"
        raise TimelineError(f"timeline '{job.input}' has nothing to matte ({what}); fix the clips and retry the job")
    return plan.frames


class JobRunner:
    """Runs queued jobs on one engine until stopped (see module doc)."""

    def __init__(self, store: JobStore, matter: Matter, config: DaemonConfig, roots: MediaRoots,
                 weights_path: Path) -> None:  # fmt: skip
        self.store = store
        self.matter = matter
        self.config = config
        self.roots = roots
        self.weights_path = weights_path
        self._base_options = matter.options
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self.running_job: int | None = None
        self._thread = threading.Thread(target=self._loop, name="rvm-jobs", daemon=True)

    # --- control (any thread) ------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A job was queued."""
        self._wake.set()

    def cancel(self, job_id: int) -> None:
        """Stop ``job_id`` at its next frame batch if it is running (the store already says cancelled)."""
        with self._lock:
            self._cancelled.add(job_id)

    def stop(self, timeout_s: float) -> None:
        """Stop taking jobs, interrupt the running one (queued again, to resume), and wait for the loop."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)

    def stop_requested(self, job_id: int) -> bool:
        with self._lock:
            return self._stopping.is_set() or job_id in self._cancelled

    # --- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if memory_available_gib() < self.config.memory_reserve_gib:
                log.warning("only %.1f GiB of memory available (reserve %.1f GiB); new jobs wait",
                            memory_available_gib(), self.config.memory_reserve_gib)  # fmt: skip
                self._wake.wait(timeout=5)
                self._wake.clear()
                continue
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(timeout=IDLE_WAIT_S)
                self._wake.clear()
                continue
            self.running_job = job.id
            try:
                self._run(job)
            finally:
                self.running_job = None
                with self._lock:
                    self._cancelled.discard(job.id)

    def _run(self, job: JobRecord) -> None:
        log.info("job %d: %s '%s' -> %s", job.id, job.kind.value, job.input, job.output_dir)
        try:
            outputs = self._render(job)
        except JobStopped:
            if self._stopping.is_set() and self.store.get(job.id).state == JobState.RUNNING:
                self.store.requeue(job.id)
                log.info("job %d interrupted by the stop; it resumes at the next start", job.id)
            else:
                log.info("job %d cancelled; its work dir is kept for a retry", job.id)
            return
        except (RvmRenderError, OSError, ValueError) as err:
            if job.source.startswith(WATCH_SOURCE) and _changed_since_queued(job):
                self.store.cancel(job.id, f"'{job.input}' changed while it was rendered (still being copied?); "
                                          "its watch folder queues it again once it has settled")  # fmt: skip
                log.warning("job %d: '%s' changed while it was rendered (%s); not failed: it is queued again once "
                            "it has settled", job.id, job.input, err)  # fmt: skip
                return
            self._fail(job, str(err).splitlines()[0] if str(err) else type(err).__name__)
            return
        except Exception as err:  # a bug must not take the node down: the job fails, the daemon serves on
            log.exception("job %d failed unexpectedly", job.id)
            self._fail(job, f"internal error ({type(err).__name__}: {err}); see daemon.log and report it")
            return
        if self.store.get(job.id).state == JobState.RUNNING:
            self.store.finish(job.id, outputs)
            shutil.rmtree(work_root_of(self.config.state_dir, job.id), ignore_errors=True)
            self._remove_error_file(job)
            log.info("job %d done", job.id)

    def _fail(self, job: JobRecord, reason: str) -> None:
        if self.store.get(job.id).state != JobState.RUNNING:
            return
        self.store.fail(job.id, reason)
        log.error("job %d failed: %s", job.id, reason)
        if self.config.watch_folder_holding(Path(job.output_dir)) is not None:
            return  # it would be queued as an input
        path = _error_path(job)
        try:
            write_bytes_atomically(path, f"{job.input}: {reason}\n".encode())
        except (RvmRenderError, OSError) as err:
            log.error("could not write %s: %s", path, err)

    def _remove_error_file(self, job: JobRecord) -> None:
        """An ``.error.txt`` an earlier failure of this input left goes once it renders (another input's stays)."""
        path = _error_path(job)
        try:
            named = path.read_text(encoding="utf-8").partition(": ")[0]
        except (OSError, UnicodeDecodeError):
            return
        if named == job.input:
            path.unlink(missing_ok=True)
            log.info("job %d: removed '%s' of an earlier failure", job.id, path)

    def _settings(self, job: JobRecord, preset: Preset) -> RenderSettings:
        """The render settings of a job; a timeline's may replace what an earlier job of the same timeline made
        (a clip's outputs are decided by :func:`~rvm_render.daemon.outputs.choose_outputs`)."""
        background = None
        if preset.background is not None:
            background = parse_background(preset.background, "the job's preset.background")
        overwrite = self.store.rendered_before(job)
        return RenderSettings(formats=preset.formats, background=background, overwrite=overwrite,
                              batch_frames=preferred_batch_frames(self.config.device),
                              warmup_frames=preset.warmup)  # fmt: skip

    def _policy(self, job: JobRecord, preset: Preset) -> BatchPolicy:
        return BatchPolicy(
            segment_frames=preset.segment_frames,
            work_root=work_root_of(self.config.state_dir, job.id),
            workers=self.config.workers,
            executor=self.config.executor,
            address=self.config.address,
        )

    def _timeline_path(self, job: JobRecord) -> Path:
        """A timeline job's file: one posted to the API (the daemon's own), else one inside media_roots; read
        whole in a child process first, so a timeline that crashes the reader fails the job, not the node."""
        path = Path(job.input)
        if path.parent != submitted_timelines_dir(self.config.state_dir) or not path.is_file():
            path = self.roots.check(job.input, "timeline")
        parse_untrusted(check_timeline, path, what=f"timeline '{path}'")
        return path

    def _render(self, job: JobRecord) -> list[str]:
        preset = Preset.from_json(job.preset, "preset")
        settings = self._settings(job, preset)
        policy = self._policy(job, preset)
        self.matter.options = dataclasses.replace(self._base_options, downsample_ratio=preset.downsample_ratio)
        output_dir = self.config.check_output_dir(self.roots.check(job.output_dir, "output folder"), "output_dir")
        if job.kind == JobKind.TIMELINE:
            failures: list[str] = []

            def collect(_: object, err: RvmRenderError) -> None:
                failures.append(str(err))

            options = ConformOptions(handles=preset.handles, media_roots=self.roots.roots)
            progress = _Progress(self, job.id, None)
            result = conform_timeline(
                self._timeline_path(job), output_dir, settings, self.matter, policy, options,
                weights_path=self.weights_path, on_progress=progress, on_failure=collect,
                on_plan=lambda plan: setattr(progress, "frames_total", _frames_to_matte(job, plan)),
            )  # fmt: skip
            if failures:
                raise RvmRenderError(f"{len(failures)} of {len(result.plan.ranges)} media ranges failed: {failures[0]}")
            return [str(result.timeline_path)] + [str(r.manifest) for r in (*result.reused, *result.rendered)]
        first_frame, last_frame = job.frame_range or (None, None)
        request = RenderRequest(self.roots.check(job.input, "input"), output_dir, first_frame, last_frame)
        info = parse_untrusted(probe, request.input_path, what=f"input '{job.input}'")  # a crash fails the job only
        first_index, last_index = frame_range(request, info)
        frames = last_index - first_index + 1
        ratio = self.matter.downsample_ratio_for(info.height, info.width)
        choice = choose_outputs(output_dir, info, (first_index, last_index), settings.formats,
                                str(self.matter.weights_sha256), ratio, settings.look)  # fmt: skip
        if choice.reuse and choice.earlier is not None:
            log.info("job %d: '%s' is unchanged since '%s'; reused", job.id, info.path, choice.earlier.manifest)
            self.store.progress(job.id, frames, frames, None, 0.0)
            return [str(choice.earlier.manifest)] + [str(path) for path in choice.earlier.outputs.values()]
        if choice.earlier is not None:
            log.info("job %d: '%s' replaces its earlier render: %s", job.id, choice.stem, choice.stale_because)
        request = dataclasses.replace(request, stem=choice.stem)
        settings = dataclasses.replace(settings, overwrite=choice.earlier is not None)
        inputs = [BatchInput(request, info)]
        needed = estimated_output_bytes(settings.formats, info.width, info.height, frames)
        shortfall = disk_shortfall(output_dir, needed)
        if shortfall is not None:
            raise RvmRenderError(shortfall)
        results = self._render_replacing_stale_work(job, inputs, settings, policy, frames)
        result = results[0]
        log.info("job %d: %s (%d frames)", job.id, output_stem(request, info), result.frames)
        return [str(result.manifest_path)] + [str(output.path) for output in result.outputs]

    def _render_replacing_stale_work(self, job: JobRecord, inputs: list[BatchInput], settings: RenderSettings,
                                     policy: BatchPolicy, frames: int) -> list[RenderResult]:  # fmt: skip
        """Render a clip job; a work dir of its own planned for an earlier version of the input is started over."""

        def attempt() -> tuple[list[RenderResult], list[RvmRenderError]]:
            failures: list[RvmRenderError] = []
            results = render_batch(inputs, settings, self.matter, policy, weights_path=self.weights_path,
                                   on_failure=lambda _, err: failures.append(err),
                                   on_progress=_Progress(self, job.id, frames))  # fmt: skip
            return results, failures

        results, failures = attempt()
        if policy.work_root is not None and any(isinstance(err, CheckpointMismatchError) for err in failures):
            log.info("job %d: its work dir was planned for another version of the input; started over", job.id)
            shutil.rmtree(policy.work_root, ignore_errors=True)
            results, failures = attempt()
        if failures or not results:
            raise RvmRenderError(str(failures[0]) if failures else f"'{job.input}' was not rendered")
        return results
