"""The per-clip manifest ``OUTDIR/<stem>.rvm.json``: what was rendered, from what, into where.

Frame fields (``first_frame``, ``last_frame``, of the render, each output and each segment) are
frame *numbers*: for an image sequence the numbers in its file names (a plate starting at 1001
gives ``first_frame`` 1001, and ``path % first_frame`` names the first EXR), for a movie the
0-based frame index. Paths are absolute; a sequence's ``path`` is a printf pattern (``%%`` for
a literal ``%``).
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

from rvm_render.media.commit import remove_output, write_bytes_atomically
from rvm_render.media.fingerprint import InputFingerprint
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers import Background, OutputFormat, WrittenOutput, output_path

log = logging.getLogger(__name__)

__all__ = ["Manifest", "look_of", "manifest_path_for", "write_manifest", "commit_manifest", "MANIFEST_SUFFIX"]

MANIFEST_SUFFIX = ".rvm.json"


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything a downstream tool needs to find and trust one clip's mattes.

    Frame fields here are 0-based indices into ``info``, as everywhere inside rvm_render;
    :meth:`to_json` writes them as frame numbers.
    """

    info: MediaInfo
    first_frame: int
    last_frame: int
    variant: str
    weights_sha256: str
    downsample_ratio: float
    outputs: tuple[WrittenOutput, ...]
    segments: tuple[tuple[int, int], ...] = ()
    """``(first_frame, last_frame)`` of each segment of a segmented render; empty for one pass."""
    input_fingerprint: InputFingerprint | None = None
    """The input as rendered (as ``plan.json`` records it): a matte is reused only for this input."""
    look: dict[str, Any] | None = None
    """What shaped the pictures besides the engine (:func:`look_of`): a render is reused only with the same."""

    def to_json(self) -> dict[str, Any]:
        rate = self.info.rate
        number = self.info.frame_number
        document: dict[str, Any] = {
            "input": os.path.abspath(self.info.path),
            "frames": self.last_frame - self.first_frame + 1,
            "first_frame": number(self.first_frame),
            "last_frame": number(self.last_frame),
            "fps": f"{rate.numerator}/{rate.denominator}",
            "width": self.info.width,
            "height": self.info.height,
            "pixel_aspect": f"{self.info.pixel_aspect.numerator}/{self.info.pixel_aspect.denominator}",
            "timecode": self.info.timecode,
            "variant": self.variant,
            "weights_sha256": self.weights_sha256,
            "downsample_ratio": self.downsample_ratio,
            "outputs": [
                {
                    "format": str(output.format.value),
                    "path": os.path.abspath(output.path),
                    "first_frame": number(output.first_frame),
                    "last_frame": number(output.last_frame),
                }
                for output in self.outputs
            ],
        }
        if self.input_fingerprint is not None:
            document["input_fingerprint"] = dataclasses.asdict(self.input_fingerprint)
        if self.look is not None:
            document["look"] = self.look
        if self.segments:
            document["segments"] = [
                {"first_frame": number(first), "last_frame": number(last)} for first, last in self.segments
            ]
        return document


def look_of(formats: Sequence[OutputFormat], background: Background | None, warmup_frames: int) -> dict[str, Any]:
    """The settings besides the engine that shape a render's pictures, as its manifest records them.

    The warm start changes every output's first frames; the backdrop only the ``comp`` (None:
    the default, or no comp).
    """
    backdrop = None
    if background is not None and OutputFormat.COMP in formats:
        backdrop = {"kind": background.kind, "colour": list(background.colour),
                    "path": None if background.path is None else os.path.abspath(background.path)}  # fmt: skip
    return {"warmup_frames": warmup_frames, "background": backdrop}


def manifest_path_for(output_dir: Path, stem: str) -> Path:
    return output_dir / f"{stem}{MANIFEST_SUFFIX}"


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write ``manifest`` as indented JSON under a temp name and rename it into place."""
    text = json.dumps(manifest.to_json(), indent=2) + "\n"
    write_bytes_atomically(path, text.encode("utf-8"))
    return path


def _earlier_outputs(path: Path) -> list[tuple[OutputFormat, str]]:
    """(format, absolute path) of each output an existing manifest lists; none if it is unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [(OutputFormat(entry["format"]), str(entry["path"])) for entry in document.get("outputs", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def commit_manifest(manifest: Manifest, path: Path, *, overwrite: bool) -> Path:
    """Write a render's manifest; with ``overwrite``, retire what the clip's earlier render left.

    Overwriting a clip replaces its earlier render whole: every deliverable the earlier
    manifest lists that this render did not write again (another format, e.g. a ProRes from a
    run with other ``--formats``) is deleted once the new manifest is in place, so the folder
    holds exactly what the manifest lists. Only files at this clip's own output names are
    touched. (Frames of a sequence written again were already replaced whole when it was
    committed.)
    """
    earlier = _earlier_outputs(path) if overwrite and path.exists() else []
    write_manifest(manifest, path)
    kept = {os.path.abspath(output.path) for output in manifest.outputs}
    stem = path.name[: -len(MANIFEST_SUFFIX)]
    for fmt, old_path in earlier:
        own_name = os.path.abspath(output_path(fmt, path.parent, stem))
        if old_path in kept or old_path != own_name:
            continue
        if remove_output(Path(old_path), sequence=fmt.is_sequence):
            log.warning("removed %s of the earlier render of '%s' (--overwrite replaces it whole)", old_path, stem)
    return path
