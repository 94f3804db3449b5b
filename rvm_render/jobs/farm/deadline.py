"""Thinkbox Deadline 10 jobs from a segment plan, for the ``RVMRender`` plug-in in ``integrations/deadline``.

Deadline orders whole jobs (job dependencies), not the tasks inside one, so the plan becomes one
job per wave (:func:`rvm_render.jobs.farm.openjd.segment_waves`: wave N holds the N-th segment of
every chain, so a clip's dependent segments never run out of order) and a last job that assembles.
A wave job's *frames* are its segment indices (``Frames=0,3,5``, ``ChunkSize=1``): each Deadline
task runs ``rvm-render segment WORKDIR --index K`` for its frame K; the assemble job's one task
runs ``rvm-render assemble WORKDIR``.

Each job is a pair of files as Deadline's manual submission documents them: a *job info* file
(``Plugin``, ``Name``, ``BatchName``, ``Frames``, ``ChunkSize``, ``OutputDirectory0``) and a
*plug-in info* file read by ``RVMRender.py`` (``WorkDir``, ``Command``, ``Executable``,
``Arguments``). They are submitted together, in order, with
``deadlinecommand -SubmitMultipleJobs -dependent -job JOBINFO PLUGININFO ...``: ``-dependent``
makes each job depend on the one before it (its ``JobDependencies``), so a wave starts only once
the wave before it has completed, and the assemble job last.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rvm_render.errors import ConfigError
from rvm_render.jobs.checkpoint import JobPlan
from rvm_render.jobs.farm.openjd import segment_waves
from rvm_render.media.commit import write_bytes_atomically

__all__ = ["PLUGIN_NAME", "JOBS_FOLDER", "DEADLINECOMMAND", "DeadlineJob", "deadline_jobs", "write_deadline_jobs",
           "submit_command"]

PLUGIN_NAME = "RVMRender"
"""The Deadline plug-in (``integrations/deadline/RVMRender``) the jobs run on."""
JOBS_FOLDER = "deadline"
"""Folder of the job files inside the work dir."""
DEADLINECOMMAND = "deadlinecommand"


@dataclass(frozen=True, slots=True)
class DeadlineJob:
    """One Deadline job: its job info and plug-in info keys, in file order."""

    name: str
    job_info: dict[str, str]
    plugin_info: dict[str, str]


def deadline_jobs(plan: JobPlan, work_dir: str, output_dir: str, *, name: str | None = None,
                  executable: str = "rvm-render", extra_args: Sequence[str] = (),
                  assemble_args: Sequence[str] = ()) -> list[DeadlineJob]:  # fmt: skip
    """The jobs rendering a planned clip: one per wave of segments, then one that assembles.

    Args:
        plan: the work dir's plan (``WorkDir.plan``).
        work_dir: the work dir as render hosts see it.
        output_dir: the deliverables' folder (the jobs' ``OutputDirectory0``, which Monitor opens).
        name: the batch name shown in Deadline Monitor; default ``rvm-render <input file name>``.
        executable: the ``rvm-render`` command on the Workers (empty: the plug-in's configured one).
        extra_args: arguments added after ``--index K`` (e.g. ``["--device", "cuda"]``).
        assemble_args: arguments added after ``assemble WORKDIR`` (e.g. ``["--overwrite"]``).

    Raises:
        ConfigError: the plan has no segments.
    """
    if not plan.segments:
        raise ConfigError("farm job: the plan has no segments (empty input?); nothing to submit")
    batch = name or f"rvm-render {Path(plan.fingerprint.input.path).name}"
    common = {"Plugin": PLUGIN_NAME, "BatchName": batch, "ChunkSize": "1", "OutputDirectory0": output_dir}
    plugin = {"WorkDir": work_dir, "Executable": executable}
    waves = segment_waves(plan.segments)
    jobs = [
        DeadlineJob(f"wave-{n}", {**common, "Name": f"{batch} wave {n + 1}/{len(waves)}",
                                  "Frames": ",".join(map(str, wave))},
                    {**plugin, "Command": "segment", "Arguments": shlex.join(extra_args)})
        for n, wave in enumerate(waves)
    ]  # fmt: skip
    jobs.append(DeadlineJob("assemble", {**common, "Name": f"{batch} assemble", "Frames": "0"},
                            {**plugin, "Command": "assemble", "Arguments": shlex.join(assemble_args)}))  # fmt: skip
    return jobs


def write_deadline_jobs(jobs: Sequence[DeadlineJob], folder: Path) -> list[tuple[Path, Path]]:
    """Write each job's ``<N>-<name>.job_info.job`` and ``.plugin_info.job`` (``Key=Value`` lines) into ``folder``."""
    written = []
    for number, job in enumerate(jobs):
        pair = []
        for kind, keys in (("job_info", job.job_info), ("plugin_info", job.plugin_info)):
            path = folder / f"{number:02d}-{job.name}.{kind}.job"
            write_bytes_atomically(path, "".join(f"{key}={value}\n" for key, value in keys.items()).encode())
            pair.append(path)
        written.append((pair[0], pair[1]))
    return written


def submit_command(files: Sequence[tuple[Path, Path]], deadlinecommand: str = DEADLINECOMMAND) -> list[str]:
    """``deadlinecommand -SubmitMultipleJobs -dependent -job JOBINFO PLUGININFO ...``: the jobs, each after the last."""
    command = [deadlinecommand, "-SubmitMultipleJobs", "-dependent"]
    for job_info, plugin_info in files:
        command += ["-job", str(job_info), str(plugin_info)]
    return command
