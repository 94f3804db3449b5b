"""The one exception hierarchy of rvm_render.

Every error a user can cause is an :class:`RvmRenderError` whose message is one line:
the thing, the path, and the fix. ``cli.main`` catches it once and exits with ``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "RvmRenderError",
    "ConfigError",
    "WeightsError",
    "MediaError",
    "UnreadableMediaError",
    "UnsupportedFormatError",
    "OutputExistsError",
    "OutputError",
    "PathNotAllowedError",
    "TimelineError",
    "JobError",
    "JobNotFoundError",
    "CheckpointMismatchError",
    "NodeStorageError",
]


class RvmRenderError(Exception):
    """Base of every error rvm_render raises on purpose; the message is shown to the user."""

    exit_code: int = 1


class ConfigError(RvmRenderError):
    """A config file, flag or option value is invalid; the message names the field path."""

    exit_code = 2


class WeightsError(RvmRenderError):
    """Model weights are missing, corrupt, or of an unknown layout or variant."""


class MediaError(RvmRenderError, ValueError):
    """A media file cannot be used."""


class UnreadableMediaError(MediaError):
    """The input is missing, corrupt, truncated, or not video."""


class UnsupportedFormatError(MediaError):
    """The input or the requested output uses a format rvm_render does not handle."""


class OutputExistsError(RvmRenderError, FileExistsError):
    """An output would overwrite an existing file and overwriting was not asked for."""


class OutputError(RvmRenderError, OSError):
    """An output cannot be written: its folder is missing or read-only, or the disk is full."""


class PathNotAllowedError(RvmRenderError, PermissionError):
    """A path lies outside the allowed media roots."""


class TimelineError(RvmRenderError, ValueError):
    """A timeline cannot be read, or cannot be conformed as asked (``--strict``)."""


class JobError(RvmRenderError):
    """A render job or segment cannot proceed."""


class JobNotFoundError(JobError):
    """No job or segment with the given id exists."""


class CheckpointMismatchError(JobError):
    """A checkpoint on disk belongs to a different input, model or settings."""


class NodeStorageError(JobError):
    """A render node cannot write its own state (job store, posted timelines): its disk is full."""
