"""A render an earlier run left in an output folder, and whether it still serves its input.

A render's manifest (``<stem>.rvm.json``) names its input, the input's fingerprint (size, mtime,
first MiB, as ``plan.json`` records it for resume), the frames, weights, downsample ratio and
outputs. An earlier render serves the same request again only when its input is unchanged (same
fingerprint and frames), it was rendered with these settings (weights, downsample ratio, every
deliverable asked for) and it is whole: every frame of a sequence on disk, every frame in a movie.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvm_render.errors import JobError, MediaError
from rvm_render.media.commit import remove_output
from rvm_render.media.fingerprint import InputFingerprint
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline.manifest import MANIFEST_SUFFIX

log = logging.getLogger(__name__)

__all__ = ["EarlierRender", "outputs_whole"]


@dataclass(frozen=True, slots=True)
class EarlierRender:
    """One earlier render, as its manifest lists it (frame numbers, absolute paths)."""

    manifest: Path
    input: str
    first_frame: int
    last_frame: int
    outputs: dict[OutputFormat, Path]
    document: dict[str, Any]

    @classmethod
    def read(cls, manifest: Path) -> EarlierRender | None:
        """The render ``manifest`` describes; None when it is missing or not a manifest of this version."""
        try:
            document = json.loads(manifest.read_text(encoding="utf-8"))
            outputs = {OutputFormat(o["format"]): Path(o["path"]) for o in document["outputs"]}
            return cls(manifest, str(document["input"]), int(document["first_frame"]), int(document["last_frame"]),
                       outputs, document)  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame + 1

    @property
    def stem(self) -> str:
        return self.manifest.name.removesuffix(MANIFEST_SUFFIX)

    def whole(self) -> bool:
        """Whether every output holds every frame of the range: each file of a sequence, a movie's frames."""
        for fmt, path in self.outputs.items():
            if fmt.is_sequence:
                numbers = range(self.first_frame, self.last_frame + 1)
                if not all(_non_empty(path.parent / (path.name % number)) for number in numbers):
                    return False
                continue
            try:
                if probe(path).frames != self.frames:
                    return False
            except MediaError:
                return False
        return True

    def remove(self) -> None:
        """Delete its outputs (every frame of a sequence), then its manifest: once a render that
        supersedes it is committed. A manifest left by an interrupted removal lists missing files,
        so it is never reused."""
        for fmt, path in self.outputs.items():
            remove_output(path, sequence=fmt.is_sequence)
        remove_output(self.manifest, sequence=False)
        log.info("removed '%s' and its outputs: a wider render holds its frames", self.manifest)

    def covers(self, first_frame: int, last_frame: int) -> bool:
        """Whether the render holds every one of these frame numbers (its range may be wider)."""
        return self.first_frame <= first_frame and last_frame <= self.last_frame

    def stale_because(self, info: MediaInfo, *, formats: Sequence[OutputFormat], weights_sha256: str,
                      downsample_ratio: float, variant: str | None = None, frames: tuple[int, int] | None = None,
                      look: dict[str, Any] | None = None) -> str | None:  # fmt: skip
        """Why this render does not serve ``info`` now, or None when it does.

        Args:
            info: the input as it is now.
            formats: the deliverables asked for.
            weights_sha256, downsample_ratio, variant: of the engine that would render it (variant: when known).
            frames: the 0-based (first, last) frame indices it must hold exactly; None: any range (the
                caller checks :meth:`covers`).
            look: the warm start and comp backdrop it must have been rendered with
                (:func:`~rvm_render.pipeline.manifest.look_of`); None: any (mattes of a conform).
        """
        recorded = self.document.get("input_fingerprint")
        if recorded is None:
            return "its manifest has no input fingerprint"
        try:
            fingerprint = dataclasses.asdict(InputFingerprint.of_media(info))
        except JobError:
            return "its input cannot be read"
        if os.path.abspath(info.path) != self.input:
            return f"it is a render of another input, '{self.input}'"
        if recorded != fingerprint:
            return "its input changed since it was rendered"
        if frames is not None and (self.first_frame, self.last_frame) != tuple(map(info.frame_number, frames)):
            return "it holds other frames"
        engine = (self.document.get("weights_sha256"), self.document.get("downsample_ratio"))
        if engine != (weights_sha256, downsample_ratio) or variant not in (None, self.document.get("variant")):
            return "it was rendered with other weights or another downsample ratio"
        if not set(formats) <= set(self.outputs):
            return "it lacks a deliverable asked for now"
        if look is not None and "look" not in self.document:
            return "its manifest, from an older version, does not record its warm start and comp background"
        if look is not None and self.document["look"] != look:
            return "it was rendered with another warm start or comp background"
        if not self.whole():
            return "frames of its outputs are missing or truncated"
        return None


def outputs_whole(paths: Sequence[str]) -> bool:
    """Whether a finished job's outputs are all still there: each file, and every frame its manifests list."""
    for path in map(Path, paths):
        if path.name.endswith(MANIFEST_SUFFIX):
            earlier = EarlierRender.read(path)
            if earlier is None or not earlier.whole():
                return False
        elif "%" not in path.name and not path.exists():
            return False
    return True


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
