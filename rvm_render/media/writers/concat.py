"""One movie deliverable from consecutive parts: packets remuxed, audio copied whole, timecode kept.

A segmented render encodes each segment's frames into a part of its own (no audio). The
deliverable joins them without re-encoding: every video packet is copied as it is, its
timestamps moved by the part's place in the render, so the joined file has continuous pts
``0 .. frames - 1`` (in ``1/rate``) and decodes to exactly the parts' pictures. That needs
streams that agree: same codec, size, pixel format and codec extradata (ProRes 4444 and
ProRes 422 HQ are intra-only with no extradata; H.264 from libx264 with the same settings
carries the same SPS/PPS, and every part starts on an IDR frame). Parts that disagree are
decoded and encoded again, by the deliverable's own writer (correct, but one generation
more). The source's audio is copied for the rendered span, and the timecode track starts at
the render's first frame, as :class:`~rvm_render.media.writers.container.ContainerWriter`
does for a single pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from rvm_render.errors import MediaError, UnreadableMediaError
from rvm_render.media.commit import PartialFile
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.background import Background
from rvm_render.media.writers.comp import CONTAINER_OPTIONS as COMP_CONTAINER_OPTIONS
from rvm_render.media.writers.container import AudioCopy
from rvm_render.media.writers.output import OutputFormat, WrittenOutput, movie_timecode

log = logging.getLogger(__name__)

__all__ = ["MoviePart", "concat_movie_parts", "parts_can_be_remuxed"]

_CONTAINER_OPTIONS: dict[OutputFormat, dict[str, str]] = {OutputFormat.COMP: COMP_CONTAINER_OPTIONS}


@dataclass(frozen=True, slots=True)
class MoviePart:
    """A movie file holding source frames ``first_frame`` .. ``last_frame`` (inclusive), one packet each."""

    path: Path
    first_frame: int
    last_frame: int

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame + 1


def _stream_signature(part: MoviePart) -> tuple[object, ...]:
    """What must agree between parts for their packets to go in one stream."""
    try:
        with av.open(str(part.path)) as container:
            ctx = container.streams.video[0].codec_context
            return (
                ctx.name, ctx.codec_tag, ctx.profile, ctx.width, ctx.height,
                ctx.format.name if ctx.format else None, bytes(ctx.extradata or b""),
            )
    except (av.error.FFmpegError, IndexError) as err:
        raise UnreadableMediaError(f"cannot read segment part '{part.path}': {err}; render that segment again") from err


def parts_can_be_remuxed(parts: Sequence[MoviePart]) -> bool:
    """Whether every part has the first one's codec, tag, profile, size, pixel format and extradata."""
    signatures = {_stream_signature(part) for part in parts}
    return len(signatures) == 1


def _check_contiguous(parts: Sequence[MoviePart]) -> None:
    if not parts:
        raise MediaError("no segment parts to join")
    for before, after in zip(parts, parts[1:], strict=False):
        if after.first_frame != before.last_frame + 1:
            raise MediaError(
                f"segment parts '{before.path.name}' (frames {before.first_frame}-{before.last_frame}) and "
                f"'{after.path.name}' (from {after.first_frame}) are not consecutive; render the missing frames"
            )


def concat_movie_parts(
    fmt: OutputFormat,
    parts: Sequence[MoviePart],
    final_path: Path,
    info: MediaInfo,
    *,
    overwrite: bool = False,
    background: Background | None = None,
) -> WrittenOutput:
    """Join consecutive movie parts into ``final_path``, with the source's audio and timecode.

    Args:
        fmt: the deliverable the parts are (a movie format).
        parts: the parts in frame order, without gaps.
        final_path: the deliverable's path; written under a temp name, renamed when complete.
        info: the source clip (rate, audio, timecode).
        overwrite: replace an existing file instead of raising.
        background: ``comp`` only, for the re-encode fallback's writer (not used otherwise).

    Returns:
        The committed deliverable.

    Raises:
        MediaError: parts missing, not consecutive, or holding the wrong number of frames.
        OutputExistsError: ``final_path`` exists and ``overwrite`` is False.
    """
    fmt = OutputFormat(fmt)
    _check_contiguous(parts)
    if parts_can_be_remuxed(parts):
        return _remuxed(fmt, parts, final_path, info, overwrite=overwrite)
    log.warning("segment parts of %s differ in codec parameters; encoding them again", final_path)
    return _reencoded(fmt, parts, final_path, info, overwrite=overwrite, background=background)


