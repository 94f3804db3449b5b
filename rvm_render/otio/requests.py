"""What an edit needs matted: the frames of each media file its video clips show, merged per file.

For every video clip of every video track (nested stacks and tracks included) whose media is an
``ExternalReference`` or an ``ImageSequenceReference``:

1. the clip's source range is mapped to frames at the *media's* own rate (probed; Resolve writes
   source ranges at the timeline rate, Hiero at a float rate such as 23.976024627685547, which
   is read as the NTSC rate 24000/1001 it stands for), counting from the reference's
   ``available_range`` start (the media's start timecode), and rounded to the nearest frame
   (half up), never truncated;
2. the frames adjacent transitions need (``Track.handles_of_child``) and time effects consume
   (``LinearTimeWarp`` speed changes and reverses, ``FreezeFrame``) are added, then ``handles``
   frames on each side, clamped to the frames the media really has (a clip that runs past its
   media's end is warned about). A reverse covers both readings of its source range (see
   :func:`media_frame_span`); any other time effect (Hiero's ``TimeWarp``) is warned about and
   the clip's whole source range is matted;
3. the ranges of each media file at each rate are merged (overlapping or adjacent ranges become
   one), and each merged range becomes one :class:`~rvm_render.pipeline.RenderRequest`.

An ``ExternalReference`` to an image file is a still (not a frame of a sequence): its one frame
is matted, and its matte covers the clip's whole duration. Clips that are not matted (gaps and
transitions are not clips) are listed with the reason: generators, missing references, media
not found, disabled clips, zero-duration clips. Audio tracks are counted.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from rvm_render.errors import MediaError
from rvm_render.media.frame_pattern import escaped
from rvm_render.media.probe import IMAGE_EXTENSIONS, MediaInfo, probe
from rvm_render.otio.defaults import DEFAULT_HANDLES
from rvm_render.otio.media_paths import MediaFinder, local_path
from rvm_render.pipeline import RenderRequest, clip_stem

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HANDLES",
    "ClipPlace",
    "ClipUse",
    "SkippedClip",
    "MediaRange",
    "ConformPlan",
    "conform_plan",
    "media_frame_span",
    "merged_uses",
    "nearest_frame",
    "unsupported_time_effects",
    "exact_rate",
    "seconds",
]

#: Why an earlier conform's matte clip is not matted.
EARLIER_MATTE_REASON = "a matte of an earlier run (not matted again)"

#: Video rates, exactly; a float rate this close to one of them is that rate (23.976 is 24000/1001).
STANDARD_RATES = tuple(
    Fraction(rate) for rate in (Fraction(24000, 1001), 24, 25, Fraction(30000, 1001), 30, 48, 50,
                                Fraction(60000, 1001), 60, 100, Fraction(120000, 1001), 120)
)  # fmt: skip
_RATE_TOLERANCE = 1e-4  # relative: "29.97" and Hiero's 23.976024627685547 are NTSC rates, 24.0 is 24


def exact_rate(rate: float) -> Fraction:
    """A timeline's float rate as the exact video rate it stands for (else its exact binary value)."""
    for standard in STANDARD_RATES:
        if abs(rate - float(standard)) <= _RATE_TOLERANCE * float(standard):
            return standard
    return Fraction(rate)


def seconds(time: RationalTime) -> Fraction:
    """``time`` in seconds, exactly: values at their exact binary value, rates as :func:`exact_rate` reads them."""
    return Fraction(time.value) / exact_rate(time.rate)


def nearest_frame(value: Fraction) -> int:
    """Round half up: the nearest frame, never a truncation."""
    return math.floor(value + Fraction(1, 2))


