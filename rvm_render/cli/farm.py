"""``rvm-render farm export``: a clip planned into segments, as a job for a render farm manager.

Plans the clip (shot cuts, ``--segment-frames``, ``--mode``, ``--preroll``) into a work dir, as
``rvm-render matte`` does (:func:`rvm_render.jobs.runner.prepare_work_dir`), and writes into
that work dir a job with one task per segment, each running
``rvm-render segment WORKDIR --index K``, and a last task ``rvm-render assemble WORKDIR``:

- ``openjd``: an Open Job Description template (``job.openjd.json``; the format of AWS
  Deadline Cloud), validated with openjd-model (:mod:`rvm_render.jobs.farm.openjd`);
- ``opencue``: an OpenCue job spec built with PyOutline (``job.opencue.xml``)
  (:mod:`rvm_render.jobs.farm.opencue`);
- ``deadline``: Thinkbox Deadline 10 job and plug-in info files (``deadline/``), one job per wave
  and one that assembles, for the ``RVMRender`` plug-in (:mod:`rvm_render.jobs.farm.deadline`).
  ``farm submit`` runs the ``deadlinecommand`` line that submits them.

Render hosts must see the input, the output folder and the work dir at the same paths as
this machine (or the farm's path mapping must translate them); the weights are recorded by
path and sha256 (``rvm-render segment --weights`` overrides the path on a host).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from rvm_render.cli.options import add_render_options, engine_options_from, parse_frame_count, render_settings_from
from rvm_render.errors import ConfigError, RvmRenderError
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PLAN_MODES, PREROLL_FRAMES, SegmentPolicy

if TYPE_CHECKING:
    from rvm_render.engine import Matter
    from rvm_render.jobs.checkpoint import WorkDir

log = logging.getLogger(__name__)

__all__ = ["FARM_FORMATS", "OPENCUE_FILE", "add_parser", "run_export", "run_submit"]

FARM_FORMATS = ("openjd", "opencue", "deadline")
OPENCUE_FILE = "job.opencue.xml"
"""File name of the OpenCue job spec inside the work dir."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    farm = commands.add_parser(
        "farm",
        help="export a clip as a render-farm job (Open Job Description, OpenCue, Deadline 10)",
        description="Render-farm jobs: one task per segment, then one that assembles the deliverables.",
    )
    actions = farm.add_subparsers(dest="farm_command", metavar="ACTION", required=True)
    parser = actions.add_parser(
        "export",
        help="plan INPUT into a work dir and write a farm job for it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Plan INPUT into segments in a work dir (default OUTDIR/.rvm-work/<stem>) and write a job\n"
            "there: --format openjd writes job.openjd.json (Open Job Description, AWS Deadline Cloud),\n"
            "--format opencue writes job.opencue.xml (OpenCue, built with PyOutline), --format deadline\n"
            "writes deadline/*.job (Deadline 10, plug-in RVMRender: integrations/deadline). Every task runs\n"
            "'rvm-render segment WORKDIR --index K'; a last task runs 'rvm-render assemble WORKDIR'.\n"
            "Render hosts need the input, OUTDIR and the work dir at the same paths as this machine."
        ),
        epilog=(
            "Parallel mode (default here): every segment is an independent task that first mattes\n"
            "--preroll frames before its start to warm up the recurrent state (see bench/preroll.py).\n"
            "Sequential mode: the segments of a shot run one after another, each starting from the\n"
            "state the one before saved: identical to one pass, but a shot uses one host at a time.\n\n"
            "Examples:\n"
            "  rvm-render farm export interview.mov -o /show/mattes --format openjd --gpus-per-task 1\n"
            "  openjd run /show/mattes/.rvm-work/interview/job.openjd.json\n"
            "  rvm-render farm export interview.mov -o /show/mattes --format opencue --show demo --shot sh010"
        ),
    )
    _add_export_arguments(parser)
    parser.set_defaults(run=run_export)
    submit = actions.add_parser(
        "submit",
        help="export INPUT as a Deadline 10 job and submit it with deadlinecommand",
        description=(
            "farm export, then run the deadlinecommand line it prints (Deadline's bin folder must be on PATH)."
        ),
    )
    _add_export_arguments(submit)
    submit.set_defaults(run=run_submit)


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="INPUT", help="clip to matte")
    parser.add_argument(
        "-o",
        "--output-dir",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="folder for the deliverables (as render hosts see it)",
    )
    parser.add_argument(
        "--format",
        dest="farm_format",
        choices=FARM_FORMATS,
        required=True,
        help="job format: openjd (Deadline Cloud, openjd run), opencue or deadline (Deadline 10)",
    )
    plan = parser.add_argument_group("segments")
    plan.add_argument(
        "--segment-frames",
        type=parse_frame_count,
        default=DEFAULT_SEGMENT_FRAMES,
        metavar="N",
        help="most frames per segment, i.e. per task (default: %(default)s)",
    )
    plan.add_argument(
        "--mode",
        choices=PLAN_MODES,
        default="parallel",
        help="parallel: independent tasks with pre-roll (default); sequential: chained tasks",
    )
    plan.add_argument(
        "--preroll",
        type=parse_frame_count,
        default=PREROLL_FRAMES,
        metavar="N",
        help="parallel mode: warm-up frames before each segment (default: %(default)s)",
    )
    plan.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="work dir on shared storage (default: OUTDIR/.rvm-work/<stem>)",
    )
    add_render_options(
        parser.add_argument_group("render settings (as for rvm-render matte; device and precision are the tasks')")
    )
    job = parser.add_argument_group("job")
    job.add_argument("--name", default=None, help="job name (default: rvm-render <input name>)")
    job.add_argument(
        "--executable",
        default="rvm-render",
        metavar="CMD",
        help="the rvm-render command on the render hosts (default: %(default)s)",
    )
    job.add_argument(
        "--gpus-per-task",
        type=parse_frame_count,
        default=0,
        metavar="N",
        help="GPUs each segment task requires (default: 0, no requirement)",
    )
    job.add_argument("--show", default=None, help="OpenCue show")
    job.add_argument("--shot", default=None, help="OpenCue shot")
    job.add_argument("--user", default=None, help="OpenCue user")
    job.add_argument("--service", default=None, help="OpenCue service of the layers")


