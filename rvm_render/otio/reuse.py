"""Mattes an earlier conform left in the output folder, reused only while still right and whole.

A conform run again (after an interruption, or on an edit cut further) renders only what it has
not got. An earlier matte (a ``<stem>.rvm.json`` manifest in the output folder and the outputs
it lists) serves a clip when all of these hold:

- it covers the media frames the clip needs (its range may be wider: the clip is placed inside it);
- its source is the same file as when it was rendered: the fingerprint the manifest records
  (size, mtime, first MiB, as ``plan.json`` records it for resume) matches the source now;
- it was rendered with these settings: weights, variant, downsample ratio, and every deliverable
  asked for is among its outputs;
- it is whole: every frame of a sequence is on disk, and a movie holds every frame of its range
  (probed by counting packets, so a truncated movie is not whole).

A clip trimmed past the frames its earlier matte holds (its frames overlap or touch that matte's,
but are not inside them) *extends* it: the range rendered is the union, under its own name, and
only the frames the earlier matte lacks are rendered (:mod:`~rvm_render.jobs.extension`); the
uses the earlier matte served move to the union, and once the conform is written the earlier
matte's files go (:attr:`ReusePlan.superseded`). A clip whose frames are apart from every earlier
matte's is rendered on its own.

Anything else is rendered again; an earlier render at the same name is this conform's own and is
replaced (atomically, as ``--overwrite`` replaces a render), never refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rvm_render.engine import Matter
from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.otio.requests import ClipUse, ConformPlan, MediaRange, merged_uses
from rvm_render.pipeline import RenderSettings
from rvm_render.pipeline.manifest import MANIFEST_SUFFIX

log = logging.getLogger(__name__)

__all__ = ["EarlierRenders", "ReusePlan", "plan_reusing"]


class EarlierRenders:
    """The manifests in a conform's output folder, and which of their mattes can be reused (module doc)."""

    def __init__(self, output_dir: Path, settings_for: Callable[[MediaRange], RenderSettings], matter: Matter) -> None:
        """``settings_for``: the settings a range is rendered with (a still's add an image format)."""
        self.settings_for = settings_for
        self.matter = matter
        self._by_input: dict[str, list[EarlierRender]] = defaultdict(list)
        self._reusable: dict[Path, bool] = {}
        for manifest in sorted(output_dir.glob(f"*{MANIFEST_SUFFIX}")) if output_dir.is_dir() else ():
            earlier = EarlierRender.read(manifest)
            if earlier is None:
                log.debug("'%s' is not a manifest of this version; ignored", manifest)
            else:
                self._by_input[earlier.input].append(earlier)

    def rendered_before(self, media_range: MediaRange) -> bool:
        """Whether an earlier render of the same media wrote the range's manifest: its files are this
        conform's to replace (another media's are never touched)."""
        return any(e.stem == media_range.stem for e in self.of_media(media_range.media))

    def of_media(self, media: Path) -> list[EarlierRender]:
        """Every earlier render of ``media``, whatever its state."""
        return self._by_input.get(os.path.abspath(media), [])

    def reusable(self, earlier: EarlierRender, media_range: MediaRange) -> bool:
        """Whether ``earlier`` is still right and whole for ``media_range``'s media (checked once per conform)."""
        if earlier.manifest not in self._reusable:
            info = media_range.info
            why = earlier.stale_because(
                info, formats=self.settings_for(media_range).formats, weights_sha256=self.matter.weights_sha256,
                downsample_ratio=self.matter.downsample_ratio_for(info.height, info.width), variant=self.matter.variant,
            )  # fmt: skip
            if why is not None:
                log.info("'%s' is rendered again: %s", earlier.stem, why)
            self._reusable[earlier.manifest] = why is None
        return self._reusable[earlier.manifest]

    def covering(self, media_range: MediaRange, first_frame: int, last_frame: int) -> EarlierRender | None:
        """The narrowest reusable earlier matte of ``media_range``'s media that covers the frames, if any."""
        candidates = sorted((e for e in self.of_media(media_range.media) if e.covers(first_frame, last_frame)),
                            key=lambda e: e.last_frame - e.first_frame)  # fmt: skip
        return next((e for e in candidates if self.reusable(e, media_range)), None)

    def extensible(self, media_range: MediaRange, first_frame: int, last_frame: int) -> EarlierRender | None:
        """The reusable earlier matte of ``media_range``'s media sharing the most of the frames, or touching
        them; None when every one is apart (module doc)."""

        def shared(e: EarlierRender) -> int:  # 0: adjacent; negative: a gap between
            return min(e.last_frame, last_frame) - max(e.first_frame, first_frame) + 1

        candidates = sorted((e for e in self.of_media(media_range.media) if shared(e) >= 0), key=shared, reverse=True)
        return next((e for e in candidates if self.reusable(e, media_range)), None)


