"""Write under a temporary name in the target folder, rename when complete.

A file output is encoded to ``.<stem>.partial-<pid><ext>`` next to its final name and moved
into place with one rename (atomic on POSIX, same file system). A sequence is written into
a unique hidden folder ``.<name><ext>.partial-<pid>-XXXX/`` in the target folder and its frames
are renamed into place when the sequence is complete. Readers and watch folders therefore
never see a half-written deliverable. Nothing existing is replaced unless ``overwrite`` is
set; a sequence that is replaced loses every old frame, not only those written again.

A process killed before it could clean up (``kill -9``, power loss) leaves its temporary file
or folder behind; the next time the same deliverable is written, temporaries whose process is
gone are removed. Every failure to create, write or rename an output is an
:class:`~rvm_render.errors.OutputError` naming the path.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from rvm_render.errors import OutputError, OutputExistsError
from rvm_render.media.frame_pattern import file_name_regex, frame_field

log = logging.getLogger(__name__)

__all__ = [
    "check_writable_folder",
    "ensure_absent",
    "ensure_sequence_absent",
    "output_error",
    "writing_to",
    "sequence_files",
    "remove_sequence",
    "PartialFile",
    "PartialSequence",
    "write_bytes_atomically",
    "link_sequence_into_place",
]

_PARTIAL = ".partial-"


def _exists_error(path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"output '{path}' already exists; pass --overwrite to replace it or pick another output folder"
    )


def output_error(path: str | os.PathLike[str], err: BaseException) -> OutputError:
    """The one-line error for an output that cannot be written (folder missing or read-only, disk full)."""
    reason = getattr(err, "strerror", None) or str(err)
    return OutputError(
        f"cannot write '{path}': {reason}; pick an output folder that exists, is writable and has free space"
    )


def check_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and write (and remove) a file in it: a run checks its output once, up front.

    Raises:
        OutputError: the folder cannot be created or written (read-only, not a folder, disk full).
    """
    with writing_to(folder):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".rvm-write-check-"):
            pass


