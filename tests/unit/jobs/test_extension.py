"""extension_segments: an earlier render's frames one segment, head and tail around it, the tail warmed up."""

from __future__ import annotations

import itertools

import pytest

from rvm_render.jobs.extension import extension_segments
from rvm_render.jobs.segments import Segment, SegmentPolicy, segment_chains


def test_head_starts_cold_kept_is_one_segment_tail_prerolls_from_inside_the_kept_frames() -> None:
    segments = extension_segments(0, 29, (10, 19), [], SegmentPolicy(max_frames=1440, preroll_frames=4))
    assert segments == (
        Segment(0, 0, 9, starts_at_cut=True),
        Segment(1, 10, 19, starts_at_cut=True),
        Segment(2, 20, 29, starts_at_cut=False, preroll_first_frame=16),
    )


@pytest.mark.parametrize(
    ("cuts", "preroll_first_frame"),
    [((), 12), ((18,), 18), ((12,), 12), ((11,), 12), ((3,), 12)],
)
def test_the_tail_preroll_never_reaches_before_its_shot(cuts: tuple[int, ...], preroll_first_frame: int) -> None:
    segments = extension_segments(10, 29, (10, 19), cuts, SegmentPolicy(max_frames=1440, preroll_frames=8))
    assert segments[-1].preroll_first_frame == preroll_first_frame


def test_a_tail_starting_at_a_cut_starts_fresh() -> None:
    _, tail = extension_segments(10, 29, (10, 19), [20], SegmentPolicy(max_frames=1440, preroll_frames=8))
    assert tail == Segment(1, 20, 29, starts_at_cut=True)


@pytest.mark.parametrize(("max_frames", "cuts"), list(itertools.product((1, 3, 4), ((), (5,), (24,), (5, 20, 26)))))
def test_every_frame_once_and_state_handed_over_within_head_and_tail(max_frames: int, cuts: tuple[int, ...]) -> None:
    segments = extension_segments(0, 29, (10, 19), cuts, SegmentPolicy(max_frames=max_frames, preroll_frames=4))
    assert [s.index for s in segments] == list(range(len(segments)))
    assert [f for s in segments for f in range(s.first_frame, s.last_frame + 1)] == list(range(30))
    kept = next(s for s in segments if (s.first_frame, s.last_frame) == (10, 19))
    assert kept.depends_on is None and kept.preroll_first_frame is None
    for segment in segments:
        assert segment.starts_at_cut == (segment.first_frame in (0, 10, *cuts))
        if segment.depends_on is not None:
            assert segments[segment.depends_on].last_frame + 1 == segment.first_frame
            assert segment.first_frame not in cuts
    chains = segment_chains(segments)
    assert sum(len(chain) for chain in chains) == len(segments)
