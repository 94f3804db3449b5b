"""What the node takes in: which watch-folder entries are inputs, and untrusted files read in a child.

A watch folder takes media by extension and content: a clip folder takes the containers of
:data:`CONTAINER_EXTENSIONS` and the images of :data:`~rvm_render.media.probe.IMAGE_EXTENSIONS`
(a file, or a folder of numbered frames), a timeline folder the formats of
:data:`TIMELINE_SUFFIXES`; each must then read as what it claims to be. Never taken: names
that are not valid UTF-8 (they cannot be stored or named in a manifest), links that lead out
of ``media_roots`` or nowhere, anything that is not a regular file or a folder (FIFOs, sockets,
devices: reading one blocks), and the daemon's own side files (``.rvm.json``, ``.rvm.otio``,
``.error.txt``). Every file is probed or read in a child process
(:mod:`~rvm_render.media.untrusted`), so a file that crashes a reader fails as a job instead of
taking the node down.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rvm_render.daemon.roots import MediaRoots
from rvm_render.daemon.runner import ERROR_SUFFIX
from rvm_render.errors import MediaError
from rvm_render.jobs.store import JobKind
from rvm_render.media.probe import IMAGE_EXTENSIONS, MediaInfo, probe
from rvm_render.media.untrusted import parse_untrusted, preload_parsers
from rvm_render.otio.reading import check_timeline

__all__ = [
    "CONTAINER_EXTENSIONS",
    "TIMELINE_SUFFIXES",
    "SIDE_FILE_STEM_SUFFIX",
    "watch_entry_refusal",
    "refuse_special_file",
    "probed",
    "checked_timeline",
    "preload_readers",
]

#: Movie containers a clip watch folder takes (with the images of IMAGE_EXTENSIONS).
CONTAINER_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".mkv", ".webm", ".mxf", ".avi"})
TIMELINE_SUFFIXES = frozenset({".otio", ".otioz", ".otiod", ".xml", ".fcpxml"})
#: ``take.rvm.json``, ``edit.rvm.otio``, ``edit.rvm.xml``: files the daemon writes beside its outputs.
SIDE_FILE_STEM_SUFFIX = ".rvm"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode turned the undecodable bytes into lone surrogates
        return False
    return True


def watch_entry_refusal(kind: JobKind, entry: Path, roots: MediaRoots) -> str | None:
    """Why ``entry`` (a top-level entry of a ``kind`` watch folder) is not an input; None when it may be one."""
    name = entry.name
    if not _is_utf8(name):
        return "its name is not valid UTF-8 (as some Windows shares write it); rename it"
    if Path(name.lower()).stem.endswith(SIDE_FILE_STEM_SUFFIX) or name.lower().endswith(ERROR_SUFFIX):
        return "it is a file the daemon writes beside its outputs"
    if not roots.contains(entry):
        return "it is a link that leads outside media_roots"
    try:
        mode = os.stat(entry).st_mode
    except OSError as err:
        return f"it cannot be read ({err.strerror}; a link to nothing?)"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "it is not a regular file or a folder (a pipe, socket or device)"
    if kind == JobKind.TIMELINE:
        if entry.suffix.lower() not in TIMELINE_SUFFIXES:
            return f"it is not a timeline ({', '.join(sorted(TIMELINE_SUFFIXES))})"
    elif stat.S_ISREG(mode) and entry.suffix.lower() not in CONTAINER_EXTENSIONS | IMAGE_EXTENSIONS:
        return f"it is not media ({', '.join(sorted(CONTAINER_EXTENSIONS | IMAGE_EXTENSIONS))})"
    return None


def refuse_special_file(path: Path, what: str) -> None:
    """Raises MediaError when ``path`` exists and is neither a regular file nor a folder (reading a FIFO blocks)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing (a sequence pattern, or the probe names it)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise MediaError(f"{what} '{path}' is not a regular file (a pipe, socket or device); give a clip, an "
                         "image sequence or a timeline file")  # fmt: skip


def probed(path: Path, what: str) -> MediaInfo:
    """:func:`~rvm_render.media.probe.probe` in a child process with limits.

    Raises:
        MediaError: not media, not a regular file, or the probe crashed or timed out.
    """
    refuse_special_file(path, what)
    return parse_untrusted(probe, path, what=f"{what} '{path}'")


def checked_timeline(path: Path, what: str) -> Path:
    """``path``, once it reads whole as a timeline in a child process with limits.

    Raises:
        TimelineError: it does not read as a timeline; MediaError: the reader crashed or timed out.
    """
    refuse_special_file(path, what)
    parse_untrusted(check_timeline, path, what=f"{what} '{path}'")
    return path


def preload_readers() -> None:
    """Load the readers once in the fork server the checks run from (call at start-up)."""
    preload_parsers(probe, check_timeline)
