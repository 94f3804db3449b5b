"""Write under a temporary name in the target folder, rename when complete.

A file output is encoded to ``.<stem>.partial-<pid><ext>`` next to its final name and moved
into place with one rename (atomic on POSIX, same file system). A sequence is written into
a unique hidden folder ``.<stem><ext>.partial-XXXX/`` in the target folder and its frames are renamed
into place when the sequence is complete. Readers and watch folders therefore never see a
half-written deliverable. Nothing existing is replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from rvm_render.errors import OutputExistsError

log = logging.getLogger(__name__)

__all__ = [
    "ensure_absent",
    "sequence_files",
    "PartialFile",
    "PartialSequence",
    "write_bytes_atomically",
    "link_sequence_into_place",
]


def _exists_error(path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"output '{path}' already exists; pass --overwrite to replace it or pick another output folder"
    )


def ensure_absent(path: Path, *, overwrite: bool) -> None:
    """Refuse an existing output (file, or any frame of a printf sequence pattern).

    Raises:
        OutputExistsError: something is there and ``overwrite`` is False.
    """
    if overwrite:
        return
    if "%" in path.name:
        existing = sequence_files(path)
        if existing:
            raise _exists_error(existing[0])
    elif path.exists() or path.is_symlink():
        raise _exists_error(path)


def sequence_files(pattern: Path) -> list[Path]:
    """Existing files matching a printf pattern like ``shot.%06d.exr`` (sorted)."""
    match = re.search(r"%0?(\d*)d", pattern.name)
    if match is None or not pattern.parent.is_dir():
        return []
    width = match.group(1)
    digits = rf"\d{{{width}}}" if width else r"\d+"
    regex = re.compile(
        re.escape(pattern.name[: match.start()]) + digits + re.escape(pattern.name[match.end() :]) + r"\Z"
    )
    return sorted(pattern.parent / name for name in os.listdir(pattern.parent) if regex.match(name))


def _move_into_place(partial: Path, final: Path, *, overwrite: bool) -> None:
    """Rename ``partial`` to ``final``; without overwrite never replaces a file that appeared meanwhile."""
    if overwrite:
        os.replace(partial, final)
        return
    try:
        os.link(partial, final)  # fails if final exists: no-clobber even against a racing writer
    except FileExistsError:
        raise _exists_error(final) from None
    except OSError:  # file system without hard links
        if final.exists():
            raise _exists_error(final) from None
        os.replace(partial, final)
        return
    os.unlink(partial)


class PartialFile:
    """One output file written under a temporary name beside ``final_path``."""

    def __init__(self, final_path: Path, *, overwrite: bool) -> None:
        ensure_absent(final_path, overwrite=overwrite)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        self.final_path = final_path
        self.overwrite = overwrite
        self.path = final_path.with_name(f".{final_path.stem}.partial-{os.getpid()}{final_path.suffix}")

    def commit(self) -> Path:
        """Move the finished file into place; returns the final path."""
        _move_into_place(self.path, self.final_path, overwrite=self.overwrite)
        log.debug("committed %s", self.final_path)
        return self.final_path

    def abort(self) -> None:
        """Delete the temporary file (if any)."""
        self.path.unlink(missing_ok=True)


class PartialSequence:
    """A numbered sequence written into a hidden folder beside its final frames."""

    def __init__(self, final_pattern: Path, *, overwrite: bool) -> None:
        ensure_absent(final_pattern, overwrite=overwrite)
        final_pattern.parent.mkdir(parents=True, exist_ok=True)
        self.final_pattern = final_pattern
        self.overwrite = overwrite
        stem = final_pattern.name.split("%", 1)[0].rstrip("._") or "frames"
        prefix = f".{stem}{final_pattern.suffix}.partial-"
        self.folder = Path(tempfile.mkdtemp(prefix=prefix, dir=final_pattern.parent))
        self._numbers: list[int] = []

    def path_for(self, number: int) -> Path:
        """Temporary path of frame ``number``; records it for :meth:`commit`."""
        self._numbers.append(number)
        return self.folder / (self.final_pattern.name % number)

    def commit(self) -> list[Path]:
        """Move every written frame into place, then remove the temporary folder."""
        if not self.overwrite:
            for number in self._numbers:
                final = self.final_pattern.with_name(self.final_pattern.name % number)
                if final.exists():
                    raise _exists_error(final)
        finals = []
        for number in self._numbers:
            name = self.final_pattern.name % number
            final = self.final_pattern.with_name(name)
            _move_into_place(self.folder / name, final, overwrite=self.overwrite)
            finals.append(final)
        shutil.rmtree(self.folder, ignore_errors=True)
        log.debug("committed %d frames of %s", len(finals), self.final_pattern)
        return finals

    def abort(self) -> None:
        """Delete the temporary folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)


def write_bytes_atomically(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write a small file (manifest, checkpoint) whole or not at all.

    The bytes go to a hidden temporary file beside ``path``, are flushed to disk, and the
    file is renamed into place. Replaces an existing file unless ``overwrite`` is False.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    partial = PartialFile(path, overwrite=overwrite)
    try:
        with open(partial.path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return partial.commit()
    except BaseException:
        partial.abort()
        raise


def link_sequence_into_place(files: dict[int, Path], final_pattern: Path, *, overwrite: bool) -> list[Path]:
    """Put finished frame files in place as a sequence, leaving the sources where they are.

    Each source is hard-linked (copied across file systems) into the hidden folder of a
    :class:`PartialSequence`, which is then committed: a reader sees the whole sequence or
    none of it, and the sources stay intact until the caller removes them, so an interrupted
    call can simply be repeated.

    Args:
        files: frame number -> finished file.
        final_pattern: printf pattern of the deliverable (``shot_matte.%06d.exr``).
        overwrite: replace existing frames instead of raising.

    Returns:
        The final frame paths, in frame-number order.

    Raises:
        OutputExistsError: a frame exists and ``overwrite`` is False.
    """
    partial = PartialSequence(final_pattern, overwrite=overwrite)
    try:
        for number in sorted(files):
            target = partial.path_for(number)
            try:
                os.link(files[number], target)
            except OSError:
                shutil.copy2(files[number], target)
        return partial.commit()
    except BaseException:
        partial.abort()
        raise
