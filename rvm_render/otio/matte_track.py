"""The edit handed back: the input timeline, unchanged, plus matte tracks that sit on its picture.

For each top-level video track with matted clips, a video track ``<name> RVM Matte`` is stacked
above all original video tracks (in the same order; an unnamed track is called ``Video N`` by
its position among the video tracks, as editors show it). It mirrors its source track item for
item, so timing holds everywhere: a matted clip becomes a matte clip with the same record position,
duration, ``source_range`` and time effects, whose media is the rendered matte; transitions are
mirrored (a dissolve fades the matte too), nested stacks and tracks are mirrored, and everything
else becomes a gap of the same duration.

A matte's ``available_range`` starts where its first frame sits in the source's time
coordinates, at the source reference's own rate value where it is the media's rate (23.976
stays 23.976, so hours of timecode do not drift a frame), and the matte movie's timecode says
the same (:func:`matte_start_frame`); so the source clip's ``source_range`` addresses the same
frames in the matte. A still's matte is its one matte image, held for the clip's whole duration.
References take the form of the input's own: a
``file://`` URL where the source clip has one, else a bare absolute path (what Resolve wants),
or a path relative to the written timeline; under the source clip's media-reference key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from rvm_render.media.frame_pattern import frame_field
from rvm_render.media.writers import OutputFormat
from rvm_render.otio.rebasing import rebased_path
from rvm_render.otio.requests import ClipPlace, ClipUse, ConformPlan, MediaRange, exact_rate, nearest_frame, seconds

__all__ = ["MATTE_TRACK_SUFFIX", "RenderedRange", "timeline_with_matte_tracks", "matte_start_frame", "matte_track_name"]

MATTE_TRACK_SUFFIX = " RVM Matte"
METADATA_KEY = "rvm_render"


@dataclass(frozen=True, slots=True)
class RenderedRange:
    """A merged range's matte on disk: what the matte clips reference."""

    range: MediaRange
    matte: Path
    """The ProRes 4444 matte, else the grey matte movie, else a frame sequence (printf pattern)."""
    format: OutputFormat
    manifest: Path


def matte_track_name(track: otio.schema.Track, video_position: int) -> str:
    """``<track> RVM Matte``; ``Video N RVM Matte`` for an unnamed track (N: 1-based among video tracks)."""
    return f"{track.name or f'Video {video_position}'}{MATTE_TRACK_SUFFIX}"


def matte_start_frame(use: ClipUse, media_range: MediaRange) -> int:
    """Where a range's first matte frame sits in the source's time coordinates, in frames at the media's rate.

    The source's start (its ``available_range``, the media's start timecode) plus the range's offset
    into the media; the conform writes it as the matte movie's timecode too.
    """
    source_start = nearest_frame(seconds(use.available_start) * media_range.info.rate)
    return source_start + media_range.first_frame - use.start_number


def _target(path: Path, source_url: str, relative_to: Path | None) -> str:
    if relative_to is not None:
        return rebased_path(path, relative_to)
    absolute = Path(os.path.abspath(path))
    return absolute.as_uri() if source_url.lower().startswith("file:") else str(absolute)


def _rate_value(use: ClipUse, rate: Fraction) -> float:
    """The rate as the edit writes it (23.976 for 24000/1001) where the source's times use that rate."""
    written = use.available_start.rate
    return written if exact_rate(written) == rate else float(rate)


def _source_url(clip: otio.schema.Clip) -> str:
    reference = clip.media_reference
    if isinstance(reference, otio.schema.ImageSequenceReference):
        return reference.target_url_base or ""
    return getattr(reference, "target_url", "") or ""


def _matte_reference(clip: otio.schema.Clip, use: ClipUse, rendered: RenderedRange,
                     relative_to: Path | None) -> otio.core.MediaReference:  # fmt: skip
    """The matte's media reference, its ``available_range`` in the source's time coordinates."""
    media_range = rendered.range
    rate = _rate_value(use, media_range.info.rate)
    url = _source_url(clip)
    if use.still:  # one image, held: the matte covers what the source reference does, and all the clip shows
        source_available, shown = clip.media_reference.available_range, clip.trimmed_range()
        available = shown if source_available is None else source_available.extended_by(shown)
        still = rendered.matte.with_name(rendered.matte.name % media_range.first_frame)
        return otio.schema.ExternalReference(_target(still, url, relative_to), available)
    # Whole frames at the matte's own rate: what its timecode says (the source's start + its first frame).
    start = matte_start_frame(use, media_range)
    available = TimeRange(RationalTime(start, rate), RationalTime(media_range.frames, rate))
    if not rendered.format.is_sequence:
        return otio.schema.ExternalReference(_target(rendered.matte, url, relative_to), available)
    name = rendered.matte.name
    field = frame_field(name)
    assert field is not None
    folder = _target(rendered.matte.parent, url, relative_to).rstrip("/\\")
    return otio.schema.ImageSequenceReference(
        target_url_base=folder + "/",
        name_prefix=field.prefix(name),
        name_suffix=field.suffix(name),
        start_frame=media_range.first_frame,
        frame_step=1,
        rate=rate,
        frame_zero_padding=field.width,
        available_range=available,
    )


