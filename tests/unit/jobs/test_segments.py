"""plan_segments: every frame exactly once, never across a cut, state hand-over or preroll."""

from __future__ import annotations

import itertools
import math

import pytest

from rvm_render.errors import ConfigError
from rvm_render.jobs.segments import (
    Segment,
    SegmentPolicy,
    plan_segments,
    segment_chains,
    shot_ranges,
)

MAX_FRAMES = (1, 2, 3, 4, 7)
PREROLLS = (0, 2, 5)


def _all_cut_sets(frames_total: int) -> list[tuple[int, ...]]:
    candidates = range(1, frames_total)
    return [combo for size in range(frames_total) for combo in itertools.combinations(candidates, size)]


def _shot_start_of(frame: int, cuts: tuple[int, ...]) -> int:
    """Second computation of a frame's shot start: the last cut at or before it."""
    return max([0, *(cut for cut in cuts if cut <= frame)])


def _check_plan(frames_total: int, cuts: tuple[int, ...], policy: SegmentPolicy, mode: str) -> list[Segment]:
    segments = plan_segments(frames_total, cuts, policy, mode)  # type: ignore[arg-type]
    written = [frame for s in segments for frame in range(s.first_frame, s.last_frame + 1)]
    assert written == list(range(frames_total)), "every frame exactly once, in order"
    assert [s.index for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert 1 <= segment.frames <= policy.max_frames
        shot_start = _shot_start_of(segment.first_frame, cuts)
        assert _shot_start_of(segment.last_frame, cuts) == shot_start, "a segment never spans a cut"
        assert segment.starts_at_cut == (segment.first_frame == shot_start)
        if segment.starts_at_cut:
            assert segment.depends_on is None and segment.preroll_first_frame is None
        elif mode == "sequential":
            assert segment.depends_on == segment.index - 1
            assert segments[segment.index - 1].last_frame + 1 == segment.first_frame
            assert segment.preroll_first_frame is None
        else:
            assert segment.depends_on is None
            assert segment.preroll_first_frame == max(shot_start, segment.first_frame - policy.preroll_frames)
        assert shot_start <= segment.decode_first_frame <= segment.first_frame
    # Fewest segments per shot, lengths within a shot differ by at most one.
    for shot_first, shot_last in shot_ranges(frames_total, cuts):
        lengths = [s.frames for s in segments if shot_first <= s.first_frame <= shot_last]
        assert len(lengths) == math.ceil((shot_last - shot_first + 1) / policy.max_frames)
        assert max(lengths) - min(lengths) <= 1
        assert lengths == sorted(lengths, reverse=True)
    return segments


@pytest.mark.parametrize("frames_total", range(0, 10))
def test_every_cut_set_every_policy(frames_total: int) -> None:
    for cuts in _all_cut_sets(frames_total):
        for max_frames, preroll in itertools.product(MAX_FRAMES, PREROLLS):
            policy = SegmentPolicy(max_frames=max_frames, preroll_frames=preroll)
            sequential = _check_plan(frames_total, cuts, policy, "sequential")
            parallel = _check_plan(frames_total, cuts, policy, "parallel")
            ranges = [(s.first_frame, s.last_frame, s.starts_at_cut) for s in sequential]
            assert ranges == [(s.first_frame, s.last_frame, s.starts_at_cut) for s in parallel]


def test_long_clip_with_cuts() -> None:
    policy = SegmentPolicy(max_frames=100, preroll_frames=24)
    cuts = (40, 41, 500, 1999)
    segments = _check_plan(2000, cuts, policy, "parallel")
    assert {s.first_frame for s in segments if s.starts_at_cut} == {0, *cuts}
    _check_plan(2000, cuts, policy, "sequential")


def test_cuts_may_be_unsorted_repeated_or_zero() -> None:
    policy = SegmentPolicy(max_frames=4)
    assert plan_segments(20, [15, 0, 5, 5], policy) == plan_segments(20, [5, 15], policy)


def test_empty_clip_has_no_segments() -> None:
    assert plan_segments(0, [], SegmentPolicy(max_frames=3)) == []


@pytest.mark.parametrize("cut", [-1, 10, 11])
def test_cut_outside_clip_is_refused(cut: int) -> None:
    with pytest.raises(ValueError, match=f"cut at frame {cut}"):
        plan_segments(10, [cut], SegmentPolicy(max_frames=3))


def test_unknown_mode_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="sequential, parallel"):
        plan_segments(10, [], SegmentPolicy(max_frames=3), "farm")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"max_frames": 0}, "max_frames"), ({"max_frames": 2.5}, "max_frames"),
     ({"max_frames": True}, "max_frames"), ({"max_frames": 5, "preroll_frames": -1}, "preroll_frames")],
)
def test_policy_validation_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"segment_policy.{field}"):
        SegmentPolicy(**fields)  # type: ignore[arg-type]


