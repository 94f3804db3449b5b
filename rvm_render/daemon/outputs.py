"""Where a clip job's outputs go, decided by the daemon alone (it has no ``--overwrite`` to ask for).

- An earlier render of the same input in the output folder (its manifest names the input) is the
  job's own: reused when it still serves the input (:mod:`rvm_render.jobs.earlier_render`),
  otherwise replaced whole, atomically.
- Outputs of another input, or files the user put there, are never touched: the job takes the next
  free name, ``<stem>_<ext>`` then ``<stem>_<ext>_2``, ``_3``... (``take.mp4`` and ``take.mov``
  dropped together give ``take_matte.mov`` and ``take_mov_matte.mov``).
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.media.frame_pattern import frame_field
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers import OutputFormat, output_path
from rvm_render.pipeline.manifest import MANIFEST_SUFFIX, manifest_path_for
from rvm_render.pipeline.render import clip_stem

__all__ = ["OutputChoice", "choose_outputs"]


@dataclass(frozen=True, slots=True)
class OutputChoice:
    """The stem a job writes under, and what it does with an earlier render of its input there."""

    stem: str
    earlier: EarlierRender | None
    """The same input's earlier render at ``stem``, if any."""
    stale_because: str | None
    """Why ``earlier`` is replaced; None when it is reused (or there is none)."""

    @property
    def reuse(self) -> bool:
        return self.earlier is not None and self.stale_because is None


def _extension(info: MediaInfo) -> str:
    """The input's file extension, lower case, as its outputs' names carry it on a clash (``mov``)."""
    return Path(info.path.name).suffix.lstrip(".").lower() or "clip"


def _stems(info: MediaInfo) -> Iterator[str]:
    """The input's own stem, then the names it takes when that is another input's (module doc)."""
    stem = clip_stem(info)
    extension = _extension(info)
    yield stem
    yield f"{stem}_{extension}"
    for number in itertools.count(2):
        yield f"{stem}_{extension}_{number}"


def _owned_by_input(output_dir: Path, info: MediaInfo) -> EarlierRender | None:
    """The same input's earlier render under one of its names, if any."""
    stem = clip_stem(info)
    names = re.compile(rf"{re.escape(stem)}(_{re.escape(_extension(info))}(_\d+)?)?{re.escape(MANIFEST_SUFFIX)}")
    for manifest in sorted(output_dir.glob(f"{glob.escape(stem)}*{MANIFEST_SUFFIX}")):
        if names.fullmatch(manifest.name):
            earlier = EarlierRender.read(manifest)
            if earlier is not None and earlier.input == os.path.abspath(info.path):
                return earlier
    return None


def _taken(output_dir: Path, stem: str, formats: Sequence[OutputFormat]) -> bool:
    """Whether anything is at ``stem``'s names: another input's manifest, or a file of the user's."""
    if manifest_path_for(output_dir, stem).exists():
        return True
    for fmt in formats:
        path = output_path(fmt, output_dir, stem)
        if fmt.is_sequence:
            field = frame_field(path.name)
            prefix = field.prefix(path.name) if field is not None else f"{stem}_"
            if any(output_dir.glob(f"{glob.escape(prefix)}*")):
                return True
        elif path.exists():
            return True
    return False


def choose_outputs(output_dir: Path, info: MediaInfo, frames: tuple[int, int], formats: Sequence[OutputFormat],
                   weights_sha256: str, downsample_ratio: float, look: dict[str, Any]) -> OutputChoice:  # fmt: skip
    """Decide the stem of a clip job's outputs and whether its earlier render there is reused (module doc).

    Args:
        output_dir: the job's output folder.
        info: the input as it is now.
        frames: the 0-based (first, last) frame indices to render.
        formats: the deliverables asked for.
        weights_sha256, downsample_ratio: of the engine that renders it.
        look: its warm start and comp backdrop (:func:`~rvm_render.pipeline.manifest.look_of`).
    """
    earlier = _owned_by_input(output_dir, info)
    if earlier is not None:
        why = earlier.stale_because(info, formats=formats, weights_sha256=weights_sha256,
                                    downsample_ratio=downsample_ratio, frames=frames, look=look)  # fmt: skip
        return OutputChoice(earlier.stem, earlier, why)
    stem = next(s for s in _stems(info) if not _taken(output_dir, s, formats))
    return OutputChoice(stem, None, None)