def media_frame_span(
    source_range: TimeRange,
    available_start: RationalTime,
    rate: Fraction,
    *,
    time_scalar: Fraction = Fraction(1),
    in_handle: RationalTime | None = None,
    out_handle: RationalTime | None = None,
) -> tuple[int, int]:
    """First and last media frame index (0-based, inclusive) a clip shows, at the media's rate.

    The clip plays timeline time ``t`` in ``[-in_handle, duration + out_handle)`` from media time
    ``start + t * time_scalar``; the span covers every frame those times touch. A reverse
    (negative ``time_scalar``) is read two ways: OpenTimelineIO's time transform plays back from
    the start (``start``, ``start - 1``, ...), while the editors that export reverses (Premiere
    and FCP XML, read by otio-fcp-adapter; Resolve) write the frames used as the source range
    and play it from its last frame. A reversed matte clip carries the same range and effect as
    its source clip, so whichever reading a host applies it shows the matte of the frame the
    picture shows: the span covers both.

    Args:
        source_range: the clip's source range (any rate).
        available_start: the media's first frame in the same time coordinates (its start timecode).
        rate: the media's own frame rate.
        time_scalar: product of the clip's time effects (2: double speed, -1: reversed, 0: freeze).
        in_handle, out_handle: extra timeline time before and after the clip (transitions).
    """
    start = seconds(source_range.start_time) - seconds(available_start)
    before = seconds(in_handle) if in_handle is not None else Fraction(0)
    after = seconds(out_handle) if out_handle is not None else Fraction(0)
    if time_scalar < 0:
        played_back = (
            nearest_frame((start - (seconds(source_range.duration) + after) * -time_scalar) * rate),
            nearest_frame((start + before * -time_scalar) * rate),
        )
        used = media_frame_span(source_range, available_start, rate, time_scalar=-time_scalar,
                                in_handle=in_handle, out_handle=out_handle)  # fmt: skip
        return min(played_back[0], used[0]), max(played_back[1], used[1])
    ends = (start - before * time_scalar, start + (seconds(source_range.duration) + after) * time_scalar)
    first = nearest_frame(min(ends) * rate)
    if time_scalar == 0:
        return first, first
    end = nearest_frame(max(ends) * rate)  # exclusive
    return first, max(first, end - 1)


@dataclass(frozen=True, slots=True)
class ClipPlace:
    """Where a clip sits: its top-level track (index in ``timeline.tracks``) and the child indices down to it."""

    track_index: int
    track_name: str
    indices: tuple[int, ...]

    def label(self) -> str:
        """``V1[3]``, or ``V1[2/0/1]`` inside a nested stack."""
        return f"{self.track_name or f'track {self.track_index + 1}'}[{'/'.join(map(str, self.indices))}]"


@dataclass(frozen=True, slots=True)
class ClipUse:
    """A matted clip: its place, its media, and the media frames (numbers) it shows and needs."""

    place: ClipPlace
    name: str
    media: Path
    info: MediaInfo
    shown: tuple[int, int]
    """Frame numbers the clip shows (with transitions and retimes), before handles."""
    needed: tuple[int, int]
    """With handles, clamped to the media."""
    available_start: RationalTime
    """When frame number ``start_number`` plays, in the edit's time coordinates (the media's start timecode)."""
    start_number: int
    """The frame number at ``available_start``: 0 for movies, an image sequence's start frame."""
    still: bool = False
    """A still image: its one frame stands for every frame of the clip."""