@contextmanager
def writing_to(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an :class:`OutputError`."""
    try:
        yield
    except (OutputError, OutputExistsError):
        raise
    except OSError as err:
        raise output_error(path, err) from err


def ensure_absent(path: Path, *, overwrite: bool) -> None:
    """Refuse an existing output file.

    Raises:
        OutputExistsError: something is there and ``overwrite`` is False.
    """
    if not overwrite and (path.exists() or path.is_symlink()):
        raise _exists_error(path)


def ensure_sequence_absent(pattern: Path, *, overwrite: bool) -> None:
    """Refuse a sequence output of which any frame exists (``pattern`` is a printf pattern).

    Raises:
        OutputExistsError: a frame is there and ``overwrite`` is False.
    """
    if overwrite:
        return
    existing = sequence_files(pattern)
    if existing:
        raise _exists_error(existing[0])


def sequence_files(pattern: Path) -> list[Path]:
    """Existing files matching a printf pattern like ``shot.%06d.exr`` (sorted)."""
    field = frame_field(pattern.name)
    if field is None or not pattern.parent.is_dir():
        return []
    regex = file_name_regex(pattern.name, field)
    return sorted(pattern.parent / name for name in os.listdir(pattern.parent) if regex.match(name))


def remove_sequence(pattern: Path, *, keep: frozenset[Path] = frozenset()) -> int:
    """Delete every frame file of ``pattern`` except those in ``keep``; returns how many went."""
    removed = 0
    for path in sequence_files(pattern):
        if path not in keep:
            with writing_to(path):
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_output(path: Path, *, sequence: bool) -> int:
    """Delete a committed deliverable: every frame file of a sequence (``path`` its printf pattern) or
    the one file; returns how many files went."""
    if sequence:
        return remove_sequence(path)
    with writing_to(path):
        removed = int(os.path.lexists(path))
        path.unlink(missing_ok=True)
    return removed


def _owner_is_gone(pid_text: str) -> bool:
    """Whether the process that named a temporary with ``pid_text`` has ended (on this host)."""
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not psutil.pid_exists(pid)


def _sweep_stale(folder: Path, name_pattern: re.Pattern[str], remove: Callable[[Path], None]) -> None:
    """Remove temporaries in ``folder`` whose name matches (group 1: the writer's pid) and whose writer is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = name_pattern.fullmatch(name)
        if match and _owner_is_gone(match.group(1)):
            log.info("removing '%s', left by an interrupted render (process %s)", folder / name, match.group(1))
            try:
                remove(folder / name)
            except OSError as err:
                log.warning("could not remove stale '%s': %s", folder / name, err)


def _move_into_place(partial: Path, final: Path, *, overwrite: bool) -> None:
    """Rename ``partial`` to ``final``; without overwrite never replaces a file that appeared meanwhile."""
    with writing_to(final):
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
    """One output file written under a temporary name beside ``final_path``.

    Raises:
        OutputExistsError: ``final_path`` exists and ``overwrite`` is False.
        OutputError: its folder cannot be created.
    """

    def __init__(self, final_path: Path, *, overwrite: bool) -> None:
        ensure_absent(final_path, overwrite=overwrite)
        with writing_to(final_path.parent):
            final_path.parent.mkdir(parents=True, exist_ok=True)
        self.final_path = final_path
        self.overwrite = overwrite
        prefix = f".{final_path.stem}{_PARTIAL}"
        stale = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(final_path.suffix))
        _sweep_stale(final_path.parent, stale, lambda path: path.unlink(missing_ok=True))
        self.path = final_path.with_name(f"{prefix}{os.getpid()}{final_path.suffix}")

    def commit(self) -> Path:
        """Move the finished file into place; returns the final path."""
        _move_into_place(self.path, self.final_path, overwrite=self.overwrite)
        log.debug("committed %s", self.final_path)
        return self.final_path

    def abort(self) -> None:
        """Delete the temporary file (if any)."""
        self.path.unlink(missing_ok=True)


class PartialSequence:
    """A numbered sequence written into a hidden folder beside its final frames.

    Raises:
        OutputExistsError: a frame of ``final_pattern`` exists and ``overwrite`` is False.
        OutputError: the folder cannot be created.
    """

    def __init__(self, final_pattern: Path, *, overwrite: bool) -> None:
        field = frame_field(final_pattern.name)
        if field is None:
            raise ValueError(f"'{final_pattern.name}' has no frame field (%d or %0Nd)")
        ensure_sequence_absent(final_pattern, overwrite=overwrite)
        self.final_pattern = final_pattern
        self.overwrite = overwrite
        name = field.prefix(final_pattern.name).rstrip("._") or "frames"
        prefix = f".{name}{final_pattern.suffix}{_PARTIAL}"
        folder = final_pattern.parent
        with writing_to(folder):
            folder.mkdir(parents=True, exist_ok=True)
            _sweep_stale(folder, re.compile(re.escape(prefix) + r"(\d+)-\w+"), shutil.rmtree)
            self.folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder))
        self._numbers: list[int] = []

    def path_for(self, number: int) -> Path:
        """Temporary path of frame ``number``; records it for :meth:`commit`."""
        self._numbers.append(number)
        return self.folder / (self.final_pattern.name % number)

    def commit(self) -> list[Path]:
        """Move every written frame into place, then remove the temporary folder.

        With ``overwrite``, frames of an earlier sequence of the same name that were not
        written again are deleted, so the sequence holds exactly the new frames.
        """
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
        if self.overwrite:
            stale = remove_sequence(self.final_pattern, keep=frozenset(finals))
            if stale:
                log.info("removed %d frames of the earlier %s that this render replaced", stale, self.final_pattern)
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
        OutputError: the file cannot be written.
    """
    path = Path(path)
    partial = PartialFile(path, overwrite=overwrite)
    try:
        with writing_to(path), open(partial.path, "wb") as handle:
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
        overwrite: replace an existing sequence (all of its frames) instead of raising.

    Returns:
        The final frame paths, in frame-number order.

    Raises:
        OutputExistsError: a frame exists and ``overwrite`` is False.
        OutputError: a frame cannot be written.
    """
    partial = PartialSequence(final_pattern, overwrite=overwrite)
    try:
        for number in sorted(files):
            target = partial.path_for(number)
            with writing_to(target):
                try:
                    os.link(files[number], target)
                except OSError:
                    shutil.copy2(files[number], target)
        return partial.commit()
    except BaseException:
        partial.abort()
        raise