def test_policy_and_segment_are_frozen() -> None:
    policy = SegmentPolicy(max_frames=5)
    with pytest.raises(AttributeError):
        policy.max_frames = 6  # type: ignore[misc]
    segment = plan_segments(5, [], policy)[0]
    with pytest.raises(AttributeError):
        segment.first_frame = 1  # type: ignore[misc]


def test_shot_ranges_cover_the_clip() -> None:
    assert shot_ranges(10, [3, 7]) == [(0, 2), (3, 6), (7, 9)]
    assert shot_ranges(1, []) == [(0, 0)]
    with pytest.raises(ValueError):
        shot_ranges(-1, [])


@pytest.mark.parametrize("frames_total", [1, 9, 31])
def test_chains_follow_dependencies(frames_total: int) -> None:
    policy = SegmentPolicy(max_frames=3, preroll_frames=2)
    cuts = [c for c in (4, 5, 17) if c < frames_total]
    sequential = plan_segments(frames_total, cuts, policy, "sequential")
    chains = segment_chains(reversed(sequential))
    assert sorted(s.index for chain in chains for s in chain) == [s.index for s in sequential]
    for chain in chains:
        assert chain[0].starts_at_cut
        assert all(later.depends_on == earlier.index for earlier, later in itertools.pairwise(chain))
    assert len(chains) == len(shot_ranges(frames_total, cuts))
    parallel = plan_segments(frames_total, cuts, policy, "parallel")
    assert segment_chains(parallel) == [[s] for s in parallel]


def test_chains_refuse_broken_dependencies() -> None:
    with pytest.raises(ValueError, match="missing segment 7"):
        segment_chains([Segment(0, 0, 1, True), Segment(1, 2, 3, False, depends_on=7)])
    with pytest.raises(ValueError, match="both depend on segment 0"):
        segment_chains([Segment(0, 0, 1, True), Segment(1, 2, 3, False, depends_on=0),
                        Segment(2, 4, 5, False, depends_on=0)])
    with pytest.raises(ValueError, match="cycle"):
        segment_chains([Segment(0, 0, 1, False, depends_on=1), Segment(1, 2, 3, False, depends_on=0)])


@pytest.mark.parametrize("frames_total", [0, 1, 7, 8, 9, 23, 24, 25, 100])
def test_segments_align_to_the_engine_batch(frames_total: int) -> None:
    """With frame_multiple=T, every segment but a shot's last is a whole number of batches."""
    for multiple, max_frames in itertools.product((1, 2, 4, 8), (1, 3, 4, 8, 12, 30)):
        policy = SegmentPolicy(max_frames=max_frames, frame_multiple=multiple)
        cuts = tuple(cut for cut in (5, 13) if cut < frames_total)
        segments = plan_segments(frames_total, cuts, policy)
        written = [frame for s in segments for frame in range(s.first_frame, s.last_frame + 1)]
        assert written == list(range(frames_total))
        longest = max(multiple, max_frames // multiple * multiple)
        for position, segment in enumerate(segments):
            following = segments[position + 1] if position + 1 < len(segments) else None
            assert 1 <= segment.frames <= longest
            if following is not None and not following.starts_at_cut:
                assert segment.frames % multiple == 0, (policy, segment)
        if multiple == 1:
            assert segments == plan_segments(frames_total, cuts, SegmentPolicy(max_frames=max_frames))


def test_frame_multiple_is_validated() -> None:
    with pytest.raises(ConfigError, match="segment_policy.frame_multiple"):
        SegmentPolicy(max_frames=8, frame_multiple=0)