@dataclass(frozen=True, slots=True)
class SkippedClip:
    """A video clip that is not matted, and why."""

    place: ClipPlace
    name: str
    reason: str

    def line(self) -> str:
        return f"{self.place.label()} '{self.name}': {self.reason}"


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One merged range of one media file: rendered once, shared by the clips that use it."""

    media: Path
    info: MediaInfo
    first_frame: int
    last_frame: int
    uses: tuple[ClipUse, ...]
    stem: str
    """Names the outputs: ``<media stem>_<first>-<last>`` (frame numbers, 6 digits)."""

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame + 1

    def request(self, output_dir: Path) -> RenderRequest:
        return RenderRequest(self.media, output_dir, self.first_frame, self.last_frame, stem=self.stem)

    def narrowed(self, first_frame: int, last_frame: int, uses: tuple[ClipUse, ...]) -> MediaRange:
        """Another range of the same media for some of its uses, named as the plan names ranges."""
        stem = f"{self.stem.rsplit('_', 1)[0]}_{first_frame:06d}-{last_frame:06d}"
        return MediaRange(self.media, self.info, first_frame, last_frame, uses, stem)


@dataclass(frozen=True, slots=True)
class ConformPlan:
    """Everything a timeline needs matted, and what it leaves out."""

    ranges: tuple[MediaRange, ...]
    uses: tuple[ClipUse, ...]
    skipped: tuple[SkippedClip, ...]
    audio_clips: int
    handles: int
    earlier_mattes: tuple[SkippedClip, ...] = ()
    """Matte clips an earlier conform made: never matted again (:mod:`~rvm_render.otio.earlier_mattes`)."""

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.ranges)

    def skipped_text(self, shown: int = 3) -> str:
        """The first ``shown`` skipped clips, each with its reason, for a one-line error."""
        return "; ".join(s.line() for s in self.skipped[:shown]) + ("; ..." if len(self.skipped) > shown else "")

    def range_of(self, use: ClipUse) -> MediaRange:
        """The merged range that renders ``use``."""
        return next(r for r in self.ranges if use in r.uses)


def _time_scalar(clip: otio.schema.Clip) -> Fraction:
    scalar = Fraction(1)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= Fraction(effect.time_scalar)
    return scalar


def unsupported_time_effects(clip: otio.schema.Clip) -> list[str]:
    """The clip's time effects other than ``LinearTimeWarp`` and ``FreezeFrame`` (e.g. Hiero's ``TimeWarp``)."""
    return [
        effect.effect_name or effect.name or effect.schema_name()
        for effect in clip.effects
        if isinstance(effect, otio.schema.TimeEffect) and not isinstance(effect, otio.schema.LinearTimeWarp)
    ]


def _handles(clip: otio.core.Item) -> tuple[RationalTime | None, RationalTime | None]:
    parent = clip.parent()
    if isinstance(parent, otio.schema.Track):
        return parent.handles_of_child(clip)
    return None, None


@dataclass(frozen=True, slots=True)
class _Media:
    """A clip's media on this machine."""

    path: Path
    info: MediaInfo
    available_start: RationalTime
    number_offset: int
    """Frame number of media index 0 minus the sequence's own first number (0 for movies)."""
    still: bool = False


