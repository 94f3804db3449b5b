"""Cut detection on real footage: exact cut frames between clips, silence within a shot.

Frames are decoded with PyAV directly (RGB 8-bit, the clips' own size), so this file depends
only on jobs.cuts. Each clip is decoded once per module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from rvm_render.jobs.cuts import DEFAULT_CUT_THRESHOLD, CutDetector, detect_cuts

CLIPS = ("05_default_juggle.mp4", "01_dog.mp4", "bedroom.mp4")
SIZE = (1280, 720)  # juggle and dog (LICENSES.md); bedroom (960x540) is scaled up to it
HEAD_FRAMES = 40


def decoded_frames(path: Path, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a clip's first video stream, optionally scaled to (width, height)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if size is not None and (frame.width, frame.height) != size:
                frame = frame.reformat(width=size[0], height=size[1])
            yield frame.to_ndarray(format="rgb24")


@dataclass(frozen=True)
class ClipScan:
    frames: int
    cuts: list[int]
    distances: list[float]
    head: list[np.ndarray]


@pytest.fixture(scope="module")
def scans(clips_dir: Path) -> dict[str, ClipScan]:
    """Every clip streamed once through a CutDetector; the first frames kept for splicing."""
    result: dict[str, ClipScan] = {}
    for name in CLIPS:
        detector = CutDetector()
        distances: list[float] = []
        head: list[np.ndarray] = []
        count = 0
        for index, rgb in enumerate(decoded_frames(clips_dir / name)):
            detector.push(index, rgb)
            if detector.last_distance is not None:
                distances.append(detector.last_distance)
            if index < HEAD_FRAMES:
                head.append(rgb)
            count += 1
        result[name] = ClipScan(count, detector.cuts, distances, head)
    return result


@pytest.fixture(scope="module")
def heads(scans: dict[str, ClipScan], clips_dir: Path) -> dict[str, list[np.ndarray]]:
    """First frames of every clip at one size, as an editor would conform them."""
    result: dict[str, list[np.ndarray]] = {}
    for name, scan in scans.items():
        if scan.head[0].shape[:2] == (SIZE[1], SIZE[0]):
            result[name] = scan.head
        else:
            result[name] = list(itertools.islice(decoded_frames(clips_dir / name, SIZE), HEAD_FRAMES))
    return result


@pytest.mark.parametrize("name", CLIPS)
def test_no_cut_within_a_shot(scans: dict[str, ClipScan], name: str) -> None:
    scan = scans[name]
    assert scan.cuts == []
    assert len(scan.distances) == scan.frames - 1
    # Camera motion stays well below the threshold: at most half of it.
    assert max(scan.distances) < DEFAULT_CUT_THRESHOLD / 2


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(CLIPS, 2)))
def test_cut_between_two_clips_is_found_exactly(heads: dict[str, list[np.ndarray]], first: str,
                                               second: str) -> None:
    spliced = heads[first] + heads[second]
    assert detect_cuts(spliced) == [len(heads[first])]


def test_streaming_reports_each_cut_on_its_frame(heads: dict[str, list[np.ndarray]]) -> None:
    juggle, dog, bedroom = (heads[name] for name in CLIPS)
    spliced = juggle[:25] + dog[:30] + bedroom[:20] + juggle[25:40]
    expected = [25, 55, 75]
    detector = CutDetector()
    fired = [index for index, rgb in enumerate(spliced) if detector.push(index, rgb)]
    assert fired == expected == detector.cuts
    # Every cut scores at least twice the threshold.
    assert min(content_distance_at(spliced, cut) for cut in expected) >= 2 * DEFAULT_CUT_THRESHOLD


def content_distance_at(frames: list[np.ndarray], index: int) -> float:
    """Distance between frame index-1 and index, by the detector itself."""
    detector = CutDetector()
    detector.push(index - 1, frames[index - 1])
    detector.push(index, frames[index])
    assert detector.last_distance is not None
    return detector.last_distance


def test_sixteen_bit_frames_give_the_same_cuts(heads: dict[str, list[np.ndarray]]) -> None:
    spliced = heads[CLIPS[0]][:10] + heads[CLIPS[2]][:10]
    wide = [frame.astype(np.uint16) * 257 for frame in spliced]
    assert detect_cuts(wide) == detect_cuts(spliced) == [10]


def _write_clip(path: Path, frames: list[np.ndarray], size: tuple[int, int] = (320, 180)) -> None:
    """Encode frames (scaled to a small size) as an H.264 clip, as an edit would be delivered."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=size[0], height=size[1],
                                                                                format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_detect_cuts_in_clip_reads_through_media(heads: dict[str, list[np.ndarray]], tmp_path: Path) -> None:
    from rvm_render.jobs.cuts import detect_cuts_in_clip
    from rvm_render.media.probe import probe

    path = tmp_path / "edit.mp4"
    _write_clip(path, heads[CLIPS[0]][:20] + heads[CLIPS[1]][:20])
    info = probe(path)
    assert info.frames == 40
    assert detect_cuts_in_clip(info) == [20]
    assert detect_cuts_in_clip(info, first_frame=5, last_frame=30) == [20]
    assert detect_cuts_in_clip(info, first_frame=20) == [], "a range's first frame starts its shot"
    assert detect_cuts_in_clip(info, last_frame=19) == []
