"""Matte deliverables: one writer per output format behind :func:`open_writer`.

========== ============================= ==============================================
format      file                          content
========== ============================= ==============================================
prores4444 ``<stem>_matte.mov``           ProRes 4444 10-bit, straight fgr + alpha, audio
alpha      ``<stem>_alpha.mov``           ProRes 422 HQ grey matte (luma = alpha), audio
comp       ``<stem>_comp.mp4``            H.264 subject over a background, audio
exr        ``<stem>_matte.%06d.exr``      OpenEXR half RGBA (straight), ZIP
png        ``<stem>_matte.%06d.png``      RGBA PNG, 8 or 16 bit following the source
========== ============================= ==============================================

Sequence frames are numbered ``info.first_frame_number + frame_index``. Every writer encodes
under a temporary name and :mod:`rvm_render.media.commit` renames on ``close``.
"""

from __future__ import annotations

from pathlib import Path

from rvm_render.errors import ConfigError
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.alpha import AlphaMatteWriter
from rvm_render.media.writers.background import Background, is_colour, parse_background
from rvm_render.media.writers.comp import CompWriter
from rvm_render.media.writers.exr import ExrWriter
from rvm_render.media.writers.output import MatteWriter, OutputFormat, WrittenOutput, output_path
from rvm_render.media.writers.png import PngWriter
from rvm_render.media.writers.prores4444 import ProRes4444Writer

__all__ = [
    "OutputFormat",
    "Background",
    "parse_background",
    "is_colour",
    "MatteWriter",
    "WrittenOutput",
    "open_writer",
    "output_path",
]


def open_writer(
    fmt: OutputFormat | str,
    output_dir: Path,
    stem: str,
    info: MediaInfo,
    *,
    background: Background | None = None,
    overwrite: bool = False,
    audio: bool = True,
    background_first_frame: int = 0,
) -> MatteWriter:
    """Open the writer of one deliverable for a clip.

    Args:
        fmt: the deliverable (an :class:`OutputFormat` or its value).
        output_dir: folder for the output (created if missing).
        stem: file-name stem, usually the source's.
        info: the source clip (size, rate, audio, timecode, bit depth).
        background: for ``comp`` only; green when not given.
        overwrite: replace existing outputs instead of raising.
        audio: copy the source's audio into movie deliverables (False for segment parts,
            whose audio the assembled file copies whole).
        background_first_frame: for ``comp`` only: frames of a video background to skip (the
            first frame written is this many frames into the render).

    Raises:
        ConfigError: unknown format.
        OutputExistsError: the output (or any frame of it) exists and ``overwrite`` is False.
    """
    try:
        fmt = OutputFormat(fmt)
    except ValueError:
        names = ", ".join(f.value for f in OutputFormat)
        raise ConfigError(f"output format '{fmt}' is unknown; use one of {names}") from None
    path = output_path(fmt, Path(output_dir), stem)
    if fmt is OutputFormat.PRORES4444:
        return ProRes4444Writer(path, info, overwrite=overwrite, audio=audio)
    if fmt is OutputFormat.ALPHA:
        return AlphaMatteWriter(path, info, overwrite=overwrite, audio=audio)
    if fmt is OutputFormat.COMP:
        return CompWriter(
            path, info, background=background, overwrite=overwrite, audio=audio,
            background_first_frame=background_first_frame,
        )
    if fmt is OutputFormat.EXR:
        return ExrWriter(path, info, overwrite=overwrite)
    return PngWriter(path, info, overwrite=overwrite)
