"""OpenCue jobs from a segment plan, built with PyOutline (``opencue-pyoutline``).

OpenCue's unit of work is a *frame* of a *layer*; here an OpenCue frame number is a segment
index, with chunk size 1, so Cuebot's ``#FRAME_START#`` token (equal to ``#FRAME_END#`` for a
one-frame chunk) is the segment index in the command::

    rvm-render segment WORKDIR --index #FRAME_START#

OpenCue runs the frames of a layer in no guaranteed order, and orders layers with
dependencies, so the layers follow the same waves as the OpenJD template
(:func:`rvm_render.jobs.farm.openjd.segment_waves`): layer ``wave-N`` holds the N-th segment of
every chain and depends (layer on layer) on ``wave-(N-1)``. A last layer ``assemble`` (one
frame) depends on every wave layer and runs ``rvm-render assemble WORKDIR``.

PyOutline imports and serializes without a Cuebot; only launching needs one
(``outline.cuerun.launch(ol, use_pycuerun=False)``). Serializing writes a session folder under
``~/.opencue/sessions`` (PyOutline's ``session_dir`` setting), as PyOutline always does.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from rvm_render.errors import ConfigError
from rvm_render.jobs.checkpoint import JobPlan
from rvm_render.jobs.farm.openjd import index_range_expression, segment_waves

if TYPE_CHECKING:
    import outline

__all__ = ["ASSEMBLE_LAYER", "INDEX_TOKEN", "assemble_command", "opencue_job_spec", "opencue_outline",
           "segment_command"]

INDEX_TOKEN = "#FRAME_START#"
"""Cuebot token replaced by the first frame of the chunk: the segment index (chunk size 1)."""
ASSEMBLE_LAYER = "assemble"
"""Name of the layer that assembles the deliverables after every segment."""


def _import_outline() -> Any:
    try:
        import outline
        import outline.cuerun
        import outline.depend
        import outline.modules.shell
    except ImportError as err:
        raise ConfigError("OpenCue jobs need opencue-pyoutline; pip install 'rvm-render[farm]'") from err
    return outline


def segment_command(work_dir: str, executable: str = "rvm-render", extra_args: Sequence[str] = ()) -> str:
    """The shell command of every OpenCue frame, paths quoted, the index left as a token."""
    words = [executable, "segment", work_dir, "--index"]
    return f"{shlex.join(words)} {INDEX_TOKEN}" + (f" {shlex.join(extra_args)}" if extra_args else "")


def assemble_command(work_dir: str, executable: str = "rvm-render", extra_args: Sequence[str] = ()) -> str:
    """The shell command of the assemble layer's one frame, paths quoted."""
    return shlex.join([executable, "assemble", work_dir, *extra_args])


def opencue_outline(
    plan: JobPlan,
    work_dir: str,
    *,
    name: str | None = None,
    show: str | None = None,
    shot: str | None = None,
    user: str | None = None,
    executable: str = "rvm-render",
    extra_args: Sequence[str] = (),
    gpus_per_frame: int = 0,
    service: str | None = None,
    assemble: bool = True,
    assemble_args: Sequence[str] = (),
) -> outline.Outline:
    """A PyOutline outline rendering a planned clip: one OpenCue frame per segment.

    Args:
        plan: the work dir's plan (``WorkDir.plan``).
        work_dir: the work dir as the render hosts see it (absolute path).
        name: job name; default ``rvm-render-<input stem>``.
        show, shot, user: OpenCue job fields; default PyOutline's (config and environment).
        executable: the command each frame runs.
        extra_args: arguments added after the index (e.g. ``["--device", "cuda"]``).
        gpus_per_frame: when > 0, each layer books that many GPUs.
        service: OpenCue service of the layers; default PyOutline's (``shell``).
        assemble: add the :data:`ASSEMBLE_LAYER` layer (one frame, no GPU), depending on
            every wave layer.
        assemble_args: arguments added after ``assemble WORKDIR`` (e.g. ``["--overwrite"]``).

    Returns:
        The outline; serialize it with :func:`opencue_job_spec` or launch it with
        ``outline.cuerun.launch(ol, use_pycuerun=False)``.

    Raises:
        ConfigError: opencue-pyoutline is missing, the plan is empty, or gpus_per_frame < 0.
    """
    outline_module = _import_outline()
    if not plan.segments:
        raise ConfigError("farm job: the plan has no segments (empty input?); nothing to submit")
    if gpus_per_frame < 0:
        raise ConfigError(f"farm job: gpus_per_frame must be >= 0, got {gpus_per_frame}")
    stem = PurePath(plan.fingerprint.input.path).stem
    job_name = name or "rvm-render-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    ol = outline_module.Outline(job_name, show=show, shot=shot, user=user)
    command = segment_command(work_dir, executable, extra_args)
    previous = None
    waves: list[Any] = []
    for position, wave in enumerate(segment_waves(plan.segments)):
        layer_args: dict[str, Any] = {"command": command, "range": index_range_expression(wave), "chunk": 1}
        if gpus_per_frame:
            layer_args["gpus"] = gpus_per_frame
        if service:
            layer_args["service"] = service
        layer = outline_module.modules.shell.Shell(f"wave-{position}", **layer_args)
        if previous is not None:
            layer.depend_on(previous, outline_module.depend.DependType.LayerOnLayer)
        ol.add_layer(layer)
        previous = layer
        waves.append(layer)
    if assemble:
        final_args: dict[str, Any] = {
            "command": assemble_command(work_dir, executable, assemble_args), "range": "0", "chunk": 1,
        }
        if service:
            final_args["service"] = service
        final = outline_module.modules.shell.Shell(ASSEMBLE_LAYER, **final_args)
        for layer in waves:
            final.depend_on(layer, outline_module.depend.DependType.LayerOnLayer)
        ol.add_layer(final)
    return ol


def opencue_job_spec(ol: outline.Outline) -> str:
    """The OpenCue job specification XML (cjsl) of an outline, as Cuebot receives it.

    Commands run as given (no pycuerun wrapper). Needs no Cuebot.

    Raises:
        ConfigError: opencue-pyoutline is missing.
    """
    launcher = _import_outline().cuerun.OutlineLauncher(ol, nomail=True)
    return str(launcher.serialize(use_pycuerun=False))
