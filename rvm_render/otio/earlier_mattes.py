"""An earlier conform's mattes inside an edit: recognised, never matted again, their tracks replaced.

An editor who imported a ``.rvm.otio`` and kept cutting exports an edit that holds the matte
tracks of the earlier run. A clip is one of those mattes when

- its metadata has the ``rvm_render`` entry :mod:`~rvm_render.otio.matte_track` writes, or
- where the host dropped the metadata (Resolve rewrites clip metadata on export), its media is
  listed as an output by an rvm_render manifest (``*.rvm.json``) in the media's own folder:
  mattes are written beside their manifest.

A top-level video track whose clips are all such mattes is an earlier run's matte track: it is
left out of the edit that is planned (the conform puts the up-to-date matte tracks back in its
place). A matte clip elsewhere is left alone. Both are reported as mattes of an earlier run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio

from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.media.frame_pattern import escaped
from rvm_render.otio.matte_track import METADATA_KEY
from rvm_render.otio.media_paths import local_path
from rvm_render.otio.requests import EARLIER_MATTE_REASON, ClipPlace, SkippedClip
from rvm_render.pipeline.manifest import MANIFEST_SUFFIX

__all__ = ["MatteRecognizer", "EditWithoutMattes", "edit_without_matte_tracks"]

def _real(path: str | Path) -> str:
    return os.path.normcase(os.path.realpath(path))


class MatteRecognizer:
    """Tells an earlier run's matte clips from source clips (module doc); reads each folder's manifests once."""

    def __init__(self, media_root: Path) -> None:
        self.media_root = media_root
        self._outputs_by_folder: dict[str, frozenset[str]] = {}

    def _outputs_in(self, folder: Path) -> frozenset[str]:
        """Real paths (sequences: printf patterns) of every output the manifests in ``folder`` list."""
        key = _real(folder)
        if key not in self._outputs_by_folder:
            outputs: set[str] = set()
            for manifest in folder.glob(f"*{MANIFEST_SUFFIX}") if folder.is_dir() else ():
                earlier = EarlierRender.read(manifest)  # None: not a manifest of ours
                if earlier is not None:
                    outputs.update(_real(path) for path in earlier.outputs.values())
            self._outputs_by_folder[key] = frozenset(outputs)
        return self._outputs_by_folder[key]

    def _media_path(self, reference: otio.core.MediaReference) -> Path | None:
        """The reference's file (a sequence: its printf pattern), or None when it names no file."""
        if isinstance(reference, otio.schema.ExternalReference) and reference.target_url:
            return local_path(reference.target_url, self.media_root)
        if isinstance(reference, otio.schema.ImageSequenceReference) and reference.target_url_base:
            width = reference.frame_zero_padding
            number = f"%0{width}d" if width else "%d"
            name = f"{escaped(reference.name_prefix)}{number}{escaped(reference.name_suffix)}"  # as manifests write it
            return local_path(reference.target_url_base, self.media_root) / name
        return None

    def is_matte(self, clip: otio.schema.Clip) -> bool:
        """Whether ``clip`` is a matte an rvm_render conform made (module doc)."""
        if isinstance(clip.metadata.get(METADATA_KEY), Mapping):
            return True
        path = self._media_path(clip.media_reference)
        return path is not None and _real(path) in self._outputs_in(path.parent)


@dataclass(frozen=True, slots=True)
class EditWithoutMattes:
    """The edit to plan: the input without its earlier matte tracks, and every earlier matte clip found."""

    timeline: otio.schema.Timeline
    matte_tracks: tuple[str, ...]
    """Names of the matte tracks left out."""
    mattes: tuple[SkippedClip, ...] = field(default=())
    """The matte clips on those tracks (places in the input timeline)."""


def _place(clip: otio.schema.Clip, track: otio.schema.Track, track_index: int) -> ClipPlace:
    indices: list[int] = []
    item: otio.core.Composable = clip
    while item is not track:
        parent = item.parent()
        indices.insert(0, parent.index(item))
        item = parent
    return ClipPlace(track_index, track.name, tuple(indices))


def _is_matte_track(track: otio.schema.Track, recognizer: MatteRecognizer) -> bool:
    clips = list(track.find_clips())
    return track.kind == otio.schema.TrackKind.Video and bool(clips) and all(map(recognizer.is_matte, clips))


def edit_without_matte_tracks(timeline: otio.schema.Timeline, recognizer: MatteRecognizer) -> EditWithoutMattes:
    """A copy of ``timeline`` without the top-level tracks that hold only earlier mattes (``timeline`` unchanged)."""
    result = timeline.deepcopy()
    matte_tracks = [index for index, track in enumerate(timeline.tracks) if _is_matte_track(track, recognizer)]
    mattes = [
        SkippedClip(_place(clip, timeline.tracks[index], index), clip.name, EARLIER_MATTE_REASON)
        for index in matte_tracks
        for clip in timeline.tracks[index].find_clips()
    ]
    for index in reversed(matte_tracks):
        del result.tracks[index]
    return EditWithoutMattes(result, tuple(timeline.tracks[i].name for i in matte_tracks), tuple(mattes))
