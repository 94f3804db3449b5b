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

__all__ = [
    "TIMELINE_RATE",
    "remux_with_timecode",
    "build_edit",
    "EXPECTED_RANGES",
    "image_sequence",
    "small_movie",
    "build_export_edit",
]

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


# --- an edit in the shapes real exports take -------------------------------------------------------

EXPORT_SIZE = (320, 180)
RESOLVE_RATE = 23.976  # Resolve writes NTSC rates rounded
HIERO_RATE = 23.976024627685547  # Hiero writes the float nearest 24000/1001 in single precision
TAKE_AT = 108000  # 01:00:00:00 at 30 fps: where the edit places the untagged take


def _small_frames(source: Path, skip: int, count: int) -> list[av.VideoFrame]:
    with av.open(str(source)) as container:
        frames = []
        for index, frame in enumerate(container.decode(video=0)):
            if index >= skip:
                frames.append(frame.reformat(*EXPORT_SIZE, format="rgb24"))
            if len(frames) == count:
                return frames
    raise AssertionError(f"{source} has fewer than {skip + count} frames")


def image_sequence(source: Path, pattern: Path, first_number: int, count: int, *, skip: int = 0) -> Path:
    """``count`` frames of a real clip (from ``skip``, scaled to EXPORT_SIZE) as PNGs ``pattern % number``."""
    pattern.parent.mkdir(parents=True, exist_ok=True)
    for number, frame in enumerate(_small_frames(source, skip, count), start=first_number):
        frame.to_image().save(pattern.parent / (pattern.name % number))
    return pattern


def small_movie(source: Path, target: Path, count: int) -> Path:
    """``count`` frames of a real clip re-encoded small (H.264, EXPORT_SIZE, the source's rate, no timecode)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as inp:
        rate = inp.streams.video[0].average_rate
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *EXPORT_SIZE, "yuv420p"
        for frame in _small_frames(source, 0, count):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return target


def _sequence_clip(name: str, folder: Path, prefix: str, rate: float, available_start: float, frames: int,
                   first: float, duration: float) -> otio.schema.Clip:  # fmt: skip
    reference = otio.schema.ImageSequenceReference(
        target_url_base=str(folder) + "/", name_prefix=prefix, name_suffix=".png", start_frame=1001, frame_step=1,
        rate=rate, frame_zero_padding=4, available_range=TR(RT(available_start, rate), RT(frames, rate)),
    )  # fmt: skip
    return otio.schema.Clip(name, reference, TR(RT(available_start + first, rate), RT(duration, rate)))


def _take_clip(name: str, target: str, first: int, duration: int) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(target_url=target, available_range=TR(RT(TAKE_AT, 30), RT(40, 30)))
    return otio.schema.Clip(name, reference, TR(RT(TAKE_AT + first, 30), RT(duration, 30)))


def build_export_edit(folder: Path, juggle: Path, dog: Path, bedroom: Path) -> otio.schema.Timeline:
    """Media in ``folder`` and an edit over it in the shapes Resolve and Hiero export (see the test module).

    ``shot.####.png`` and ``plate.####.png`` (1001-1030), stills ``Name_V7_310821_000N.png`` (N = 1, 2, 3,
    5: numbered like a sequence with a gap) and ``clips/take.mov`` (40 frames, 30 fps, no timecode) are
    written into ``folder``; the take is referenced by the relative path ``clips/take.mov``.
    """
    image_sequence(juggle, folder / "plates" / "shot.%04d.png", 1001, 30)
    image_sequence(juggle, folder / "hiero" / "plate.%04d.png", 1001, 30, skip=60)
    (folder / "stills").mkdir()
    for number, skip in ((1, 0), (2, 40), (3, 80), (5, 120)):
        _small_frames(dog, skip, 1)[0].to_image().save(folder / "stills" / f"Name_V7_310821_{number:04d}.png")
    small_movie(bedroom, folder / "clips" / "take.mov", 40)

    timeline = otio.schema.Timeline("export", global_start_time=RT(86400, RESOLVE_RATE))
    v1 = otio.schema.Track("", kind=otio.schema.TrackKind.Video)  # Resolve's fragment: unnamed, from 0, NTSC
    v1.append(_sequence_clip("S1", folder / "plates", "shot.", RESOLVE_RATE, 0, 30, 5, 12))
    v1.append(_sequence_clip("S1 at 25", folder / "plates", "shot.", 25, 0, 30, 14, 10))
    v1.append(_take_clip("T", "clips/take.mov", 5, 12))
    v1.append(_take_clip("Z", "clips/take.mov", 8, 0))  # zero duration
    v2 = otio.schema.Track("", kind=otio.schema.TrackKind.Video)  # a still of one frame held for 48, a reverse
    still = otio.schema.ExternalReference(target_url=str(folder / "stills" / "Name_V7_310821_0003.png"),
                                          available_range=TR(RT(0, RESOLVE_RATE), RT(1, RESOLVE_RATE)))  # fmt: skip
    v2.append(otio.schema.Clip("Name_V7_310821_0003.png", still, TR(RT(0, RESOLVE_RATE), RT(48, RESOLVE_RATE))))
    reversed_take = _take_clip("R", str(folder / "clips" / "take.mov"), 15, 12)
    reversed_take.effects.append(otio.schema.LinearTimeWarp(time_scalar=-1))
    v2.append(reversed_take)
    hiero = otio.schema.Track("Hiero V1", kind=otio.schema.TrackKind.Video)  # 10:00:00:00 plate at a float rate
    hiero.append(_sequence_clip("B", folder / "hiero", "plate.", HIERO_RATE, 864000, 30, 10, 12))
    hiero.append(_sequence_clip("B2", folder / "hiero", "plate.", RESOLVE_RATE, 864000, 30, 14, 10))  # as Resolve
    warped = _take_clip("W", str(folder / "clips" / "take.mov"), 2, 6)
    warped.effects.append(otio.schema.TimeEffect(name="TimeWarp", effect_name="TimeWarp"))
    hiero.append(warped)
    hiero.append(_take_clip("P", str(folder / "clips" / "take.mov"), 35, 12))  # runs 7 frames past the media
    timeline.tracks.extend([v1, v2, hiero])
    return timeline
