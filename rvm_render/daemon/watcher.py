"""Hot folders: what is dropped in a watch folder is reported once it is complete.

File-system events (watchdog; its polling observer for network shares, ``poll: true``) and a
scan at start-up mark top-level entries of a watch folder as *pending*. :meth:`HotFolders.tick`
reports a pending entry once its signature (a file's size and mtime; a folder's list of files
with theirs) has not changed for ``settle_seconds``. Temporary names (``.part``, ``.tmp``,
``.crdownload``, ``~``, dotfiles) and a folder's own README (``watchfolders/incoming/README.md``)
are ignored; a folder of numbered images is one entry, ready
once it stops growing. Nothing here moves, renames, modifies or deletes anything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from rvm_render.daemon.config import WatchFolder

log = logging.getLogger(__name__)

__all__ = ["HotFolders", "is_temporary_name", "TEMPORARY_SUFFIXES", "FOLDER_NOTES"]

TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", "~")
#: The notes a watch folder carries in the repository (watchfolders/*/README.md): never media, never a job.
FOLDER_NOTES = frozenset({"readme", "readme.md", "readme.txt"})

Signature = tuple[tuple[str, int, int], ...]


def is_temporary_name(name: str) -> bool:
    """Whether a name is one copy tools and editors give files still being written (or hidden)."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def _signature(path: Path) -> Signature | None:
    """What changes while an entry is being written; None when it is gone or an empty folder."""
    try:
        if path.is_dir():
            entries = sorted(
                (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                for entry in os.scandir(path)
                if entry.is_file() and not is_temporary_name(entry.name)
            )
            return tuple(entries) or None
        stat = path.stat()
        return ((path.name, stat.st_size, stat.st_mtime_ns),)
    except OSError:
        return None


def _mtime_ns(path: Path) -> int:
    """When ``path`` (or a link itself, when it leads nowhere) was last changed."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return path.lstat().st_mtime_ns


@dataclass
class _Pending:
    folder: WatchFolder
    signature: Signature | None
    since: float


#: Events of something being written (reads, which the daemon's own probing causes, are not).
_WRITE_EVENTS = frozenset({"created", "modified", "moved", "closed"})


class _Events(FileSystemEventHandler):
    def __init__(self, hot: HotFolders, folder: WatchFolder) -> None:
        self.hot = hot
        self.folder = folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WRITE_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.hot.touch(self.folder, Path(os.fsdecode(raw)))


class HotFolders:
    """The watch folders of a daemon; ``on_ready(folder, entry)`` for each entry once complete.

    Args:
        folders: the watch folders (created if missing).
        settle_seconds: how long an entry must stay unchanged.
        on_ready: called from :meth:`tick` (the caller's thread) with each complete entry; it may
            call :meth:`recheck` to look at the entry again one settle period later.
    """

    def __init__(
        self,
        folders: Sequence[WatchFolder],
        settle_seconds: float,
        on_ready: Callable[[WatchFolder, Path], None],
    ) -> None:
        self.folders = tuple(folders)
        self.settle_seconds = settle_seconds
        self.on_ready = on_ready
        self._pending: dict[Path, _Pending] = {}
        self._lock = threading.Lock()
        self._observers: list[BaseObserver] = []

    def start(self) -> None:
        """Create the folders, start watching them, and mark what is already there as pending."""
        events, polling = Observer(), PollingObserver(timeout=1)
        for folder in self.folders:
            folder.path.mkdir(parents=True, exist_ok=True)
            folder.output.mkdir(parents=True, exist_ok=True)
            observer = polling if folder.poll else events
            observer.schedule(_Events(self, folder), str(folder.path), recursive=True)
        for observer in (events, polling):
            if observer.emitters:
                observer.start()
                self._observers.append(observer)
        for folder in self.folders:
            for entry in sorted(folder.path.iterdir(), key=lambda p: (_mtime_ns(p), p.name)):
                self.touch(folder, entry)
        log.info("watching %s", ", ".join(f"{f.path} ({f.kind.value})" for f in self.folders))

    def stop(self) -> None:
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        self._observers.clear()

    def touch(self, folder: WatchFolder, path: Path) -> None:
        """Something changed at ``path``: its top-level entry under ``folder`` is pending again."""
        try:
            relative = path.relative_to(folder.path)
        except ValueError:
            return
        parts = relative.parts
        if not parts or any(is_temporary_name(part) for part in parts) or parts[0].lower() in FOLDER_NOTES:
            return
        entry = folder.path / relative.parts[0]
        with self._lock:
            self._pending[entry] = _Pending(folder, None, time.monotonic())

    def recheck(self, folder: WatchFolder, entry: Path) -> None:
        """Look at ``entry`` again once it has stayed unchanged for another settle period."""
        with self._lock:
            self._pending[entry] = _Pending(folder, _signature(entry), time.monotonic())

    def tick(self) -> None:
        """Report the pending entries that have stayed unchanged for ``settle_seconds``."""
        now = time.monotonic()
        ready: list[tuple[WatchFolder, Path]] = []
        with self._lock:
            for entry, pending in list(self._pending.items()):
                signature = _signature(entry)
                if signature is None:
                    if not entry.exists():
                        del self._pending[entry]  # gone again
                    continue
                if signature != pending.signature:
                    pending.signature, pending.since = signature, now
                elif now - pending.since >= self.settle_seconds:
                    del self._pending[entry]
                    ready.append((pending.folder, entry))
        for folder, entry in ready:
            self.on_ready(folder, entry)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)
