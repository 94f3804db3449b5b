"""An earlier render extended to a wider range: only the frames it lacks are rendered, its own are kept.

An edit trimmed longer needs frames ``first .. last`` of a clip of which an earlier render E
holds ``a .. b`` (overlapping or adjacent). Rendering the whole range again would matte E's
frames a second time; instead the wider range is a segmented render
(:mod:`~rvm_render.jobs.runner`) whose plan has E's frames as one segment already done:

- a head ``first .. a-1`` starts cold at ``first``, as any render of that range would;
- E's frames are a finished segment whose outputs are E's own files: assembly remuxes its
  movie's packets as they are and hard-links its frame files
  (:func:`~rvm_render.jobs.assemble.assemble_outputs`), so nothing of E is encoded again;
- a tail ``b+1 .. last`` warms the recurrent state up on the ``preroll_frames`` frames before it
  (never before its shot's first frame), as a parallel segment does: RVM's state converges
  within a few dozen frames, so the seam is close to a continuous render (``PREROLL_FRAMES``).
  Measured with E = 0..99 extended to 0..119 (640x360, auto ratio), mean |Δα| over the first
  8 new frames against a continuous render: 3.4e-4 (bedroom) and 8.7e-4 (juggle) with the
  default 64 frames, 2.3e-3 and 1.6e-3 starting cold.

Head and tail are cut at shot cuts and into pieces as :func:`~rvm_render.jobs.segments.plan_segments`
cuts any range (state handed over within each). The deliverables get the wider range's own
name; E's files are the caller's to retire once the new ones are committed
(:meth:`~rvm_render.jobs.earlier_render.EarlierRender.remove`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from rvm_render.jobs.checkpoint import RenderSpec, WorkDir
from rvm_render.jobs.cuts import detect_cuts_in_clip
from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.jobs.segments import Segment, SegmentPolicy, plan_segments
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers import OutputFormat

log = logging.getLogger(__name__)

__all__ = ["extension_cuts", "extension_segments", "kept_range", "mark_earlier_done"]


def kept_range(earlier: EarlierRender, info: MediaInfo) -> tuple[int, int]:
    """The 0-based frame indices ``earlier`` holds (its manifest counts frame numbers)."""
    return info.frame_index(earlier.first_frame), info.frame_index(earlier.last_frame)


def extension_cuts(info: MediaInfo, first: int, last: int, kept: tuple[int, int], preroll_frames: int) -> list[int]:
    """Shot cuts in the frames an extension decodes: its head, and its tail with the pre-roll before it.

    E's own frames are not decoded (a long earlier render extended by a few frames costs only those).
    """
    cuts: list[int] = []
    if first < kept[0]:
        cuts += detect_cuts_in_clip(info, first_frame=first, last_frame=kept[0] - 1)
    if kept[1] < last:
        scan_first = max(first, kept[1] + 1 - preroll_frames)
        cuts += detect_cuts_in_clip(info, first_frame=scan_first, last_frame=last)
    return sorted(set(cuts))


def extension_segments(
    first: int, last: int, kept: tuple[int, int], cuts: Sequence[int], policy: SegmentPolicy
) -> tuple[Segment, ...]:
    """Segments of ``first .. last`` around the ``kept`` frames (module doc); clip frame indices.

    Args:
        first, last: the range the deliverables cover (inclusive; contains ``kept``).
        kept: the earlier render's frames: one segment, done before anything renders.
        cuts: shot cuts (frames where a new shot starts).
        policy: segment length, the tail's pre-roll, batch alignment.
    """
    segments: list[Segment] = []

    def add(range_first: int, range_last: int) -> None:
        inside = [cut - range_first for cut in cuts if range_first < cut <= range_last]
        base = len(segments)
        for piece in plan_segments(range_last - range_first + 1, inside, policy):
            segments.append(dataclasses.replace(
                piece, index=piece.index + base, first_frame=piece.first_frame + range_first,
                last_frame=piece.last_frame + range_first,
                depends_on=None if piece.depends_on is None else piece.depends_on + base,
            ))  # fmt: skip

    if first < kept[0]:
        add(first, kept[0] - 1)
    segments.append(Segment(len(segments), kept[0], kept[1], starts_at_cut=True))
    if kept[1] < last:
        tail = len(segments)
        add(kept[1] + 1, last)
        if kept[1] + 1 not in cuts:
            shot_first = max([first, *(cut for cut in cuts if cut <= kept[1])])
            preroll = max(shot_first, kept[1] + 1 - policy.preroll_frames)
            segments[tail] = dataclasses.replace(segments[tail], starts_at_cut=False, preroll_first_frame=preroll)
    return tuple(segments)


def mark_earlier_done(work: WorkDir, spec: RenderSpec, earlier: EarlierRender, kept: tuple[int, int]) -> None:
    """Record the kept segment as done, its outputs E's files (absolute paths: assembly reads them in place)."""
    index = next(s.index for s in work.plan.segments if (s.first_frame, s.last_frame) == kept)
    if work.completed(index) is not None:
        return
    outputs = [{"format": name, "path": str(earlier.outputs[OutputFormat(name)]), "first_frame": kept[0],
                "last_frame": kept[1]} for name in spec.formats]  # fmt: skip
    work.mark_done(index, None, outputs)
    log.info("'%s': frames %d-%d kept from '%s'", spec.stem, *kept, earlier.manifest)
