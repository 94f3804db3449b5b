"""A small PNG of a matte over a checkerboard, for status pages: the last frame of a movie or sequence."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import OpenEXR

from rvm_render.media.commit import sequence_files
from rvm_render.media.frame_pattern import frame_field

__all__ = ["matte_thumbnail_png", "CHECKER_PX"]

CHECKER_PX = 16


def _last_movie_frame(path: Path) -> np.ndarray:
    """RGBA float32 of a movie's last frame (a grey matte: its luma as alpha over white)."""
    last = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration:  # near the end: intra-only mattes decode just the last frames
            container.seek(stream.duration + (stream.start_time or 0), stream=stream, backward=True)
        for frame in container.decode(stream):
            last = frame
    if last is None:
        raise ValueError(f"'{path}' holds no frames")
    if last.format.name.startswith(("yuva", "rgba", "bgra", "gbrap")):
        return last.to_ndarray(format="rgba64le").astype(np.float32) / 65535
    grey = last.to_ndarray(format="gray16le").astype(np.float32) / 65535
    return np.dstack([np.ones_like(grey)] * 3 + [grey])


def _last_sequence_frame(pattern: Path) -> np.ndarray:
    files = sequence_files(pattern)
    if not files:
        raise ValueError(f"no frames of '{pattern}'")
    last = files[-1]
    if last.suffix.lower() == ".exr":
        channels = OpenEXR.File(str(last), separate_channels=True).channels()
        return np.dstack([np.asarray(channels[c].pixels, np.float32) for c in "RGBA"])
    with av.open(str(last)) as container:
        frame = next(container.decode(video=0))
    return frame.to_ndarray(format="rgba64le").astype(np.float32) / 65535


def matte_thumbnail_png(path: Path, max_width: int = 320) -> bytes:
    """PNG bytes: the last frame of the matte movie or sequence ``path``, over a checkerboard.

    Raises:
        ValueError: no frame can be read.
    """
    try:
        rgba = _last_sequence_frame(path) if frame_field(path.name) else _last_movie_frame(path)
    except (av.error.FFmpegError, OSError, RuntimeError) as err:
        raise ValueError(f"cannot read '{path}': {err}") from err
    height, width = rgba.shape[:2]
    yy, xx = np.mgrid[:height, :width]
    checker = np.where(((yy // CHECKER_PX) + (xx // CHECKER_PX)) % 2 == 0, 0.8, 0.55).astype(np.float32)
    alpha = np.clip(rgba[..., 3:], 0.0, 1.0)
    picture = np.clip(rgba[..., :3], 0.0, 1.0) * alpha + checker[..., None] * (1 - alpha)
    frame = av.VideoFrame.from_ndarray((picture * 255 + 0.5).astype(np.uint8), format="rgb24")
    if width > max_width:
        frame = frame.reformat(width=max_width, height=max(2, round(height * max_width / width)))
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "rgb24"
    return b"".join(bytes(p) for p in (*codec.encode(frame), *codec.encode(None)))
