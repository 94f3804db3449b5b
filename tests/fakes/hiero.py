"""A strict fake of Hiero's Python API (Nuke Studio 13-16): exactly the surface the plug-in calls.

Names and argument shapes follow the Hiero Python dev guide and Foundry's own exporter sources
(``hiero/exporters/FnTimelineProcessor.py``, ``FnOTIOExportTask.py``):

- ``hiero.ui.activeSequence()`` gives the sequence of the active timeline, or None.
- ``TimelineProcessorPreset(name, properties)`` and ``OTIOExportPreset(name, properties)`` take
  the properties their ``__init__`` sets; another key would be ignored by Hiero, so here it raises.
- ``hiero.core.taskRegistry.createAndExecuteProcessor(preset, [ItemWrapper(sequence)],
  synchronous=...)`` resolves each ``exportTemplate`` entry (``{sequence}``, ``{ext}``) under
  ``exportRoot`` and writes the OTIO file as Foundry's ``OTIOTimelineBuilder`` does (tracks of
  clips and gaps, ``file://`` URLs, source ranges from the clip's start timecode). Without
  ``synchronous=True`` the export is queued on the main loop, as Hiero runs it in the
  background: the file is not there when the call returns.
- ``exporters=False`` makes a Hiero before 13, whose ``hiero.exporters`` has no OTIO exporter.

Everything runs in Nuke's main thread (the :class:`~fakes.nuke.NukeHost`'s), checked.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import opentimelineio as otio

from fakes.nuke import NukeHost, _check
from rvm_render.media.probe import probe

__all__ = ["HieroHost", "Sequence", "TrackItem"]


@dataclass
class TrackItem:
    """A clip on a video track: ``media`` from its frame ``source_in``, at ``timeline_in``, ``duration`` frames."""

    media: Path
    source_in: int
    timeline_in: int
    duration: int


@dataclass
class Sequence:
    """A sequence of one video track (the test's side: ``sequence.name()`` is the API)."""

    title: str
    rate: float
    items: list[TrackItem] = field(default_factory=list)

    def name(self) -> str:
        return self.title


class HieroHost:
    """The modules ``hiero``, ``hiero.core``, ``hiero.ui`` and ``hiero.exporters.*`` around one session."""

    def __init__(self, nuke_host: NukeHost, *, exporters: bool = True) -> None:
        self.nuke_host = nuke_host
        self.active_sequence: Sequence | None = None
        self.exported: list[Path] = []
        self.modules = self._modules(exporters)

    def _modules(self, exporters: bool) -> dict[str, types.ModuleType]:
        host = self
        main = self.nuke_host.require_main

        class ItemWrapper:
            def __init__(self, item: Sequence) -> None:
                main("hiero.core.ItemWrapper")
                _check(item, Sequence, "ItemWrapper(item)")
                self._item = item

        class TaskPresetBase:
            defaults: dict[str, Any] = {}

            def __init__(self, name: str, properties: dict[str, Any]) -> None:
                main(f"{type(self).__name__}()")
                _check(name, str, f"{type(self).__name__}(name)")
                _check(properties, dict, f"{type(self).__name__}(properties)")
                unknown = set(properties) - set(self.defaults)
                if unknown:
                    raise TypeError(f"{type(self).__name__}: Hiero ignores {sorted(unknown)}")
                self._properties = {**self.defaults, **properties}

            def properties(self) -> dict[str, Any]:
                return self._properties

        class OTIOExportPreset(TaskPresetBase):
            defaults = {"writeCompRenderPaths": True, "includeEffects": True}

        class TimelineProcessorPreset(TaskPresetBase):
            defaults = {"versionIndex": 1, "versionPadding": 2, "exportTemplate": (), "exportRoot": "{projectroot}",
                        "inOutTrim": False, "startFrameIndex": 1, "startFrameSource": "Sequence"}  # fmt: skip

        class TaskRegistry:
            def createAndExecuteProcessor(self, preset: Any, items: list[Any], submissionName: str | None = None,  # noqa: N802, N803
                                          synchronous: bool = False) -> None:  # fmt: skip
                main("taskRegistry.createAndExecuteProcessor")
                _check(preset, TimelineProcessorPreset, "createAndExecuteProcessor(preset)")
                _check(items, list, "createAndExecuteProcessor(items)")
                for item in items:
                    _check(item, ItemWrapper, "createAndExecuteProcessor(items[])")
                _check(synchronous, bool, "createAndExecuteProcessor(synchronous)")
                root = preset.properties()["exportRoot"]
                if "{" in root:
                    raise ValueError(f"exportRoot {root!r}: no project root in this session")
                for item in items:
                    for template, task_preset in preset.properties()["exportTemplate"]:
                        _check(task_preset, OTIOExportPreset, "exportTemplate task preset")
                        resolved = template.replace("{sequence}", item._item.name()).replace("{ext}", "otio")
                        if "{" in resolved:
                            raise ValueError(f"exportTemplate {template!r}: unknown token")
                        target = Path(root) / resolved
                        if synchronous:
                            host._write_otio(item._item, target)
                        else:
                            host.nuke_host.nuke.executeInMainThread(host._write_otio, (item._item, target))

        def active_sequence() -> Sequence | None:
            main("hiero.ui.activeSequence")
            return host.active_sequence

        hiero = types.ModuleType("hiero")
        core = types.ModuleType("hiero.core")
        core.ItemWrapper = ItemWrapper
        core.taskRegistry = TaskRegistry()
        ui = types.ModuleType("hiero.ui")
        ui.activeSequence = active_sequence
        package = types.ModuleType("hiero.exporters")
        hiero.core, hiero.ui, hiero.exporters = core, ui, package
        modules = {"hiero": hiero, "hiero.core": core, "hiero.ui": ui, "hiero.exporters": package}
        if exporters:
            otio_task = types.ModuleType("hiero.exporters.FnOTIOExportTask")
            otio_task.OTIOExportPreset = OTIOExportPreset
            timeline = types.ModuleType("hiero.exporters.FnTimelineProcessor")
            timeline.TimelineProcessorPreset = TimelineProcessorPreset
            package.FnOTIOExportTask, package.FnTimelineProcessor = otio_task, timeline
            modules |= {"hiero.exporters.FnOTIOExportTask": otio_task, "hiero.exporters.FnTimelineProcessor": timeline}
        return modules

    def _write_otio(self, sequence: Sequence, target: Path) -> None:
        """As Foundry's ``OTIOTimelineBuilder``: one video track of clips and gaps."""
        timeline = otio.schema.Timeline(name=sequence.name())
        track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
        position = 0
        for item in sequence.items:
            if item.timeline_in > position:
                track.append(otio.schema.Gap(source_range=_range(0, item.timeline_in - position, sequence.rate)))
            info = probe(item.media)
            rate = float(info.rate)
            available = _range(0, info.frames, rate)
            url = item.media.resolve().as_uri()
            reference = otio.schema.ExternalReference(target_url=url, available_range=available)
            track.append(otio.schema.Clip(name=item.media.stem, media_reference=reference,
                                          source_range=_range(item.source_in, item.duration, rate)))  # fmt: skip
            position = item.timeline_in + item.duration
        timeline.tracks.append(track)
        os.makedirs(target.parent, exist_ok=True)
        otio.adapters.write_to_file(timeline, str(target))
        self.exported.append(target)


def _range(start: int, duration: int, rate: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(duration, rate))