def _planning_matter(args: argparse.Namespace, weights: Path) -> Matter:
    """The engine the plan is made with: the weights' digest and variant, no network, on this machine's CPU.

    The plan needs the weights' digest and variant and the downsample ratio, none of which
    depend on the device; the tasks' device and precision are recorded as asked for, so this
    machine needs no GPU.
    """
    from rvm_render.engine import EngineOptions, open_planning_matter

    options = engine_options_from(args)
    matter = open_planning_matter(
        weights, EngineOptions(device="cpu", downsample_ratio=args.downsample_ratio), variant=args.variant
    )
    matter.options = options  # what the plan records for the tasks
    return matter


def _opencue_job_name(name: str | None) -> str | None:
    return None if name is None else "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def run_export(args: argparse.Namespace) -> int:
    _export(args)
    return 0


def run_submit(args: argparse.Namespace) -> int:
    """``farm submit``: export, then submit with ``deadlinecommand`` (Deadline 10 only).

    Raises:
        ConfigError: another format than deadline.
        RvmRenderError: ``deadlinecommand`` is not on PATH, or it refused the jobs.
    """
    if args.farm_format != "deadline":
        raise ConfigError(f"farm submit: --format {args.farm_format} is submitted with its own tools (see the line "
                          "farm export prints); farm submit sends Deadline 10 jobs: --format deadline")  # fmt: skip
    from rvm_render.jobs.farm.deadline import DEADLINECOMMAND  # loaded when it runs: --help starts at once

    command = _export(args)
    deadlinecommand = shutil.which(DEADLINECOMMAND)
    if deadlinecommand is None:
        raise RvmRenderError("farm submit: deadlinecommand is not on PATH, so the jobs were written but not "
                             "submitted; add the Deadline 10 client's bin folder (e.g. /opt/Thinkbox/Deadline10/bin) "
                             "to PATH, or run the printed deadlinecommand line where it is")  # fmt: skip
    result = subprocess.run([deadlinecommand, *command[1:]], capture_output=True, text=True)
    print(result.stdout, end="")
    if result.returncode != 0 or "Result=Success" not in result.stdout:
        reason = (result.stderr or result.stdout).strip().splitlines() or [f"exit code {result.returncode}"]
        raise RvmRenderError(f"farm submit: deadlinecommand refused the jobs: {reason[-1]}")
    return 0


