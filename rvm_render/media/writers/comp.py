"""Composite review movie (``<stem>_comp.mp4``): the subject over a colour, image or video.

``comp = fgr * pha + bg * (1 - pha)`` in R'G'B' (no linearisation, as RVM's own demo does),
encoded as H.264 (libx264, crf 18, ``yuv420p``) tagged with the source's colour (BT.709 when
untagged), limited range, with the source audio copied. Image and video backgrounds are scaled
to the frame size (not cropped); a video background shorter than the clip loops. Still images
are decoded with their own colour tags (a JPEG with BT.601's matrix, as JPEG defines).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from rvm_render.errors import MediaError, UnreadableMediaError, UnsupportedFormatError
from rvm_render.media import colour
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.reader import FrameReader, image_rgb, open_reader
from rvm_render.media.writers.background import Background
from rvm_render.media.writers.container import ContainerWriter
from rvm_render.media.writers.output import OutputFormat, WrittenOutput

__all__ = ["CompWriter", "composite", "chroma_420", "BackgroundSource"]

PIX_FMT = "yuv420p"
CONTAINER_OPTIONS = {"movflags": "+faststart"}


def composite(fgr: np.ndarray, pha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``fgr * pha + bg * (1 - pha)``.

    Shape:
        fgr, bg: [H, W, 3] float32 0..1; pha: [H, W] float32 0..1 -> [H, W, 3] float32
    """
    alpha = np.clip(pha, 0.0, 1.0)[..., None]
    return bg + (fgr - bg) * alpha


def _background_image(path: Path) -> np.ndarray:
    """A still background as decoded R'G'B' (its own colour tags; 16-bit when the image is deeper)."""
    if path.suffix.lower() == ".exr":
        return image_rgb(path, wide=True)
    try:
        with av.open(str(path)) as container:
            wide = max(c.bits for c in container.streams.video[0].format.components) > 8
    except (av.error.FFmpegError, IndexError) as err:
        raise UnreadableMediaError(
            f"cannot read background image '{path}': not a readable image; pick another"
        ) from err
    return image_rgb(path, wide=wide)


def _resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8/uint16 R'G'B' scaled to width x height, as float32 0..1."""
    wide = rgb.dtype == np.uint16
    if rgb.shape[:2] != (height, width):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb48le" if wide else "rgb24")
        rgb = frame.reformat(width=width, height=height, interpolation="BICUBIC").to_ndarray()
    return rgb.astype(np.float32) * np.float32(1.0 / (65535.0 if wide else 255.0))


class BackgroundSource:
    """Background frames at the output size: ``frame()`` -> [H, W, 3] float32.

    ``first_frame``: a video background starts at this frame (modulo its length), so a render
    split into segments shows the same background frames as one pass.
    """

    def __init__(self, background: Background, width: int, height: int, *, first_frame: int = 0) -> None:
        self.background = background
        self.width, self.height = width, height
        self._first_frame = first_frame
        self._still: np.ndarray | None = None
        self._video: MediaInfo | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._reader: FrameReader | None = None
        if background.kind == "colour":
            self._still = np.empty((height, width, 3), dtype=np.float32)
            self._still[:] = np.asarray(background.colour, dtype=np.float32)
        elif background.kind == "image":
            assert background.path is not None
            self._still = _resized(_background_image(background.path), width, height)
        else:
            assert background.path is not None
            self._video = probe(background.path)
            self._frames = self._looped()

    def _looped(self) -> Iterator[np.ndarray]:
        assert self._video is not None
        start = self._first_frame % self._video.frames if self._video.frames else 0
        while True:
            self._reader = open_reader(self._video, first_frame=start)
            start = 0
            with self._reader:
                for decoded in self._reader:
                    yield _resized(decoded.rgb, self.width, self.height)

    @property
    def still(self) -> np.ndarray | None:
        """The background picture when it does not change (colour, image); None for a video."""
        return self._still

    def frame(self) -> np.ndarray:
        """The next background frame (a still repeats, a video advances and loops)."""
        if self._still is not None:
            return self._still
        assert self._frames is not None
        return next(self._frames)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._frames = None


class CompWriter(ContainerWriter):
    """Writes ``<stem>_comp.mp4``: H.264 of the subject over ``background``."""

    format = OutputFormat.COMP

    def __init__(
        self,
        final_path: Path,
        info: MediaInfo,
        *,
        background: Background | None = None,
        overwrite: bool = False,
        audio: bool = True,
        background_first_frame: int = 0,
    ) -> None:
        if info.width % 2 or info.height % 2:
            raise UnsupportedFormatError(
                f"cannot write '{final_path}': H.264 4:2:0 needs even sizes, '{info.path}' is "
                f"{info.width}x{info.height}; use the exr or prores4444 output"
            )
        self._background = BackgroundSource(
            background or Background(kind="colour", colour=(0.0, 1.0, 0.0)),
            info.width,
            info.height,
            first_frame=background_first_frame,
        )
        try:
            super().__init__(
                final_path,
                info,
                overwrite=overwrite,
                codec="libx264",
                pix_fmt=PIX_FMT,
                options={"crf": "18", "preset": "fast"},
                container_options=CONTAINER_OPTIONS,
                copy_audio=audio,
            )
        except BaseException:
            self._background.close()
            raise

    @property
    def still_background(self) -> np.ndarray | None:
        """The background when it is one picture for every frame (colour, image), else None (video).

        Shape:
            -> [H, W, 3] float32 0..1
        """
        return self._background.still

    def planes(self, fgr: np.ndarray, pha: np.ndarray) -> list[np.ndarray]:
        """The composite as 8-bit limited-range Y' and 2x2-averaged Cb, Cr (:func:`chroma_420`)."""
        try:
            bg = self._background.frame()
        except StopIteration as err:  # pragma: no cover - a looping video never ends
            raise MediaError(f"background for '{self.final_path}' ran out of frames") from err
        comp = composite(np.asarray(fgr, np.float32), np.asarray(pha, np.float32), bg)
        ycbcr = colour.rgb_to_ycbcr(comp, colorspace=self.colour.matrix, color_range="tv", bit_depth=8)
        return [ycbcr[0], chroma_420(ycbcr[1]), chroma_420(ycbcr[2])]

    def close(self) -> WrittenOutput:
        try:
            return super().close()
        finally:
            self._background.close()

    def abort(self) -> None:
        try:
            super().abort()
        finally:
            self._background.close()


def chroma_420(plane: np.ndarray) -> np.ndarray:
    """Average each 2x2 block (box filter, rounding halves up) of an even-sized uint8 chroma plane."""
    acc = plane[0::2, 0::2].astype(np.uint16)
    acc += plane[1::2, 0::2]
    acc += plane[0::2, 1::2]
    acc += plane[1::2, 1::2]
    acc += 2
    return (acc >> 2).astype(np.uint8)
