"""Open Job Description job templates from a segment plan: one task per segment.

Follows the Open Job Description template schema ``jobtemplate-2023-09``
(github.com/OpenJobDescription/openjd-specifications, wiki "2023-09-Template-Schemas").

OpenJD runs the tasks of one step in no guaranteed order, possibly at once; the only
ordering it offers is between steps (``dependencies``: a step starts when the steps it
depends on have finished). A plan's segments form chains (state handed from one segment to
the next, see :func:`rvm_render.jobs.segments.segment_chains`), so the template has one step
per *position in a chain*:

- step ``Wave-0`` holds the first segment of every chain (all segments of a parallel plan),
- step ``Wave-N`` holds the N-th segment of every chain long enough, and depends on
  ``Wave-(N-1)``, which holds its predecessor.

So every segment runs after the segment whose state it starts from; segments of one wave run
in parallel. The number of wave steps is the longest chain's length. Each task runs::

    {{Param.RvmRender}} segment {{Param.WorkDir}} --index {{Task.Param.Index}}

A last step ``Assemble`` (one task) depends on every wave and joins the segments' outputs into
the deliverables::

    {{Param.RvmRender}} assemble {{Param.WorkDir}}

``RvmRender`` (default ``rvm-render``) and ``WorkDir`` are job parameters, so a submitter can
point at another install, and the farm's path mapping applies to the work dir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rvm_render.errors import ConfigError
from rvm_render.jobs.checkpoint import JobPlan
from rvm_render.jobs.segments import Segment, segment_chains

__all__ = [
    "ASSEMBLE_STEP",
    "SPECIFICATION_VERSION",
    "TEMPLATE_FILE",
    "index_range_expression",
    "openjd_template",
    "segment_waves",
    "validate_openjd_template",
    "write_openjd_template",
]

SPECIFICATION_VERSION = "jobtemplate-2023-09"
TEMPLATE_FILE = "job.openjd.json"
"""File name of the template inside a work dir (its ``WorkDir`` default ``"."`` points there)."""
ASSEMBLE_STEP = "Assemble"
"""Name of the step that assembles the deliverables after every segment."""
_NAME_MAX = 128


def segment_waves(segments: Iterable[Segment]) -> list[list[int]]:
    """Segment indices grouped by position in their chain: wave N holds every chain's N-th.

    Every segment's dependency is in the wave before its own.
    """
    waves: list[list[int]] = []
    for chain in segment_chains(segments):
        for position, segment in enumerate(chain):
            if position == len(waves):
                waves.append([])
            waves[position].append(segment.index)
    return [sorted(wave) for wave in waves]


def index_range_expression(indices: Iterable[int]) -> str:
    """Compact OpenJD integer range expression: ``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"``.

    Raises:
        ValueError: no indices.
    """
    ordered = sorted(set(indices))
    if not ordered:
        raise ValueError("an index range needs at least one index")
    parts: list[str] = []
    start = previous = ordered[0]
    for index in ordered[1:] + [None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ",".join(parts)


def openjd_template(
    plan: JobPlan,
    *,
    work_dir: str | None = ".",
    job_name: str | None = None,
    executable: str = "rvm-render",
    extra_args: Sequence[str] = (),
    gpus_per_task: int = 0,
    assemble: bool = True,
    assemble_args: Sequence[str] = (),
) -> dict[str, Any]:
    """An Open Job Description job template rendering a planned clip, one task per segment.

    Args:
        plan: the work dir's plan (``WorkDir.plan``).
        work_dir: default of the ``WorkDir`` job parameter. OpenJD requires a PATH default
            to be relative, joined to the template's folder: the default ``"."`` fits a
            template written into the work dir (:data:`TEMPLATE_FILE`). None: no default,
            the submitter passes ``WorkDir=<path>``.
        job_name: name shown on the farm; default ``rvm-render <input file name>``.
        executable: default of the ``RvmRender`` job parameter: the command each task runs.
        extra_args: arguments added after ``--index K`` (e.g. ``["--device", "cuda"]``).
        gpus_per_task: when > 0, each step requires that many GPUs
            (``amount.worker.gpu`` host requirement).
        assemble: add the :data:`ASSEMBLE_STEP` step (``RvmRender assemble WorkDir``), which
            depends on every wave step.
        assemble_args: arguments added after ``assemble WorkDir`` (e.g. ``["--overwrite"]``).

    Returns:
        The template as a JSON-ready dict (write it with :func:`write_openjd_template`).

    Raises:
        ConfigError: the plan has no segments, gpus_per_task < 0, or ``work_dir`` is absolute.
    """
    if not plan.segments:
        raise ConfigError("farm job: the plan has no segments (empty input?); nothing to submit")
    if gpus_per_task < 0:
        raise ConfigError(f"farm job: gpus_per_task must be >= 0, got {gpus_per_task}")
    name = job_name or f"rvm-render {Path(plan.fingerprint.input.path).name}"
    if work_dir is not None and Path(work_dir).is_absolute():
        raise ConfigError(f"farm job: WorkDir default '{work_dir}' must be relative to the template's "
                          f"folder (OpenJD rule); pass the absolute path as job parameter WorkDir instead")
    work_dir_parameter: dict[str, Any] = {
        "name": "WorkDir",
        "type": "PATH",
        "objectType": "DIRECTORY",
        "dataFlow": "INOUT",
        "description": "rvm_render work dir holding plan.json and the segment checkpoints.",
    }
    if work_dir is not None:
        work_dir_parameter["default"] = str(work_dir)
    parameters: list[dict[str, Any]] = [
        work_dir_parameter,
        {
            "name": "RvmRender",
            "type": "STRING",
            "default": executable,
            "description": "Command that runs one segment: RvmRender segment WORKDIR --index K.",
        },
    ]
    steps: list[dict[str, Any]] = []
    for position, wave in enumerate(segment_waves(plan.segments)):
        step: dict[str, Any] = {
            "name": f"Wave-{position}",
            "description": (f"segments {index_range_expression(wave)}"
                            + ("" if position == 0 else f", each after its predecessor in Wave-{position - 1}")),
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {"name": "Index", "type": "INT", "range": index_range_expression(wave)},
                ],
            },
            "script": {
                "actions": {
                    "onRun": {
                        "command": "{{Param.RvmRender}}",
                        "args": ["segment", "{{Param.WorkDir}}", "--index", "{{Task.Param.Index}}",
                                 *extra_args],
                    },
                },
            },
        }
        if gpus_per_task:
            step["hostRequirements"] = {"amounts": [{"name": "amount.worker.gpu", "min": gpus_per_task}]}
        if position:
            step["dependencies"] = [{"dependsOn": f"Wave-{position - 1}"}]
        steps.append(step)
    if assemble:
        steps.append({
            "name": ASSEMBLE_STEP,
            "description": "join the segments' outputs into the deliverables and write the manifest",
            "dependencies": [{"dependsOn": step["name"]} for step in steps],
            "script": {
                "actions": {
                    "onRun": {
                        "command": "{{Param.RvmRender}}",
                        "args": ["assemble", "{{Param.WorkDir}}", *assemble_args],
                    },
                },
            },
        })
    return {
        "specificationVersion": SPECIFICATION_VERSION,
        "name": name[:_NAME_MAX],
        "description": (f"{len(plan.segments)} segments of {plan.frames_total} frames "
                        f"({plan.mode} mode) of {plan.fingerprint.input.path}"),
        "parameterDefinitions": parameters,
        "steps": steps,
    }


def validate_openjd_template(template: dict[str, Any]) -> None:
    """Check a template against the OpenJD model (needs the ``farm`` extra: openjd-model).

    Raises:
        ConfigError: openjd-model is not installed, or the template does not validate.
    """
    try:
        from openjd.model import DecodeValidationError, decode_job_template
    except ImportError as err:
        raise ConfigError("validating an OpenJD template needs openjd-model; "
                          "pip install 'rvm-render[farm]'") from err
    try:
        decode_job_template(template=template)
    except DecodeValidationError as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"OpenJD template does not validate: {message}") from err


def write_openjd_template(template: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a template as JSON (OpenJD accepts JSON and YAML) and return its path."""
    target = Path(path)
    target.write_text(json.dumps(template, indent=2) + "\n")
    return target