def _matte_clip(clip: otio.schema.Clip, use: ClipUse, rendered: RenderedRange,
                relative_to: Path | None) -> otio.schema.Clip:  # fmt: skip
    media_range = rendered.range
    matte = otio.schema.Clip(
        name=f"{clip.name}{MATTE_TRACK_SUFFIX}",
        source_range=clip.trimmed_range(),
        metadata={
            METADATA_KEY: {
                "source_track": use.place.track_name,
                "source_track_index": use.place.track_index,
                "source_index": list(use.place.indices),
                "source_media": rebased_path(use.media, relative_to),
                "rendered_range": [media_range.first_frame, media_range.last_frame],
                "manifest": rebased_path(rendered.manifest, relative_to),
            }
        },
    )
    key = clip.active_media_reference_key
    matte.set_media_references({key: _matte_reference(clip, use, rendered, relative_to)}, key)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.TimeEffect):  # speed, reverse, freeze and any other retime
            matte.effects.append(effect.clone())
    return matte


class _Mirror:
    def __init__(self, plan: ConformPlan, rendered: dict[str, RenderedRange], relative_to: Path | None) -> None:
        self.rendered = rendered
        self.relative_to = relative_to
        self.by_place: dict[ClipPlace, tuple[ClipUse, RenderedRange]] = {}
        for use in plan.uses:
            done = rendered.get(plan.range_of(use).stem)
            if done is not None:
                self.by_place[use.place] = (use, done)

    def has_mattes(self, track_index: int) -> bool:
        return any(place.track_index == track_index for place in self.by_place)

    def item(self, item: otio.core.Item, place: ClipPlace) -> otio.core.Composable:
        if isinstance(item, otio.schema.Transition):
            return otio.schema.Transition(
                name=item.name, transition_type=item.transition_type, in_offset=item.in_offset,
                out_offset=item.out_offset,
            )  # fmt: skip
        if isinstance(item, otio.schema.Clip) and place in self.by_place:
            use, rendered = self.by_place[place]
            return _matte_clip(item, use, rendered, self.relative_to)
        if isinstance(item, otio.schema.Track) and item.kind == otio.schema.TrackKind.Video:
            return self.composition(otio.schema.Track(item.name, source_range=item.source_range), item, place)
        if isinstance(item, otio.schema.Stack):
            return self.composition(otio.schema.Stack(item.name, source_range=item.trimmed_range()), item, place)
        return otio.schema.Gap(source_range=TimeRange(duration=item.duration()))

    def composition(self, mirror: otio.core.Composition, original: otio.core.Composition,
                    place: ClipPlace) -> otio.core.Composition:  # fmt: skip
        for index, child in enumerate(original):
            here = ClipPlace(place.track_index, place.track_name, (*place.indices, index))
            audio = isinstance(child, otio.schema.Track) and child.kind != otio.schema.TrackKind.Video
            if audio and isinstance(original, otio.schema.Stack):
                continue  # a nested stack's audio layer: the mirrored stack keeps its duration by its source_range
            mirror.append(self.item(child, here))
        return mirror


def timeline_with_matte_tracks(
    timeline: otio.schema.Timeline,
    plan: ConformPlan,
    rendered: dict[str, RenderedRange],
    *,
    relative_to: Path | None = None,
    metadata: dict[str, Any] | None = None,
) -> otio.schema.Timeline:
    """A copy of ``timeline`` with a matte track above its video tracks for each that has matted clips.

    Args:
        timeline: the edit as read (left unchanged).
        plan: its :func:`~rvm_render.otio.requests.conform_plan`.
        rendered: the mattes made, by :attr:`MediaRange.stem`; clips whose range is missing get gaps.
        relative_to: write media paths relative to this folder (the written timeline's), else absolute.
        metadata: recorded as the timeline's ``metadata["rvm_render"]``.
    """
    result = timeline.deepcopy()
    mirror = _Mirror(plan, rendered, relative_to)
    tracks = []
    video_position = 0
    for index, track in enumerate(timeline.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            continue
        video_position += 1
        if not mirror.has_mattes(index):
            continue
        matte_track = otio.schema.Track(matte_track_name(track, video_position), kind=otio.schema.TrackKind.Video,
                                        source_range=track.source_range)  # fmt: skip
        tracks.append(mirror.composition(matte_track, track, ClipPlace(index, track.name, ())))
    video = [i for i, track in enumerate(result.tracks) if track.kind == otio.schema.TrackKind.Video]
    insert_at = video[-1] + 1 if video else len(result.tracks)
    for offset, track in enumerate(tracks):
        result.tracks.insert(insert_at + offset, track)
    if metadata is not None:
        result.metadata[METADATA_KEY] = metadata
    return result