@dataclass(frozen=True, slots=True)
class ReusePlan:
    """A conform plan split into what earlier mattes serve and what is rendered."""

    plan: ConformPlan
    """The plan with reused ranges as the earlier mattes span them (``frames`` counts both)."""
    reused: dict[str, EarlierRender]
    """The earlier matte of each reused range, by :attr:`MediaRange.stem`."""
    to_render: tuple[MediaRange, ...]
    extending: dict[str, EarlierRender] = field(default_factory=dict)
    """The earlier matte a range of ``to_render`` extends (its frames kept, the rest rendered), by stem."""

    @property
    def reused_frames(self) -> int:
        return sum(r.frames for r in self.plan.ranges if r.stem in self.reused)

    @property
    def superseded(self) -> tuple[EarlierRender, ...]:
        """The earlier mattes extensions hold whole and no range reuses: their files go once the conform is written."""
        kept = {matte.manifest for matte in self.reused.values()}
        extended = {matte.manifest: matte for matte in self.extending.values() if matte.manifest not in kept}
        return tuple(extended.values())


def _split(media_range: MediaRange, earlier: EarlierRenders) -> Iterator[tuple[MediaRange, EarlierRender | None]]:
    """The range as it is served: whole by one earlier matte, else each use by one, the rest rendered,
    extending an earlier matte it overlaps or touches (then the matte does not cover its range)."""
    whole = earlier.covering(media_range, media_range.first_frame, media_range.last_frame)
    if whole is not None:
        yield media_range.narrowed(whole.first_frame, whole.last_frame, media_range.uses), whole
        return
    served: dict[Path, list[ClipUse]] = defaultdict(list)
    mattes: dict[Path, EarlierRender] = {}
    rest: list[ClipUse] = []
    for use in media_range.uses:
        matte = earlier.covering(media_range, *use.needed)
        if matte is None:
            rest.append(use)
            continue
        served[matte.manifest].append(use)
        mattes[matte.manifest] = matte
    rendered: list[tuple[MediaRange, EarlierRender | None]] = []
    for first, last, group in merged_uses(rest):
        extended = earlier.extensible(media_range, first, last)
        if extended is not None:  # the uses it served go with its frames into the union
            group = tuple(sorted((*group, *served.pop(extended.manifest, ())), key=lambda use: use.needed))
            first, last = min(first, extended.first_frame), max(last, extended.last_frame)
        rendered.append((media_range.narrowed(first, last, group), extended))
    for manifest, uses in served.items():
        matte = mattes[manifest]
        yield media_range.narrowed(matte.first_frame, matte.last_frame, tuple(uses)), matte
    yield from rendered


def plan_reusing(plan: ConformPlan, earlier: EarlierRenders, *, reuse: bool = True) -> ReusePlan:
    """``plan`` with every clip an earlier matte still serves placed on it; only the rest is rendered.

    Args:
        reuse: False renders every range again (``--overwrite``).
    """
    if not reuse:
        return ReusePlan(plan, {}, plan.ranges)
    ranges: dict[str, MediaRange] = {}
    reused: dict[str, EarlierRender] = {}
    extending: dict[str, EarlierRender] = {}
    for media_range in plan.ranges:
        for part, matte in _split(media_range, earlier):
            if part.stem in ranges:  # one earlier matte serving clips of two ranges
                part = dataclasses.replace(part, uses=ranges[part.stem].uses + part.uses)
            ranges[part.stem] = part
            if matte is not None:
                served = reused if matte.covers(part.first_frame, part.last_frame) else extending
                served[part.stem] = matte
    to_render = tuple(r for stem, r in ranges.items() if stem not in reused)
    return ReusePlan(dataclasses.replace(plan, ranges=tuple(ranges.values())), reused, to_render, extending)