def _remuxed(
    fmt: OutputFormat, parts: Sequence[MoviePart], final_path: Path, info: MediaInfo, *, overwrite: bool
) -> WrittenOutput:
    first_frame, last_frame = parts[0].first_frame, parts[-1].last_frame
    rate = info.rate
    partial = PartialFile(final_path, overwrite=overwrite)
    output = av.open(str(partial.path), "w", options=_CONTAINER_OPTIONS.get(fmt, {}))
    audio: AudioCopy | None = None
    try:
        with av.open(str(parts[0].path)) as template:
            source = template.streams.video[0]
            stream = output.add_stream_from_template(source)
            # PyAV clears the tag for remuxing, and the muxer would then guess one from the codec
            # alone (ProRes 4444 would be tagged 422 HQ 'apch' and decode wrongly): keep the part's.
            stream.codec_context.codec_tag = source.codec_context.codec_tag
        stream.time_base = Fraction(1) / rate
        stream.codec_context.time_base = Fraction(1) / rate
        stream.codec_context.framerate = rate  # the stream's avg_frame_rate; the timecode track needs it
        stream.codec_context.sample_aspect_ratio = info.pixel_aspect
        timecode = movie_timecode(info, first_frame)
        if timecode is not None:
            stream.metadata["timecode"] = timecode
        if info.has_audio and not info.is_sequence:
            audio = AudioCopy(info, output)
            audio.begin(first_frame)
        for part in parts:
            _copy_part(part, output, stream, audio, first_frame, rate)
        if audio is not None:
            audio.finish(output, Fraction(last_frame - first_frame + 1) / rate)
        output.close()
        path = partial.commit()
    except BaseException:
        if audio is not None:
            audio.close()
        try:
            output.close()
        except Exception as err:  # a half-written container may not close; it is deleted anyway
            log.debug("closing %s on abort: %s", partial.path, err)
        partial.abort()
        raise
    log.info("joined %d parts into %s (frames %d-%d)", len(parts), path, first_frame, last_frame)
    return WrittenOutput(fmt, path, first_frame, last_frame)


def _copy_part(
    part: MoviePart,
    output: av.container.OutputContainer,
    stream: av.video.stream.VideoStream,
    audio: AudioCopy | None,
    first_frame: int,
    rate: Fraction,
) -> None:
    """Mux ``part``'s video packets at their place in the render, audio interleaved."""
    offset_s = Fraction(part.first_frame - first_frame) / rate
    copied = 0
    with av.open(str(part.path)) as container:
        source = container.streams.video[0]
        time_base = source.time_base
        assert time_base is not None
        start = source.start_time or 0
        shift = round(offset_s / time_base) - start
        for packet in container.demux(source):
            if packet.size == 0:
                continue
            if packet.pts is not None:
                packet.pts += shift
            if packet.dts is not None:
                packet.dts += shift
            packet.stream = stream
            output.mux(packet)
            copied += 1
            if audio is not None:
                audio.mux_until(output, offset_s + Fraction(copied) / rate)
    if copied != part.frames:
        raise MediaError(
            f"segment part '{part.path}' holds {copied} frames, expected {part.frames} "
            f"(frames {part.first_frame}-{part.last_frame}); render that segment again"
        )


def _reencoded(
    fmt: OutputFormat,
    parts: Sequence[MoviePart],
    final_path: Path,
    info: MediaInfo,
    *,
    overwrite: bool,
    background: Background | None,
) -> WrittenOutput:
    from rvm_render.media.writers import open_writer  # the package imports this module

    writer = open_writer(
        fmt, final_path.parent, _stem_of(fmt, final_path), info, background=background, overwrite=overwrite
    )
    if writer.final_path != final_path or not hasattr(writer, "write_video_frame"):
        writer.abort()
        raise MediaError(f"cannot join parts into '{final_path}': not a movie deliverable path")
    try:
        for part in parts:
            frame_index = part.first_frame
            with av.open(str(part.path)) as container:
                for frame in container.decode(video=0):
                    frame.pict_type = PictureType.NONE  # let the encoder choose frame types
                    writer.write_video_frame(frame_index, frame)  # type: ignore[attr-defined]
                    frame_index += 1
            if frame_index != part.last_frame + 1:
                raise MediaError(
                    f"segment part '{part.path}' holds {frame_index - part.first_frame} frames, expected "
                    f"{part.frames}; render that segment again"
                )
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def _stem_of(fmt: OutputFormat, final_path: Path) -> str:
    from rvm_render.media.writers.output import output_path

    suffix = output_path(fmt, Path(), "").name
    name = final_path.name
    return name[: -len(suffix)] if suffix and name.endswith(suffix) else final_path.stem