class _Planner:
    def __init__(self, root: Path, finder: MediaFinder, handles: int, media_roots: Sequence[Path],
                 is_matte: Callable[[otio.schema.Clip], bool]) -> None:  # fmt: skip
        self.root = root
        self.is_matte = is_matte
        self.earlier_mattes: list[SkippedClip] = []
        self.finder = finder
        self.handles = handles
        self.media_roots = tuple(Path(os.path.realpath(r)) for r in media_roots)
        self.uses: list[ClipUse] = []
        self.skipped: list[SkippedClip] = []
        self.audio_clips = 0
        self._probed: dict[tuple[str, Fraction | None, bool], MediaInfo] = {}

    def _probe(self, path: Path, sequence_rate: Fraction | None, *, still: bool = False) -> MediaInfo:
        key = (os.path.abspath(path), sequence_rate, still)
        if key not in self._probed:
            rate = {} if sequence_rate is None else {"sequence_rate": sequence_rate}
            self._probed[key] = probe(path, still=still, **rate)
        return self._probed[key]

    def _find(self, recorded: Path) -> tuple[Path | None, str]:
        found, why = self.finder.find(recorded)
        if found is None or not self.media_roots:
            return found, why
        real = Path(os.path.realpath(found))
        if any(real == root or real.is_relative_to(root) for root in self.media_roots):
            return found, why
        return None, f"media '{found}' is outside the allowed media roots"

    def _media(self, reference: otio.core.MediaReference) -> _Media | str:
        """The clip's media, or why there is none."""
        if isinstance(reference, otio.schema.ExternalReference):
            found, why = self._find(local_path(reference.target_url or "", self.root))
            if found is None:
                return why
            still = found.suffix.lower() in IMAGE_EXTENSIONS and found.is_file()  # a file, not a frame of a sequence
            info = self._probe(found, None, still=still)
            if reference.available_range is not None:
                start = reference.available_range.start_time
            elif info.timecode:
                start = otio.opentime.from_timecode(info.timecode, float(info.rate))
            else:
                start = RationalTime(0, float(info.rate))
            return _Media(info.path, info, start, 0, still)
        if isinstance(reference, otio.schema.ImageSequenceReference):
            return self._sequence(reference)
        if isinstance(reference, otio.schema.GeneratorReference):
            return f"a generator ({reference.generator_kind or 'GeneratorReference'}), not media"
        if isinstance(reference, otio.schema.MissingReference):
            return "no media (MissingReference)"
        return f"media reference {reference.schema_name()} is not a file"

    def _sequence(self, reference: otio.schema.ImageSequenceReference) -> _Media | str:
        width = reference.frame_zero_padding
        field_text = f"%0{width}d" if width else "%d"
        base = local_path(reference.target_url_base or "", self.root)
        first_file = base / f"{reference.name_prefix}{reference.start_frame:0{width}d}{reference.name_suffix}"
        found, why = self._find(first_file)
        if found is None:
            return why
        pattern = found.parent / f"{escaped(reference.name_prefix)}{field_text}{escaped(reference.name_suffix)}"
        info = self._probe(pattern, exact_rate(reference.rate))
        if reference.available_range is not None:
            start = reference.available_range.start_time
        else:
            start = RationalTime(reference.start_frame, reference.rate)
        return _Media(pattern, info, start, reference.start_frame - info.first_frame_number)

    def clip(self, clip: otio.schema.Clip, place: ClipPlace, enabled: bool) -> None:
        def skip(reason: str) -> None:
            self.skipped.append(SkippedClip(place, clip.name, reason))

        if not enabled:
            skip("disabled in the edit")
            return
        if self.is_matte(clip):
            self.earlier_mattes.append(SkippedClip(place, clip.name, EARLIER_MATTE_REASON))
            return
        if clip.trimmed_range().duration.value <= 0:
            skip("zero duration: the edit shows none of it")
            return
        try:
            media = self._media(clip.media_reference)
        except MediaError as err:
            skip(str(err))
            return
        if isinstance(media, str):
            skip(media)
            return
        info = media.info
        if media.still:
            self._use(clip, place, media, (0, 0), (0, 0))
            return
        in_handle, out_handle = _handles(clip)
        time_scalar = _time_scalar(clip)
        unsupported = unsupported_time_effects(clip)
        if unsupported:
            log.warning("%s '%s': time effect %s is not supported; the clip's whole source range is matted",
                        place.label(), clip.name, ", ".join(unsupported))  # fmt: skip
            time_scalar = Fraction(1)
        first, last = media_frame_span(
            clip.trimmed_range(), media.available_start, info.rate,
            time_scalar=time_scalar, in_handle=in_handle, out_handle=out_handle,
        )  # fmt: skip
        first, last = first + media.number_offset, last + media.number_offset
        if last < 0 or first > info.frames - 1:
            skip(f"shows frames {info.frame_number(first)}-{info.frame_number(last)}, outside the media "
                 f"(frames {info.first_frame_number}-{info.last_frame_number})")  # fmt: skip
            return
        shown = (max(first, 0), min(last, info.frames - 1))
        if shown != (first, last):
            log.warning("%s '%s' shows frames %d-%d of '%s', which has frames %d-%d: matted %d-%d only",
                        place.label(), clip.name, info.frame_number(first), info.frame_number(last), media.path,
                        info.first_frame_number, info.last_frame_number, info.frame_number(shown[0]),
                        info.frame_number(shown[1]))  # fmt: skip
        needed = (max(shown[0] - self.handles, 0), min(shown[1] + self.handles, info.frames - 1))
        self._use(clip, place, media, shown, needed)

    def _use(self, clip: otio.schema.Clip, place: ClipPlace, media: _Media, shown: tuple[int, int],
             needed: tuple[int, int]) -> None:  # fmt: skip
        """Record a matted clip; ``shown`` and ``needed`` are 0-based media indices."""
        info = media.info
        self.uses.append(
            ClipUse(
                place,
                clip.name,
                media.path,
                info,
                (info.frame_number(shown[0]), info.frame_number(shown[1])),
                (info.frame_number(needed[0]), info.frame_number(needed[1])),
                media.available_start,
                info.frame_number(media.number_offset),
                media.still,
            )
        )

    def walk(self, items: otio.core.Composition, place: ClipPlace, enabled: bool, video: bool) -> None:
        for index, child in enumerate(items):
            here = ClipPlace(place.track_index, place.track_name, (*place.indices, index))
            on = enabled and getattr(child, "enabled", True)  # transitions have no enabled flag
            if isinstance(child, otio.schema.Clip):
                if video:
                    self.clip(child, here, on)
                else:
                    self.audio_clips += 1
            elif isinstance(child, otio.schema.Track):
                self.walk(child, here, on, video and child.kind == otio.schema.TrackKind.Video)
            elif isinstance(child, otio.core.Composition):  # a nested stack (compound clip)
                self.walk(child, here, on, video)


