"""Where an edit's media is on this machine: target URLs as paths, and relinking by file name.

Editors write media locations in every form: ``file://`` URLs (``file:///Volumes/...``,
``file:///C:/...``, ``file://server/share/...``, percent-encoded), bare POSIX or Windows paths
(``/Volumes/Media/a.mov``, ``C:\\Media\\a.mov``, ``\\\\server\\share\\a.mov``), or paths relative to the
timeline. Every real export carries paths from its author's machine, so media that is not at its
recorded path is looked for by file name under the ``--relink`` folders.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

__all__ = ["local_path", "file_name", "MediaFinder"]

_WINDOWS_RE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|//)")


def _is_windows(text: str) -> bool:
    return bool(_WINDOWS_RE.match(text)) or ("\\" in text and "/" not in text)


def _url_path(url: str) -> str:
    """The path of a ``file:`` URL, as text in its own OS's form."""
    parsed = urlparse(url)
    path = unquote(parsed.path)
    if parsed.netloc not in ("", "localhost"):
        return f"//{parsed.netloc}{path}"  # file://server/share/x: a UNC path
    if re.match(r"^/[A-Za-z]:[\\/]", path):
        return path[1:]  # file:///C:/x
    return path


def local_path(target_url: str, base: Path) -> Path:
    """A media reference's target as a path (not checked): URLs decoded, relative paths joined to ``base``."""
    text = _url_path(target_url) if target_url.lower().startswith("file:") else target_url
    if _is_windows(text):
        return Path(text)  # another machine's path: found, if at all, by --relink
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def file_name(target: str | Path) -> str:
    """The last component of a path in any OS's form (``C:\\Media\\a.mov`` -> ``a.mov``)."""
    text = str(target)
    if text.lower().startswith("file:"):
        text = _url_path(text)
    return PureWindowsPath(text).name if _is_windows(text) else PurePosixPath(text).name


class MediaFinder:
    """Finds media that is not at its recorded path by file name under the relink folders.

    Each folder is walked once, on first use; a name found in several places is ambiguous and
    not guessed at.
    """

    def __init__(self, relink_dirs: Sequence[Path]) -> None:
        self.relink_dirs = tuple(relink_dirs)
        self._index: dict[str, list[Path]] | None = None

    def _by_name(self) -> dict[str, list[Path]]:
        if self._index is None:
            index: dict[str, list[Path]] = defaultdict(list)
            for folder in self.relink_dirs:
                for root, dirs, files in os.walk(folder):
                    dirs.sort()
                    for name in files:
                        index[name].append(Path(root) / name)
            self._index = dict(index)
        return self._index

    def find(self, recorded: Path) -> tuple[Path | None, str]:
        """(the media file, or None, and why: where it was found or why not)."""
        if recorded.exists():
            return recorded, "at its recorded path"
        if not self.relink_dirs:
            return None, f"media not found at '{recorded}'; pass --relink DIR to find it by name"
        name = file_name(recorded)
        candidates = self._by_name().get(name, [])
        if len(candidates) == 1:
            return candidates[0], f"relinked from '{recorded}'"
        folders = ", ".join(str(folder) for folder in self.relink_dirs)
        if not candidates:
            return None, f"media '{name}' not found at '{recorded}' nor under {folders}"
        listed = ", ".join(str(path) for path in candidates[:3])
        return None, f"media '{name}' is ambiguous: {len(candidates)} files of that name under {folders} ({listed})"
