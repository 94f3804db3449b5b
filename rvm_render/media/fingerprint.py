"""The identity of an input file, cheap enough for multi-GB files: size, mtime and the first MiB.

A work dir's ``plan.json`` records it so a resume never mixes two versions of a source; a clip's
manifest records it so a matte is reused only for the source it was rendered from.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rvm_render.errors import JobError
from rvm_render.media.probe import MediaInfo, sequence_frame_path

__all__ = ["HEAD_BYTES", "InputFingerprint"]

HEAD_BYTES = 1 << 20
"""How much of the input the fingerprint hashes (with its size and mtime)."""


@dataclass(frozen=True, slots=True)
class InputFingerprint:
    """Identity of an input file: size, mtime, sha256 of its first MiB."""

    path: str
    size_bytes: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> InputFingerprint:
        """Fingerprint a file (for an image sequence, pass its first file).

        Raises:
            JobError: the file cannot be read.
        """
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
            with resolved.open("rb") as stream:
                head = stream.read(HEAD_BYTES)
        except OSError as err:
            raise JobError(f"cannot fingerprint input '{resolved}': {err.strerror}; check the path") from err
        return cls(str(resolved), stat.st_size, stat.st_mtime_ns, hashlib.sha256(head).hexdigest())

    @classmethod
    def of_media(cls, info: MediaInfo) -> InputFingerprint:
        """Fingerprint probed media: the container, or an image sequence's first frame."""
        return cls.of(sequence_frame_path(info, 0) if info.is_sequence else info.path)
