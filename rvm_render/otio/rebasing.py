"""Relative media paths of an edit, rebased to where its conformed copy is written.

A reference such as ``clips/take.mp4`` (and every clip of an ``.otiod`` or ``.otioz`` bundle,
which point at ``media/...``) resolves against the folder of the timeline that holds it. The
``.rvm.otio`` is written elsewhere (``-o OUTDIR``), so such references are rewritten: relative
to the written timeline with ``--relative-paths``, else absolute. Absolute paths, URLs and
another machine's paths are left as the editor wrote them.
"""

from __future__ import annotations

import os
from pathlib import Path

import opentimelineio as otio

from rvm_render.otio.media_paths import local_path

__all__ = ["timeline_with_rebased_media", "rebased_path"]


def rebased_path(path: Path, relative_to: Path | None) -> str:
    """``path`` relative to ``relative_to`` (the written timeline's folder), or absolute when None."""
    if relative_to is not None:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(relative_to))
    return os.path.abspath(path)


def _is_relative(target: str) -> bool:
    if not target or ":" in target or target.startswith(("\\", "~")):
        return False  # empty, a URL, a Windows path or a home-relative one
    return not Path(target).is_absolute()


def _rebased(target: str, media_root: Path, relative_to: Path | None) -> str:
    if not _is_relative(target):
        return target
    rebased = rebased_path(local_path(target, media_root), relative_to)
    return rebased + "/" if target.endswith("/") else rebased


def timeline_with_rebased_media(
    timeline: otio.schema.Timeline, media_root: Path, *, relative_to: Path | None
) -> otio.schema.Timeline:
    """A copy of ``timeline`` whose relative media references point at the same files from ``relative_to``.

    Args:
        timeline: the edit as read.
        media_root: the folder its relative references start from (the timeline's, a bundle's).
        relative_to: the written timeline's folder to make them relative to; None: absolute.
    """
    result = timeline.deepcopy()
    for clip in result.find_clips():
        for reference in clip.media_references().values():
            if isinstance(reference, otio.schema.ImageSequenceReference):
                reference.target_url_base = _rebased(reference.target_url_base or "", media_root, relative_to)
            elif isinstance(reference, otio.schema.ExternalReference):
                reference.target_url = _rebased(reference.target_url or "", media_root, relative_to)
    return result