def merged_uses(uses: Sequence[ClipUse]) -> Iterator[tuple[int, int, tuple[ClipUse, ...]]]:
    """Overlapping or adjacent needed ranges of one media file, merged."""
    ordered = sorted(uses, key=lambda use: use.needed)
    group: list[ClipUse] = []
    first = last = 0
    for use in ordered:
        if group and use.needed[0] <= last + 1:
            last = max(last, use.needed[1])
            group.append(use)
            continue
        if group:
            yield first, last, tuple(group)
        first, last = use.needed
        group = [use]
    if group:
        yield first, last, tuple(group)


def _output_stem(media: Path, info: MediaInfo, first: int, last: int, *, same_name_elsewhere: bool,
                 several_rates: bool) -> str:  # fmt: skip
    """``<media stem>_<first>-<last>`` (frame numbers); a digest of the path tells apart same-named media,
    the rate (``-25fps``) an image sequence used at several rates."""
    stem = clip_stem(info)
    if same_name_elsewhere:
        stem += "-" + hashlib.sha1(os.path.abspath(media).encode()).hexdigest()[:6]
    if several_rates:
        stem += f"-{float(info.rate):.6g}fps"
    return f"{stem}_{first:06d}-{last:06d}"


def conform_plan(
    timeline: otio.schema.Timeline,
    *,
    media_root: Path,
    relink_dirs: Sequence[Path] = (),
    handles: int = DEFAULT_HANDLES,
    media_roots: Sequence[Path] = (),
    is_matte: Callable[[otio.schema.Clip], bool] = lambda clip: False,
) -> ConformPlan:
    """What ``timeline`` needs matted (see module doc).

    Args:
        timeline: the edit.
        media_root: the folder relative media paths start from (the timeline's).
        relink_dirs: folders to find missing media in by file name.
        handles: frames added on each side of what each clip shows.
        media_roots: when given, media outside these folders is not matted (the daemon's rule).
        is_matte: tells an earlier conform's matte clips, which are listed, not matted.
    """
    if handles < 0:
        raise ValueError(f"handles must be >= 0, got {handles}")
    planner = _Planner(media_root, MediaFinder(relink_dirs), handles, media_roots, is_matte)
    for index, track in enumerate(timeline.tracks):
        place = ClipPlace(index, track.name, ())
        planner.walk(track, place, track.enabled, track.kind == otio.schema.TrackKind.Video)
    by_media: dict[tuple[str, Fraction], list[ClipUse]] = defaultdict(list)  # an image sequence's rate is the edit's
    for use in planner.uses:
        by_media[(os.path.abspath(use.media), use.info.rate)].append(use)
    folders_by_stem: dict[str, set[str]] = defaultdict(set)
    rates_by_media: dict[str, set[Fraction]] = defaultdict(set)
    for (media, rate), uses in by_media.items():
        folders_by_stem[clip_stem(uses[0].info).casefold()].add(media)
        rates_by_media[media].add(rate)
    ranges = []
    for (media_key, _), uses in by_media.items():
        media, info = uses[0].media, uses[0].info
        elsewhere = len(folders_by_stem[clip_stem(info).casefold()]) > 1
        several_rates = len(rates_by_media[media_key]) > 1
        for first, last, group in merged_uses(uses):
            stem = _output_stem(media, info, first, last, same_name_elsewhere=elsewhere, several_rates=several_rates)
            ranges.append(MediaRange(media, info, first, last, group, stem))
    return ConformPlan(tuple(ranges), tuple(planner.uses), tuple(planner.skipped), planner.audio_clips, handles,
                       tuple(planner.earlier_mattes))  # fmt: skip
