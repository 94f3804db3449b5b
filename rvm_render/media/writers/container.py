"""Shared machinery of the movie-file deliverables: one video stream, audio copied, timecode kept.

A :class:`ContainerWriter` owns the output container (written under a temporary name by
:class:`~rvm_render.media.commit.PartialFile`), encodes one frame per ``write`` at
``pts = frame_index - first_frame`` in ``time_base = 1/rate`` (exact, 30000/1001 stays), and
remuxes the source's audio packets (no re-encode) for the same span of time as it goes.
The stream is tagged with the source's primaries, transfer and matrix (limited range), and
subclasses encode Y'CbCr with that matrix (``self.colour``,
:func:`~rvm_render.media.colour.output_colour_for`). Subclasses only turn (fgr, pha) into the
planes of their pixel format (:meth:`ContainerWriter.planes`); planes converted elsewhere (on the
GPU) go in through :meth:`ContainerWriter.write_converted`.

Encoders get FFmpeg's ``AUTO`` threading with one thread per core: an encoder that can (prores_ks,
libx264) runs frame threads, one frame per thread, which FFmpeg picks over slice threads when the
encoder supports both (PyAV 18.1: the first ``thread_count - 1`` frames return no packet). On a
16-core node prores_ks 4444 encoded 4K at 7.4 fps with 16 frame threads against 2.2 fps with 16
slice threads (issue 19).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from rvm_render.errors import MediaError, UnsupportedFormatError
from rvm_render.media.commit import PartialFile, output_error, writing_to
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.output import OutputFormat, WrittenOutput, colour_of, movie_timecode

log = logging.getLogger(__name__)

__all__ = ["ContainerWriter", "AudioCopy", "frame_from_planes", "LIMITED_RANGE"]

#: AVColorRange of every movie deliverable: MPEG (limited).
LIMITED_RANGE = 1


def frame_from_planes(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """A VideoFrame of ``pix_fmt`` filled plane by plane (copies, honouring line padding).

    Shape:
        planes: one [h, w] uint8/uint16 array per plane of ``pix_fmt``
    """
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes, strict=True):
        itemsize = data.dtype.itemsize
        view = np.frombuffer(plane, dtype=data.dtype).reshape(plane.height, plane.line_size // itemsize)
        view[:, : plane.width] = data
    return frame


class AudioCopy:
    """Remuxes the source's audio packets into the output for the rendered span of frames.

    Packets are copied as they are (no decode); the cut is packet accurate, and timestamps are
    shifted so that source frame ``first_frame`` lands at output time 0.
    """

    def __init__(self, info: MediaInfo, output: av.container.OutputContainer) -> None:
        self._input = av.open(str(info.path), metadata_errors="ignore")
        video = self._input.streams.video[0]
        self._video_start = (video.start_time or 0) * (video.time_base or Fraction(0))
        self._rate = info.rate
        self._streams = {}
        for stream in self._input.streams.audio:
            if stream.codec_context.name not in output.supported_codecs:
                log.warning(
                    "audio stream %d of %s (%s) cannot go in %s; not copied",
                    stream.index, info.path, stream.codec_context.name, output.format.name,
                )
                continue
            try:
                self._streams[stream.index] = output.add_stream_from_template(stream)
            except (av.error.FFmpegError, ValueError) as err:
                log.warning("audio stream %d of %s not copied: %s", stream.index, info.path, err)
        self._packets: Iterator[av.Packet] | None = None
        self._pending: av.Packet | None = None
        self._start_s = Fraction(0)
        self._cut_start = False

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def begin(self, first_frame: int) -> None:
        """Start copying at source frame ``first_frame`` (call before the first mux)."""
        self._start_s = self._video_start + Fraction(first_frame) / self._rate
        self._cut_start = first_frame > 0
        if self._streams:
            self._packets = self._input.demux([self._input.streams[i] for i in self._streams])

    def mux_until(self, output: av.container.OutputContainer, end_s: Fraction | None) -> None:
        """Mux packets starting before output time ``end_s`` (``None``: all that are left)."""
        if self._packets is None:
            return
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                return
            if packet.size == 0 or packet.time_base is None:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                continue
            at_s = stamp * packet.time_base - self._start_s
            if end_s is not None and at_s >= end_s:
                self._pending = packet
                return
            duration_s = (packet.duration or 0) * packet.time_base
            if self._cut_start and at_s + duration_s <= 0:
                continue
            shift = round(self._start_s / packet.time_base)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._streams[packet.stream_index]
            output.mux(packet)

    def finish(self, output: av.container.OutputContainer, end_s: Fraction) -> None:
        """Mux what is left up to ``end_s`` and release the source."""
        try:
            self.mux_until(output, end_s)
        finally:
            self.close()

    def close(self) -> None:
        self._packets = None
        self._input.close()


class ContainerWriter:
    """Base of the movie-file writers (ProRes 4444, grey matte, composite)."""

    format: OutputFormat

    def __init__(
        self,
        final_path: Path,
        info: MediaInfo,
        *,
        overwrite: bool,
        codec: str,
        pix_fmt: str,
        options: dict[str, str],
        container_options: dict[str, str] | None = None,
        copy_audio: bool = True,
        fixed_quantiser: int | None = None,
    ) -> None:
        self.final_path = final_path
        self.info = info
        self.pix_fmt = pix_fmt
        self._partial = PartialFile(final_path, overwrite=overwrite)
        self._first_frame: int | None = None
        self._next_frame = 0
        self._closed = False
        self._audio: AudioCopy | None = None
        self._time_base = Fraction(1) / info.rate
        self.colour = colour_of(info)
        with writing_to(final_path):
            self._output = av.open(str(self._partial.path), "w", options=container_options or {})
        try:
            self._stream = self._add_video_stream(codec, pix_fmt, options, fixed_quantiser)
            if copy_audio and info.has_audio and not info.is_sequence:
                self._audio = AudioCopy(info, self._output)
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(
        self, codec: str, pix_fmt: str, options: dict[str, str], fixed_quantiser: int | None
    ) -> av.video.stream.VideoStream:
        info = self.info
        try:
            stream = self._output.add_stream(codec, rate=info.rate, options=options)
        except (av.error.FFmpegError, ValueError) as err:
            raise UnsupportedFormatError(
                f"cannot write '{self.final_path}': encoder {codec} unavailable ({err}); "
                f"use an FFmpeg build with {codec}"
            ) from err
        stream.width = info.width
        stream.height = info.height
        stream.pix_fmt = pix_fmt
        stream.time_base = self._time_base
        ctx = stream.codec_context
        ctx.time_base = self._time_base
        ctx.framerate = info.rate
        ctx.sample_aspect_ratio = info.pixel_aspect
        ctx.thread_type = "AUTO"
        ctx.thread_count = 0
        for name, value in self.colour.codec_tags().items():
            setattr(ctx, name, value)
        ctx.color_range = LIMITED_RANGE
        if fixed_quantiser is not None:  # constant quality, no per-slice rate search (ffmpeg -q:v)
            ctx.global_quality = fixed_quantiser
            ctx.qscale = True
        return stream

    # --- MatteWriter ---------------------------------------------------------------------

    def write(self, frame_index: int, fgr: np.ndarray, pha: np.ndarray) -> None:
        """Encode source frame ``frame_index``; frames must come in order without gaps.

        Shape:
            fgr: [H, W, 3] float32 0..1; pha: [H, W] float32 0..1
        """
        if fgr.shape != (self.info.height, self.info.width, 3) or pha.shape != (self.info.height, self.info.width):
            raise MediaError(
                f"'{self.final_path}': frame {frame_index} is fgr {fgr.shape} / pha {pha.shape}, "
                f"expected {self.info.height}x{self.info.width}; the writer was opened for another clip"
            )
        self.write_video_frame(frame_index, frame_from_planes(self.planes(fgr, pha), self.pix_fmt))

    def write_converted(self, frame_index: int, payload: Any) -> None:
        """Encode source frame ``frame_index`` from planes converted elsewhere (on a device, say).

        Shape:
            payload: the planes :meth:`planes` returns, as a list or stacked (``[P, H, W]``)
        """
        self.write_video_frame(frame_index, frame_from_planes(list(payload), self.pix_fmt))

    @property
    def encoder_threads(self) -> tuple[str, int]:
        """The encoder's thread type as asked (``"AUTO"``) and its thread count (resolved once open)."""
        ctx = self._stream.codec_context
        return ctx.thread_type.name, ctx.thread_count

    def write_video_frame(self, frame_index: int, frame: av.VideoFrame) -> None:
        """Encode a picture already in this writer's pixel format as source frame ``frame_index``.

        Frames must come in order without gaps (:meth:`write` converts and calls this).
        """
        if self._first_frame is None:
            self._begin(frame_index)
        elif frame_index != self._next_frame:
            raise MediaError(
                f"'{self.final_path}': got frame {frame_index} after {self._next_frame - 1}; "
                "movie outputs need frames in order without gaps"
            )
        assert self._first_frame is not None
        frame.pts = frame_index - self._first_frame
        frame.time_base = self._time_base  # not stream.time_base: the muxer changes that
        self._mux(self._stream.encode(frame))
        self._next_frame = frame_index + 1
        if self._audio is not None:
            self._audio.mux_until(self._output, Fraction(self._next_frame - self._first_frame) / self.info.rate)

    def close(self) -> WrittenOutput:
        """Flush the encoder, copy the remaining audio, and move the file into place."""
        if self._first_frame is None:
            self.abort()
            raise MediaError(f"'{self.final_path}': no frames were written; nothing to commit")
        try:
            self._mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish(self._output, Fraction(self._next_frame - self._first_frame) / self.info.rate)
            self._output.close()
            self._closed = True
            path = self._partial.commit()
        except BaseException:
            self.abort()
            raise
        log.info("wrote %s (frames %d-%d)", path, self._first_frame, self._next_frame - 1)
        return WrittenOutput(self.format, path, self._first_frame, self._next_frame - 1)

    def abort(self) -> None:
        """Stop and delete the temporary file."""
        if self._audio is not None:
            self._audio.close()
        if not self._closed:
            self._closed = True
            try:
                self._output.close()
            except Exception as err:  # closing a half-written container may fail; it is deleted anyway
                log.debug("closing %s on abort: %s", self._partial.path, err)
        self._partial.abort()

    def __enter__(self) -> ContainerWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()

    # --- subclasses ----------------------------------------------------------------------

    def planes(self, fgr: np.ndarray, pha: np.ndarray) -> list[np.ndarray]:
        """(fgr, pha) as the planes of this writer's pixel format (uint8/uint16 code values)."""
        raise NotImplementedError

    # --- internals -----------------------------------------------------------------------

    def _begin(self, first_frame: int) -> None:
        self._first_frame = first_frame
        self._next_frame = first_frame
        timecode = movie_timecode(self.info, first_frame)
        if timecode is not None:
            self._stream.metadata["timecode"] = timecode
        if self._audio is not None:
            self._audio.begin(first_frame)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._output.mux(packets)
        except OSError as err:  # PyAV's errno errors are OSErrors too: disk full, I/O error
            raise output_error(self.final_path, err) from err
        except av.error.FFmpegError as err:
            raise MediaError(f"cannot write '{self._partial.path}': {err}; report this with the input file") from err
