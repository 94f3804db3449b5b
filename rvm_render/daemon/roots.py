"""The folders a render node may touch: every path is resolved (``..``, symlinks) and must lie inside one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rvm_render.errors import PathNotAllowedError

__all__ = ["MediaRoots"]


class MediaRoots:
    """The ``media_roots`` of a daemon's config."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = tuple(Path(os.path.realpath(root)) for root in roots)

    def contains(self, path: str | os.PathLike[str]) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def check(self, path: str | os.PathLike[str], what: str) -> Path:
        """``path`` resolved, when it lies inside a root.

        Raises:
            PathNotAllowedError: it resolves outside every root (also through ``..`` or a symlink).
        """
        real = Path(os.path.realpath(path))
        if self.contains(real):
            return real
        listed = ", ".join(str(root) for root in self.roots)
        raise PathNotAllowedError(
            f"{what} '{path}' resolves to '{real}', outside the media roots ({listed}); the daemon reads and writes "
            "only inside media_roots: move it there or add its folder to media_roots in the config"
        )
