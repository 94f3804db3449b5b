"""A real edit built with opentimelineio over the shared clips, as an editor would export it.

A 23.976 timeline starting at 01:00:00:00 (times written at the timeline rate, as Resolve does)
over 24 fps media with timecode 01:00:00:00, 29.97 media and 30 fps media without timecode:

V1: J1 (juggle 10..57) -dissolve 6+6- D1 (dog from frame 30, 48 timeline frames) | gap 24 |
    J2 (juggle from 50, 48 timeline frames: overlaps J1's range)
V2: gap 30 | B1 (bedroom from 20, 24 timeline frames at 2x speed) | compound clip: a nested
    stack whose track holds J3 (juggle 150..173) | title (a generator) | lost (media at an
    author's path) | D2 (dog frame 200, frozen for 12 frames)
A1: the dog's audio
"""

from __future__ import annotations

from pathlib import Path

import av
import opentimelineio as otio
from opentimelineio.opentime import RationalTime as RT
from opentimelineio.opentime import TimeRange as TR

__all__ = ["TIMELINE_RATE", "remux_with_timecode", "build_edit", "EXPECTED_RANGES"]

TIMELINE_RATE = 24000 / 1001
HOUR_AT_24 = 86400  # 01:00:00:00 at 24 fps

# Hand-computed merged ranges (frame numbers, default 12 handles), per media stem:
#   juggle (24 fps): J1 shows 10..63 (48 frames, plus the dissolve's 6 timeline frames = 6.006 media
#     frames, nearest: 64 exclusive); J2 50..97 (48 timeline frames = 48.048 media frames from 50);
#     J3 150..173. With handles: 0..75 (clamped), 38..109 -> merged 0..109; 138..185.
#   dog (29.97): D1 from frame 30 for 48 timeline frames = 60 media frames, 30..89, the dissolve's
#     6 timeline frames before it = 7.5 media frames: 22.5 rounds to 23 -> 23..89 -> 11..101;
#     D2 frozen on 200 -> 188..212.
#   bedroom (30 fps): B1 from 20, 24 timeline frames = 1.001 s at 2x = 60.06 media frames: 20..79
#     -> 8..91.
EXPECTED_RANGES = {
    "juggle_tc": [(0, 109), (138, 185)],
    "01_dog": [(11, 101), (188, 212)],
    "bedroom": [(8, 91)],
}


def remux_with_timecode(source: Path, target: Path, timecode: str) -> Path:
    """Copy ``source``'s video packets into ``target`` (a .mov) whose video stream starts at ``timecode``."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        video.metadata["timecode"] = timecode
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = video
                out.mux(packet)
    return target


def _at_timeline_rate(frames: float, rate: float) -> RT:
    """``frames`` of media at ``rate``, written at the timeline rate (as Resolve writes source ranges)."""
    return RT(frames, rate).rescaled_to(TIMELINE_RATE)


def _clip(name: str, path: Path | str, media_rate: float, media_frames: int, first: float, duration: RT,
          start_frames: int = 0) -> otio.schema.Clip:  # fmt: skip
    available = TR(_at_timeline_rate(start_frames, media_rate), _at_timeline_rate(media_frames, media_rate))
    reference = otio.schema.ExternalReference(target_url=str(path), available_range=available)
    source = TR(_at_timeline_rate(start_frames + first, media_rate), duration)
    return otio.schema.Clip(name=name, media_reference=reference, source_range=source)


def build_edit(juggle_tc: Path, dog: Path, bedroom: Path) -> otio.schema.Timeline:
    """The edit described in the module docstring (media paths as given)."""
    frames = lambda n: RT(n, TIMELINE_RATE)  # noqa: E731 - a unit, like a literal
    timeline = otio.schema.Timeline("conform test", global_start_time=RT(HOUR_AT_24, 24).rescaled_to(TIMELINE_RATE))

    v1 = otio.schema.Track("V1", kind=otio.schema.TrackKind.Video)
    v1.append(_clip("J1", juggle_tc, 24, 247, 10, RT(48, 24).rescaled_to(TIMELINE_RATE), HOUR_AT_24))
    v1.append(otio.schema.Transition("dissolve", otio.schema.TransitionTypes.SMPTE_Dissolve, frames(6), frames(6)))
    v1.append(_clip("D1", dog, 30000 / 1001, 289, 30, frames(48)))
    v1.append(otio.schema.Gap(source_range=TR(duration=frames(24))))
    v1.append(_clip("J2", juggle_tc, 24, 247, 50, frames(48), HOUR_AT_24))

    v2 = otio.schema.Track("V2", kind=otio.schema.TrackKind.Video)
    v2.append(otio.schema.Gap(source_range=TR(duration=frames(30))))
    retimed = _clip("B1", bedroom, 30, 200, 20, frames(24))
    retimed.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    v2.append(retimed)
    inner = otio.schema.Track("inner", kind=otio.schema.TrackKind.Video)
    inner.append(_clip("J3", juggle_tc, 24, 247, 150, RT(24, 24).rescaled_to(TIMELINE_RATE), HOUR_AT_24))
    compound = otio.schema.Stack("compound")
    compound.append(inner)
    v2.append(compound)
    title = otio.schema.Clip("title", source_range=TR(frames(0), frames(12)))
    title.media_reference = otio.schema.GeneratorReference(generator_kind="SolidColor")
    v2.append(title)
    v2.append(_clip("lost", "/Volumes/Edit/Media/missing_take.mov", 24, 100, 0, frames(12)))
    frozen = _clip("D2", dog, 30000 / 1001, 289, 200, frames(12))
    frozen.effects.append(otio.schema.FreezeFrame())
    v2.append(frozen)

    a1 = otio.schema.Track("A1", kind=otio.schema.TrackKind.Audio)
    a1.append(_clip("dog audio", dog, 30000 / 1001, 289, 0, frames(48)))
    timeline.tracks.extend([v1, v2, a1])
    timeline.metadata["editor"] = {"exported_by": "tests/support/edits.py"}
    return timeline
