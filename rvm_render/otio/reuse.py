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

Anything else is rendered again; an earlier render at the same name is this conform's own and is
replaced (atomically, as ``--overwrite`` replaces a render), never refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ReusePlan:
    """A conform plan split into what earlier mattes serve and what is rendered."""

    plan: ConformPlan
    """The plan with reused ranges as the earlier mattes span them (``frames`` counts both)."""
    reused: dict[str, EarlierRender]
    """The earlier matte of each reused range, by :attr:`MediaRange.stem`."""
    to_render: tuple[MediaRange, ...]

    @property
    def reused_frames(self) -> int:
        return sum(r.frames for r in self.plan.ranges if r.stem in self.reused)


def _split(media_range: MediaRange, earlier: EarlierRenders) -> Iterator[tuple[MediaRange, EarlierRender | None]]:
    """The range as it is served: whole by one earlier matte, else each use by one, the rest rendered."""
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
    for manifest, uses in served.items():
        matte = mattes[manifest]
        yield media_range.narrowed(matte.first_frame, matte.last_frame, tuple(uses)), matte
    for first, last, group in merged_uses(rest):
        yield media_range.narrowed(first, last, group), None


def plan_reusing(plan: ConformPlan, earlier: EarlierRenders, *, reuse: bool = True) -> ReusePlan:
    """``plan`` with every clip an earlier matte still serves placed on it; only the rest is rendered.

    Args:
        reuse: False renders every range again (``--overwrite``).
    """
    if not reuse:
        return ReusePlan(plan, {}, plan.ranges)
    ranges: dict[str, MediaRange] = {}
    reused: dict[str, EarlierRender] = {}
    for media_range in plan.ranges:
        for part, matte in _split(media_range, earlier):
            if part.stem in ranges:  # one earlier matte serving clips of two ranges
                part = dataclasses.replace(part, uses=ranges[part.stem].uses + part.uses)
            ranges[part.stem] = part
            if matte is not None:
                reused[part.stem] = matte
    to_render = tuple(r for stem, r in ranges.items() if stem not in reused)
    return ReusePlan(dataclasses.replace(plan, ranges=tuple(ranges.values())), reused, to_render)
