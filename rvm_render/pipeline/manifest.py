"""The per-clip manifest ``OUTDIR/<stem>.rvm.json``: what was rendered, from what, into where."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvm_render.media.commit import write_bytes_atomically
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers import WrittenOutput

__all__ = ["Manifest", "manifest_path_for", "write_manifest", "MANIFEST_SUFFIX"]

MANIFEST_SUFFIX = ".rvm.json"


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything a downstream tool needs to find and trust one clip's mattes."""

    info: MediaInfo
    first_frame: int
    last_frame: int
    variant: str
    weights_sha256: str
    downsample_ratio: float
    outputs: tuple[WrittenOutput, ...]
    segments: tuple[tuple[int, int], ...] = ()
    """``(first_frame, last_frame)`` of each segment of a segmented render; empty for one pass."""

    def to_json(self) -> dict[str, Any]:
        rate = self.info.rate
        document: dict[str, Any] = {
            "input": os.path.abspath(self.info.path),
            "frames": self.last_frame - self.first_frame + 1,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
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
                    "first_frame": output.first_frame,
                    "last_frame": output.last_frame,
                }
                for output in self.outputs
            ],
        }
        if self.segments:
            document["segments"] = [{"first_frame": first, "last_frame": last} for first, last in self.segments]
        return document


def manifest_path_for(output_dir: Path, stem: str) -> Path:
    return output_dir / f"{stem}{MANIFEST_SUFFIX}"


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write ``manifest`` as indented JSON under a temp name and rename it into place."""
    text = json.dumps(manifest.to_json(), indent=2) + "\n"
    write_bytes_atomically(path, text.encode("utf-8"))
    return path
