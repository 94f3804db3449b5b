"""Segment plans: a clip split into frame ranges that can be rendered, resumed and farmed out.

RVM is recurrent: the matte of frame t depends on hidden state (r1..r4) carried from frames
before it within the same shot. A segment plan splits a clip

- at every shot cut, where the state starts fresh anyway (``starts_at_cut``), and
- inside a shot, into near-equal pieces of at most ``max_frames`` frames.

A piece that does not start at a cut needs the state of the frames before it, in one of two
ways chosen by ``mode``:

- ``"sequential"``: the state is handed over: the segment ``depends_on`` the one before it,
  which must finish first (checkpointed state, bit-exact with an unsplit render).
- ``"parallel"``: the segment warms the state up itself by decoding and matting (but not
  writing) frames ``preroll_first_frame .. first_frame - 1``, never before its shot's first
  frame; nothing depends on anything, so every segment can run at once (a close
  approximation: RVM's state converges within a few dozen frames).

Frame ranges are inclusive (``first_frame`` .. ``last_frame``), 0-based within the clip.
Frame 0 starts the first shot, so the first segment has ``starts_at_cut=True``.

Batch alignment (``SegmentPolicy.frame_multiple``): the engine mattes ``T`` frames per call
(``RenderSettings.batch_frames``), and on CUDA a ``[1, T]`` clip call is not bitwise equal to
other groupings of the same frames. Each segment starts a new batch, so within a shot every
segment but the last is a multiple of ``T`` frames long: batch boundaries then fall where a
single pass over the shot puts them, and a sequential segmented render equals it bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from rvm_render.errors import ConfigError

__all__ = [
    "DEFAULT_SEGMENT_FRAMES",
    "PREROLL_FRAMES",
    "PlanMode",
    "Segment",
    "SegmentPolicy",
    "plan_segments",
    "segment_chains",
    "shot_ranges",
]

PlanMode = Literal["sequential", "parallel"]
PLAN_MODES: tuple[str, ...] = get_args(PlanMode)

DEFAULT_SEGMENT_FRAMES = 1440
"""Default most frames per segment (``--segment-frames``): one minute of 24 fps footage, about a
minute of work on a GPU (ProRes + EXR deliverables at 20-30 fps end to end) and a few minutes on
a CPU. A kill loses at most that much work; the checkpoint per segment (recurrent state, a few
MB) costs well under a second. A multiple of every power-of-two batch size up to 32."""

PREROLL_FRAMES = 64
"""Default warm-up frames before a parallel segment (``--preroll``), measured by
``bench/preroll.py`` on the three shared clips at their auto ratio and 0.25 (3 boundaries each):
mean |Δα| over the first 8 frames after a boundary, vs a continuous render, averaged over all /
worst clip+ratio: N=16 9.1e-4 / 1.7e-3, N=32 6.4e-4 / 1.3e-3, N=64 3.5e-4 / 6.2e-4 (bedroom.mp4,
hand-held). 64 is the smallest N under 1e-3 for every clip and under 5e-4 overall; it costs
64 extra frames per segment (4% of a default 1440-frame segment)."""


@dataclass(frozen=True, slots=True)
class SegmentPolicy:
    """How long segments may be and how much state warm-up a parallel segment decodes.

    Args:
        max_frames: most frames one segment renders (>= 1); rounded down to a multiple of
            ``frame_multiple`` (but at least one multiple).
        preroll_frames: frames before a parallel segment (within its shot) matted only to
            warm up the recurrent state (>= 0).
        frame_multiple: within a shot, every segment but the last is a multiple of this many
            frames long (>= 1); the engine's batch size, see the module docstring.

    Raises:
        ConfigError: a field is out of range; the message names the field.
    """

    max_frames: int
    preroll_frames: int = 0
    frame_multiple: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.max_frames, bool) or not isinstance(self.max_frames, int) or self.max_frames < 1:
            raise ConfigError(f"segment_policy.max_frames: must be an integer >= 1, got {self.max_frames!r}")
        if (
            isinstance(self.preroll_frames, bool)
            or not isinstance(self.preroll_frames, int)
            or self.preroll_frames < 0
        ):
            raise ConfigError(
                f"segment_policy.preroll_frames: must be an integer >= 0, got {self.preroll_frames!r}"
            )
        if (
            isinstance(self.frame_multiple, bool)
            or not isinstance(self.frame_multiple, int)
            or self.frame_multiple < 1
        ):
            raise ConfigError(
                f"segment_policy.frame_multiple: must be an integer >= 1, got {self.frame_multiple!r}"
            )


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit of work: render frames ``first_frame`` .. ``last_frame`` (inclusive).

    Attributes:
        index: position in the plan, 0-based; segments are ordered by ``first_frame``.
        first_frame: first frame written.
        last_frame: last frame written (inclusive).
        starts_at_cut: the segment starts a shot (frame 0 or a cut): state starts fresh.
        preroll_first_frame: parallel mode only, for a segment not starting a shot: the first
            frame decoded and matted to warm up the state (never before the shot's first
            frame); ``None`` otherwise.
        depends_on: sequential mode only, for a segment not starting a shot: the index of the
            segment whose final state it starts from; ``None`` otherwise.
    """

    index: int
    first_frame: int
    last_frame: int
    starts_at_cut: bool
    preroll_first_frame: int | None = None
    depends_on: int | None = None

    @property
    def frames(self) -> int:
        """Number of frames written."""
        return self.last_frame - self.first_frame + 1

    @property
    def decode_first_frame(self) -> int:
        """First frame to decode: the preroll start if there is one, else ``first_frame``."""
        return self.first_frame if self.preroll_first_frame is None else self.preroll_first_frame