def _export(args: argparse.Namespace) -> list[str]:
    """Plan the clip, write the job; returns the ``deadlinecommand`` line for --format deadline (else [])."""
    from rvm_render.engine.weights import resolve_weights_path  # loaded when it runs: --help starts at once
    from rvm_render.jobs.assemble import check_outputs_free
    from rvm_render.jobs.farm.deadline import JOBS_FOLDER, deadline_jobs, submit_command, write_deadline_jobs
    from rvm_render.jobs.farm.opencue import opencue_job_spec, opencue_outline
    from rvm_render.jobs.farm.openjd import (
        TEMPLATE_FILE,
        openjd_template,
        validate_openjd_template,
        write_openjd_template,
    )
    from rvm_render.jobs.runner import prepare_work_dir
    from rvm_render.media.commit import write_bytes_atomically
    from rvm_render.pipeline import RenderRequest

    if args.segment_frames < 1:
        raise ConfigError("--segment-frames: a farm job needs segments of at least 1 frame")
    if args.farm_format != "opencue" and any((args.show, args.shot, args.user, args.service)):
        raise ConfigError("--show, --shot, --user and --service are OpenCue fields; use them with --format opencue")
    settings = render_settings_from(args)
    weights = resolve_weights_path(args.weights).absolute()
    matter = _planning_matter(args, weights)
    first, last = args.frames if args.frames is not None else (None, None)
    request = RenderRequest(args.input.absolute(), args.output_dir.absolute(), first_frame=first, last_frame=last)
    policy = SegmentPolicy(max_frames=args.segment_frames, preroll_frames=args.preroll)
    work = prepare_work_dir(
        request,
        settings,
        matter,
        policy,
        mode=args.mode,
        work_dir=None if args.work_dir is None else args.work_dir.absolute(),
        weights_path=weights,
    )
    check_outputs_free(work, overwrite=args.overwrite)
    assemble_args = ["--overwrite"] if args.overwrite else []
    command: list[str] = []
    if args.farm_format == "deadline":
        jobs = deadline_jobs(work.plan, str(work.path), str(request.output_dir), name=args.name,
                             executable=args.executable, assemble_args=assemble_args)  # fmt: skip
        files = write_deadline_jobs(jobs, work.path / JOBS_FOLDER)
        path = work.path / JOBS_FOLDER
        command = submit_command(files)
        how = f"submit it:        {shlex.join(command)}"
    elif args.farm_format == "openjd":
        template = openjd_template(
            work.plan,
            job_name=args.name,
            executable=args.executable,
            gpus_per_task=args.gpus_per_task,
            assemble_args=assemble_args,
        )
        validate_openjd_template(template)
        path = write_openjd_template(template, work.path / TEMPLATE_FILE)
        how = (
            f"run it here:      openjd run {shlex.quote(str(path))}\n"
            f"Deadline Cloud:   copy it as template.json into a job bundle folder, then\n"
            f"                  deadline bundle submit BUNDLE -p WorkDir={shlex.quote(str(work.path))}"
        )
    else:
        outline = opencue_outline(
            work.plan,
            str(work.path),
            name=_opencue_job_name(args.name),
            show=args.show,
            shot=args.shot,
            user=args.user,
            executable=args.executable,
            gpus_per_frame=args.gpus_per_task,
            service=args.service,
            assemble_args=assemble_args,
        )
        path = work.path / OPENCUE_FILE
        write_bytes_atomically(path, opencue_job_spec(outline).encode())
        how = f'submit it:        python -c "import opencue; opencue.api.launchSpec(open({str(path)!r}).read())"'
    if not args.quiet:
        _print_summary(work, path, how)
    return command


def _print_summary(work: WorkDir, path: Path, how: str) -> None:
    plan = work.plan
    print(f"{path}")
    print(
        f"  {len(plan.segments)} segment task(s) + assemble, {plan.frames_total} frames, {plan.mode} mode"
        + (f", {len(plan.cuts)} shot cut(s)" if plan.cuts else "")
        + (f", pre-roll {plan.policy.preroll_frames}" if plan.mode == "parallel" else "")
    )
    print(how)
