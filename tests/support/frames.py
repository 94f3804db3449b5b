"""Realistic mattes from real frames, raw plane access for decoded high-bit-depth video, short real clips,
mattes read back from EXR sequences."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import OpenEXR

__all__ = ["luma_matte", "planes_of", "short_clip", "exr_alphas"]


def luma_matte(rgb: np.ndarray, radius: int = 7) -> np.ndarray:
    """A realistic soft matte from the frame: box-blurred BT.709 luma stretched over 0..1.

    Gives solid 0 and 1 regions with smooth ramps between them, like a matting network's
    output (grain-free, soft edges a few pixels wide).

    Shape:
        rgb: [H, W, 3] float32 0..1 -> [H, W] float32 0..1
    """
    luma = (rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).astype(np.float64)
    size = 2 * radius + 1
    for axis in (0, 1):
        padded = np.pad(luma, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        summed = np.cumsum(padded, axis=axis)
        upper = np.take(summed, range(size, summed.shape[axis]), axis=axis)
        lower = np.take(summed, range(0, summed.shape[axis] - size), axis=axis)
        luma = (upper - lower) / size
    return np.clip((luma - 0.3) * 3.0, 0.0, 1.0).astype(np.float32)


def planes_of(frame: av.VideoFrame) -> list[np.ndarray]:
    """The planes of a 16-bit-container frame (e.g. yuva444p10le) as int64 arrays, padding cut."""
    return [
        np.frombuffer(p, np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width].astype(np.int64)
        for p in frame.planes
    ]


def short_clip(source: Path, target: Path, frames: int, *, fast_start: bool = False,
               same_pts: bool = False) -> Path:  # fmt: skip
    """The first ``frames`` video packets of a real clip remuxed into ``target`` (no re-encode).

    ``fast_start``: the index (moov) first, so a partial copy already lists every frame; ``same_pts``:
    every packet stamped 0, as some muxers write them.
    """
    options = {"movflags": "faststart"} if fast_start else {}
    with av.open(str(source)) as inp, av.open(str(target), "w", options=options) as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        copied = 0
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = video
                if same_pts:
                    packet.pts = packet.dts = 0
                out.mux(packet)
                copied += 1
                if copied == frames:
                    break
    return target


def exr_alphas(pattern: Path, numbers: range) -> np.ndarray:
    """Channel A of the EXR frames ``numbers`` of a printf ``pattern``, as stored (half float).

    Shape:
        -> [N, H, W]
    """
    frames = []
    for number in numbers:
        with OpenEXR.File(str(pattern.parent / (pattern.name % number)), separate_channels=True) as exr:
            frames.append(np.asarray(exr.channels()["A"].pixels))
    return np.stack(frames)