def shot_ranges(frames_total: int, cuts: Iterable[int]) -> list[tuple[int, int]]:
    """Inclusive ``(first_frame, last_frame)`` of every shot of a clip.

    Args:
        frames_total: frames in the clip (>= 0).
        cuts: frame indices where a new shot starts, any order; 0 and repeats are ignored.

    Returns:
        Shots in order; empty for an empty clip.

    Raises:
        ValueError: ``frames_total`` < 0, or a cut outside ``0 .. frames_total - 1``.
    """
    if frames_total < 0:
        raise ValueError(f"frames_total must be >= 0, got {frames_total}")
    starts = {0}
    for cut in cuts:
        if not 0 <= cut < frames_total:
            raise ValueError(f"cut at frame {cut} is outside the clip's frames 0..{frames_total - 1}")
        starts.add(int(cut))
    if frames_total == 0:
        return []
    ordered = sorted(starts)
    ends = [start - 1 for start in ordered[1:]] + [frames_total - 1]
    return list(zip(ordered, ends, strict=True))


def plan_segments(
    frames_total: int,
    cuts: Iterable[int],
    policy: SegmentPolicy,
    mode: PlanMode = "sequential",
) -> list[Segment]:
    """Split a clip into segments at shot cuts and at most ``policy.max_frames`` frames each.

    A shot of ``L`` frames becomes ``ceil(L / max_frames)`` segments whose lengths differ by at
    most one (longer ones first), so no segment is a tiny leftover. With
    ``policy.frame_multiple = m > 1`` the same is done in units of ``m`` frames: lengths are
    multiples of ``m`` (the shot's last segment may end on a partial unit) and differ by at
    most ``m``.

    Args:
        frames_total: frames in the clip (>= 0).
        cuts: frame indices where a new shot starts (from :func:`rvm_render.jobs.cuts.detect_cuts`).
        policy: segment length and preroll.
        mode: ``"sequential"`` (state handed over, ``depends_on``) or ``"parallel"``
            (state warmed up, ``preroll_first_frame``); see the module docstring.

    Returns:
        Segments ordered by frame, covering every frame exactly once; ``index`` = position.

    Raises:
        ConfigError: unknown ``mode``.
        ValueError: ``frames_total`` < 0 or a cut outside the clip.
    """
    if mode not in PLAN_MODES:
        raise ConfigError(f"segment mode: unknown {mode!r} (choose one of {', '.join(PLAN_MODES)})")
    segments: list[Segment] = []
    unit = policy.frame_multiple
    max_units = max(1, policy.max_frames // unit)
    for shot_first, shot_last in shot_ranges(frames_total, cuts):
        units = -(-(shot_last - shot_first + 1) // unit)
        pieces = -(-units // max_units)
        base, longer = divmod(units, pieces)
        first = shot_first
        for piece in range(pieces):
            last = min(shot_last, first + (base + (1 if piece < longer else 0)) * unit - 1)
            index = len(segments)
            at_cut = piece == 0
            preroll: int | None = None
            depends_on: int | None = None
            if not at_cut and mode == "parallel":
                preroll = max(shot_first, first - policy.preroll_frames)
            elif not at_cut:
                depends_on = index - 1
            segments.append(Segment(index, first, last, at_cut, preroll, depends_on))
            first = last + 1
    return segments


def segment_chains(segments: Iterable[Segment]) -> list[list[Segment]]:
    """Segments grouped by state hand-over: each chain must run in order, chains are independent.

    A segment with ``depends_on=None`` starts a chain; every other segment joins the chain of
    the segment it depends on. A parallel plan gives one chain per segment.

    Args:
        segments: a plan from :func:`plan_segments` (any order).

    Returns:
        Chains ordered by their first segment, each in dependency order.

    Raises:
        ValueError: a segment depends on a missing segment, or two depend on the same one.
    """
    by_index = {segment.index: segment for segment in segments}
    successor: dict[int, Segment] = {}
    for segment in by_index.values():
        if segment.depends_on is None:
            continue
        if segment.depends_on not in by_index:
            raise ValueError(f"segment {segment.index} depends on missing segment {segment.depends_on}")
        if segment.depends_on in successor:
            raise ValueError(f"segments {successor[segment.depends_on].index} and {segment.index} "
                             f"both depend on segment {segment.depends_on}")
        successor[segment.depends_on] = segment
    chains: list[list[Segment]] = []
    for head in sorted(by_index.values(), key=lambda s: s.index):
        if head.depends_on is not None:
            continue
        chain = [head]
        while chain[-1].index in successor:
            chain.append(successor[chain[-1].index])
        chains.append(chain)
    if sum(len(chain) for chain in chains) != len(by_index):
        raise ValueError("segment dependencies form a cycle")
    return chains
