"""A strict fake of the DaVinci Resolve scripting API: exactly the surface the plug-in calls.

Names, argument shapes and return types follow Resolve's scripting README (Developer/Scripting/
README.txt, 18.5-19.x), including the behaviour plug-ins trip over:

- ``hasattr`` is True for any name on a Resolve object (calling an unknown one raises here, as
  a method Resolve lacks fails there); ``dir()`` lists only the real methods.
- ``Timeline.Export`` wants the live enum values (``resolve.EXPORT_OTIO``); anything else raises
  here. It returns True and writes nothing when the target folder does not exist.
- ``MediaPool.AppendToTimeline`` before 18.6 ignores ``trackIndex`` and ``recordFrame`` (the clip
  goes to the end of video track 1); from 18.6 it places clips, but never overwrites: a clip
  whose range is taken goes to the end of the track instead, and is returned all the same.
  ``endFrame`` is exclusive; a clip of another frame rate gets its timeline length floored.
- ``MediaPool.ImportTimelineFromFile`` returns None when ``timelineName`` is taken.
- ``MediaPool.ImportMedia`` skips files it cannot read and returns the items it made.
- ``SetClipProperty("Alpha mode", ...)`` returns False: the API cannot set it.
- ``Timeline.DeleteClips([timelineItems], ripple)`` removes items of this timeline (no ripple here).
- ``MediaPool.DeleteClips([clips])`` removes media pool items from their bins, and every timeline
  item that shows them, as Resolve does.

Unknown methods, wrong argument types or counts, unknown option keys and 0-based track
indexes raise :class:`ResolveApiMisuse`, so a plug-in that passes against this fake calls the
API as documented. Media is probed for real (frame count, rate, start timecode), and the OTIO
export and import go through opentimelineio, as Resolve writes and reads it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from rvm_render.errors import RvmRenderError
from rvm_render.media.probe import probe

__all__ = ["ResolveApiMisuse", "FakeResolve", "FakeTimeline", "FakeMediaPoolItem", "FakeBmd", "make_resolve"]


class ResolveApiMisuse(TypeError):
    """The plug-in called the fake in a way Resolve's API does not offer."""


class ResolveEnum(int):
    """An enum value of the ``resolve`` object (``resolve.EXPORT_OTIO``)."""

    def __new__(cls, value: int, name: str) -> ResolveEnum:
        enum = super().__new__(cls, value)
        enum.name = name
        return enum


def _check(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) and kind is int or not isinstance(value, kind):
        raise ResolveApiMisuse(f"{what}: {type(value).__name__} {value!r} where the API wants {kind}")


class _ResolveObject:
    """``hasattr`` is always True, as on Resolve's objects; ``dir()`` lists the real methods."""

    calls: list[tuple[str, tuple[Any, ...]]]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def missing(*args: Any, **kwargs: Any) -> Any:
            raise ResolveApiMisuse(f"{type(self).__name__}.{name}() is not in this Resolve's API")

        return missing

    def __dir__(self) -> list[str]:
        return sorted(name for name in type(self).__dict__ if name[:1].isupper()) + self._extra_dir()

    def _extra_dir(self) -> list[str]:
        return []


# --- media --------------------------------------------------------------------------------------


class FakeMediaPoolItem(_ResolveObject):
    def __init__(self, path: str) -> None:
        info = probe(path)
        self.path = str(Path(path).resolve())
        self.frames = info.frames
        self.rate = info.rate
        self.start_frame = _timecode_frames(info.timecode, info.rate)
        self.properties = {"Alpha mode": "None"}

    def GetName(self) -> str:  # noqa: N802 - Resolve's names
        return os.path.basename(self.path)

    def GetClipProperty(self, propertyName: str | None = None) -> Any:  # noqa: N802, N803
        values = {"File Path": self.path, "Frames": str(self.frames), "FPS": float(self.rate),
                  "Start TC": _timecode(self.start_frame, self.rate), **self.properties}  # fmt: skip
        if propertyName is None:
            return values
        _check(propertyName, str, "GetClipProperty(propertyName)")
        return values.get(propertyName, "")

    def SetClipProperty(self, propertyName: str, propertyValue: str) -> bool:  # noqa: N802, N803
        _check(propertyName, str, "SetClipProperty(propertyName)")
        _check(propertyValue, str, "SetClipProperty(propertyValue)")
        return False  # Alpha mode and the other clip attributes are not settable through the API


class FakeFolder(_ResolveObject):
    def __init__(self, name: str) -> None:
        self.name = name
        self.clips: list[FakeMediaPoolItem] = []
        self.subfolders: list[FakeFolder] = []

    def GetName(self) -> str:  # noqa: N802
        return self.name

    def GetSubFolderList(self) -> list[FakeFolder]:  # noqa: N802
        return list(self.subfolders)

    def GetClipList(self) -> list[FakeMediaPoolItem]:  # noqa: N802
        return list(self.clips)


# --- timelines ----------------------------------------------------------------------------------


class FakeTimelineItem(_ResolveObject):
    def __init__(self, media: FakeMediaPoolItem, start: int, left_offset: int, duration: int) -> None:
        self.media, self.start, self.left_offset, self.duration = media, start, left_offset, duration

    def GetName(self) -> str:  # noqa: N802
        return self.media.GetName()

    def GetStart(self) -> int:  # noqa: N802
        return self.start

    def GetEnd(self) -> int:  # noqa: N802
        return self.start + self.duration

    def GetDuration(self) -> int:  # noqa: N802
        return self.duration

    def GetLeftOffset(self) -> int:  # noqa: N802
        return self.left_offset

    def GetMediaPoolItem(self) -> FakeMediaPoolItem:  # noqa: N802
        return self.media


@dataclass
class _Track:
    name: str
    items: list[FakeTimelineItem] = field(default_factory=list)

    def free(self, start: int, end: int) -> bool:
        return all(item.GetEnd() <= start or item.start >= end for item in self.items)

    def end(self, timeline_start: int) -> int:
        return max((item.GetEnd() for item in self.items), default=timeline_start)


class FakeTimeline(_ResolveObject):
    def __init__(self, resolve: FakeResolve, name: str, rate: Fraction, start_frame: int) -> None:
        self.resolve, self.name, self.rate, self.start_frame = resolve, name, rate, start_frame
        self.video: list[_Track] = [_Track("Video 1")]

    def GetName(self) -> str:  # noqa: N802
        return self.name

    def GetStartFrame(self) -> int:  # noqa: N802
        return self.start_frame

    def GetSetting(self, settingName: str) -> str:  # noqa: N802, N803
        _check(settingName, str, "GetSetting(settingName)")
        if settingName != "timelineFrameRate":
            return ""
        return f"{float(self.rate):.3f}".rstrip("0").rstrip(".")

    def GetTrackCount(self, trackType: str) -> int:  # noqa: N802, N803
        self._track_type(trackType)
        return len(self.video) if trackType == "video" else 0

    def AddTrack(self, trackType: str, subTrackType: Any = None) -> bool:  # noqa: N802, N803
        self._track_type(trackType)
        if trackType != "video" or subTrackType is not None:
            raise ResolveApiMisuse("the fake adds video tracks only, without options")
        self.video.append(_Track(f"Video {len(self.video) + 1}"))
        return True

    def GetTrackName(self, trackType: str, trackIndex: int) -> str:  # noqa: N802, N803
        return self._track(trackType, trackIndex).name

    def SetTrackName(self, trackType: str, trackIndex: int, name: str) -> bool:  # noqa: N802, N803
        _check(name, str, "SetTrackName(name)")
        self._track(trackType, trackIndex).name = name
        return True

    def GetItemListInTrack(self, trackType: str, index: int) -> list[FakeTimelineItem]:  # noqa: N802, N803
        return sorted(self._track(trackType, index).items, key=lambda item: item.start)

    def DeleteClips(self, timelineItems: list[FakeTimelineItem], ripple: bool = False) -> bool:  # noqa: N802, N803
        _check(timelineItems, list, "DeleteClips([timelineItems], ripple)")
        _check(ripple, bool, "DeleteClips(ripple)")
        if ripple:
            raise ResolveApiMisuse("the fake deletes without ripple only")
        tracks = [track for item in timelineItems for track in self.video if item in track.items]
        if len(tracks) != len(timelineItems):
            raise ResolveApiMisuse("DeleteClips: an item that is not on this timeline")
        for item, track in zip(timelineItems, tracks):
            track.items.remove(item)
        return True

    def Export(self, fileName: str, exportType: ResolveEnum, exportSubtype: ResolveEnum) -> bool:  # noqa: N802, N803
        _check(fileName, str, "Export(fileName)")
        for value, what in ((exportType, "exportType"), (exportSubtype, "exportSubtype")):
            if not isinstance(value, ResolveEnum):
                raise ResolveApiMisuse(f"Export({what}): {value!r} is not a resolve.EXPORT_* value")
        if exportType.name != "EXPORT_OTIO" or exportSubtype.name != "EXPORT_NONE":
            raise ResolveApiMisuse(f"the fake exports OTIO only, not {exportType.name}/{exportSubtype.name}")
        if not os.path.isdir(os.path.dirname(fileName) or "."):
            return True  # Resolve reports success and writes nothing
        otio.adapters.write_to_file(self.as_otio(), fileName)
        return True

    def _track_type(self, track_type: Any) -> None:
        _check(track_type, str, "trackType")
        if track_type not in ("video", "audio", "subtitle"):
            raise ResolveApiMisuse(f"trackType '{track_type}' is not video, audio or subtitle")

    def _track(self, track_type: str, index: int) -> _Track:
        self._track_type(track_type)
        _check(index, int, "trackIndex")
        if track_type != "video" or not 1 <= index <= len(self.video):
            raise ResolveApiMisuse(f"track index {index} outside 1..{len(self.video)} (indexes are 1-based)")
        return self.video[index - 1]

    # --- what Resolve writes and reads ------------------------------------------------------

    def place(self, track: _Track, media: FakeMediaPoolItem, record: int | None, start: int,
              end: int) -> FakeTimelineItem:  # fmt: skip
        """Put ``media`` frames ``start`` (inclusive) .. ``end`` (exclusive) at ``record``, never overwriting."""
        duration = end - start
        if media.rate != self.rate:  # another rate: Resolve floors the timeline length
            duration = math.floor(duration * self.rate / media.rate)
        if record is None or not track.free(record, record + duration):
            record = track.end(self.start_frame)
        item = FakeTimelineItem(media, record, start, duration)
        track.items.append(item)
        return item

    def as_otio(self) -> otio.schema.Timeline:
        """The timeline as Resolve exports it: times at the timeline rate, bare absolute media paths."""
        rate = float(self.rate)
        timeline = otio.schema.Timeline(self.name, global_start_time=RationalTime(self.start_frame, rate))
        for track in self.video:
            exported = otio.schema.Track(track.name, kind=otio.schema.TrackKind.Video)
            position = self.start_frame
            for item in self.GetItemListInTrack("video", self.video.index(track) + 1):
                if item.start > position:
                    exported.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(item.start - position,
                                                                                                   rate))))
                media = item.media
                available = TimeRange(RationalTime(media.start_frame, rate), RationalTime(media.frames, rate))
                reference = otio.schema.ExternalReference(target_url=media.path, available_range=available)
                used = TimeRange(RationalTime(media.start_frame + item.left_offset, rate),
                                 RationalTime(item.duration, rate))
                exported.append(otio.schema.Clip(item.GetName(), media_reference=reference, source_range=used))
                position = item.GetEnd()
            timeline.tracks.append(exported)
        return timeline


# --- the media pool, the project, Resolve --------------------------------------------------------


class FakeMediaPool(_ResolveObject):
    def __init__(self, resolve: FakeResolve, project: FakeProject) -> None:
        self.resolve, self.project = resolve, project
        self.root = FakeFolder("Master")
        self.current = self.root

    def GetRootFolder(self) -> FakeFolder:  # noqa: N802
        return self.root

    def GetCurrentFolder(self) -> FakeFolder:  # noqa: N802
        return self.current

    def SetCurrentFolder(self, folder: FakeFolder) -> bool:  # noqa: N802
        _check(folder, FakeFolder, "SetCurrentFolder(Folder)")
        self.current = folder
        return True

    def AddSubFolder(self, folder: FakeFolder, name: str) -> FakeFolder:  # noqa: N802
        _check(folder, FakeFolder, "AddSubFolder(folder)")
        _check(name, str, "AddSubFolder(name)")
        sub = FakeFolder(name)
        folder.subfolders.append(sub)
        return sub

    def ImportMedia(self, items: list[str]) -> list[FakeMediaPoolItem]:  # noqa: N802
        _check(items, list, "ImportMedia([items...])")
        made = []
        for path in items:
            _check(path, str, "ImportMedia item")
            try:
                made.append(FakeMediaPoolItem(path))
            except (RvmRenderError, OSError):
                continue  # Resolve skips what it cannot read
        self.current.clips += made
        return made

    def DeleteClips(self, clips: list[FakeMediaPoolItem]) -> bool:  # noqa: N802
        _check(clips, list, "DeleteClips([clips])")
        folders, pending = [], [self.root]
        while pending:
            folders.append(pending.pop())
            pending += folders[-1].subfolders
        for clip in clips:
            _check(clip, FakeMediaPoolItem, "DeleteClips clip")
            holders = [folder for folder in folders if clip in folder.clips]
            if not holders:
                raise ResolveApiMisuse("DeleteClips: a clip that is not in this media pool")
            holders[0].clips.remove(clip)
        for timeline in self.project.timelines:
            for track in timeline.video:
                track.items = [item for item in track.items if item.media not in clips]
        return True

    def AppendToTimeline(self, clipInfos: list[dict[str, Any]]) -> list[FakeTimelineItem]:  # noqa: N802, N803
        _check(clipInfos, list, "AppendToTimeline([{clipInfo}, ...])")
        appended = []
        for info in clipInfos:
            _check(info, dict, "clipInfo")
            unknown = set(info) - {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"}
            if unknown or not {"mediaPoolItem", "startFrame", "endFrame"} <= set(info):
                raise ResolveApiMisuse(f"clipInfo keys {sorted(info)}: unknown {sorted(unknown)} or "
                                       "mediaPoolItem/startFrame/endFrame missing")  # fmt: skip
            _check(info["mediaPoolItem"], FakeMediaPoolItem, "clipInfo mediaPoolItem")
            for key in ("startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"):
                if key in info:
                    _check(info[key], int, f"clipInfo {key}")
            if info.get("mediaType", 1) not in (1, 2):
                raise ResolveApiMisuse(f"clipInfo mediaType {info['mediaType']}: 1 (video) or 2 (audio)")
            timeline = self.project.current
            if timeline is None:
                continue
            if self.resolve.version >= (18, 6):
                track = timeline._track("video", info.get("trackIndex", 1))
                record = info.get("recordFrame")
            else:  # older Resolve ignores trackIndex and recordFrame
                track, record = timeline.video[0], None
            appended.append(timeline.place(track, info["mediaPoolItem"], record, info["startFrame"], info["endFrame"]))
        return appended

    def ImportTimelineFromFile(self, filePath: str, importOptions: dict[str, Any] | None = None) -> FakeTimeline | None:  # noqa: N802, N803, E501
        _check(filePath, str, "ImportTimelineFromFile(filePath)")
        options = importOptions or {}
        _check(options, dict, "importOptions")
        kinds = {"timelineName": str, "importSourceClips": bool, "sourceClipsPath": str, "sourceClipsFolders": list,
                 "interlaceProcessing": bool}  # fmt: skip
        for key, value in options.items():
            if key not in kinds:
                raise ResolveApiMisuse(f"importOptions key '{key}' is not one of {sorted(kinds)}")
            _check(value, kinds[key], f"importOptions {key}")
        document = otio.adapters.read_from_file(filePath)
        name = options.get("timelineName", document.name)
        if any(t.name == name for t in self.project.timelines):
            return None  # a name clash: Resolve returns None and says nothing
        start_time = document.global_start_time or RationalTime(0, 24)
        rate = Fraction(start_time.rate).limit_denominator(1001)
        start = round(start_time.value)
        timeline = FakeTimeline(self.resolve, name, rate, start)
        timeline.video = []
        with_clips = options.get("importSourceClips", True)
        for track in document.video_tracks():
            imported = _Track(track.name)
            timeline.video.append(imported)
            for clip in track.find_clips(shallow_search=True):
                reference = clip.media_reference
                if not isinstance(reference, otio.schema.ExternalReference) or not with_clips:
                    continue
                (media,) = self.ImportMedia([otio.url_utils.filepath_from_url(reference.target_url)
                                             if "://" in reference.target_url else reference.target_url])  # fmt: skip
                at_rate = lambda time: round(time.rescaled_to(float(rate)).value)  # noqa: E731
                record = start + at_rate(clip.range_in_parent().start_time)
                first = at_rate(clip.source_range.start_time) - at_rate(reference.available_range.start_time)
                item = FakeTimelineItem(media, record, first, at_rate(clip.source_range.duration))
                imported.items.append(item)
        self.project.timelines.append(timeline)
        return timeline


class FakeProject(_ResolveObject):
    def __init__(self, resolve: FakeResolve) -> None:
        self.timelines: list[FakeTimeline] = []
        self.current: FakeTimeline | None = None
        self.media_pool = FakeMediaPool(resolve, self)

    def GetMediaPool(self) -> FakeMediaPool:  # noqa: N802
        return self.media_pool

    def GetCurrentTimeline(self) -> FakeTimeline | None:  # noqa: N802
        return self.current

    def SetCurrentTimeline(self, timeline: FakeTimeline) -> bool:  # noqa: N802
        _check(timeline, FakeTimeline, "SetCurrentTimeline(timeline)")
        self.current = timeline
        return True

    def GetTimelineCount(self) -> int:  # noqa: N802
        return len(self.timelines)

    def GetTimelineByIndex(self, idx: int) -> FakeTimeline:  # noqa: N802
        _check(idx, int, "GetTimelineByIndex(idx)")
        if not 1 <= idx <= len(self.timelines):
            raise ResolveApiMisuse(f"timeline index {idx} outside 1..{len(self.timelines)} (1-based)")
        return self.timelines[idx - 1]


class FakeProjectManager(_ResolveObject):
    def __init__(self, project: FakeProject) -> None:
        self.project = project

    def GetCurrentProject(self) -> FakeProject:  # noqa: N802
        return self.project


class FakeResolve(_ResolveObject):
    def __init__(self, version: tuple[int, int, int] = (19, 0, 3)) -> None:
        self.version = version
        self.project = FakeProject(self)
        self.ui = FakeUIManager()
        if version >= (18, 5):  # the OTIO export arrived in 18.5
            self.EXPORT_OTIO = ResolveEnum(31, "EXPORT_OTIO")
            self.EXPORT_NONE = ResolveEnum(0, "EXPORT_NONE")

    def _extra_dir(self) -> list[str]:
        return [name for name in ("EXPORT_OTIO", "EXPORT_NONE") if name in self.__dict__]

    def GetVersion(self) -> list[Any]:  # noqa: N802
        return [*self.version, 7, ""]

    def GetProjectManager(self) -> FakeProjectManager:  # noqa: N802
        return FakeProjectManager(self.project)

    def Fusion(self) -> FakeFusion:  # noqa: N802
        return FakeFusion(self.ui)


# --- Fusion's UI Manager, as much as a progress window needs -------------------------------------


class FakeFusion(_ResolveObject):
    def __init__(self, ui: FakeUIManager) -> None:
        self.UIManager = ui

    def _extra_dir(self) -> list[str]:
        return ["UIManager"]


@dataclass
class FakeWidget:
    kind: str
    props: dict[str, Any]
    texts: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("kind", "props", "texts"):
            return object.__setattr__(self, name, value)
        if name != "Text" or not isinstance(value, str):
            raise ResolveApiMisuse(f"{self.kind}.{name} = {value!r}: the fake sets Text (a str) only")
        self.texts.append(value)

    @property
    def Text(self) -> str:  # noqa: N802
        return self.texts[-1] if self.texts else self.props.get("Text", "")


class FakeUIManager:
    """``fusion.UIManager``: widgets are made from a props dict (children for groups)."""

    def __init__(self) -> None:
        self.widgets: dict[str, FakeWidget] = {}

    def _widget(self, kind: str, props: dict[str, Any]) -> FakeWidget:
        _check(props, dict, f"ui.{kind}(props)")
        widget = FakeWidget(kind, props)
        if "ID" in props:
            self.widgets[props["ID"]] = widget
        return widget

    def Label(self, props: dict[str, Any]) -> FakeWidget:  # noqa: N802
        return self._widget("Label", props)

    def Button(self, props: dict[str, Any]) -> FakeWidget:  # noqa: N802
        return self._widget("Button", props)

    def VGroup(self, children: list[FakeWidget]) -> FakeWidget:  # noqa: N802
        _check(children, list, "ui.VGroup([children])")
        return FakeWidget("VGroup", {"children": children})


class _Handlers:
    """``win.On.<ID>.<Event> = function``."""

    def __init__(self, known: set[str]) -> None:
        object.__setattr__(self, "_known", known)
        object.__setattr__(self, "handlers", {})

    def __getattr__(self, element: str) -> Any:
        if element not in self._known:
            raise ResolveApiMisuse(f"win.On.{element}: no element with that ID")
        handlers = self.handlers

        class _Events:
            def __setattr__(self, event: str, function: Callable[[Any], None]) -> None:
                if event not in ("Clicked", "Close") or not callable(function):
                    raise ResolveApiMisuse(f"win.On.{element}.{event}: not an event the fake knows")
                handlers[(element, event)] = function

        return _Events()


class FakeWindow:
    def __init__(self, props: dict[str, Any], ui: FakeUIManager) -> None:
        self.props, self.ui = props, ui
        self.On = _Handlers({props["ID"], *ui.widgets})
        self.shown = False

    def GetItems(self) -> dict[str, FakeWidget]:  # noqa: N802
        return dict(self.ui.widgets)

    def Show(self) -> None:  # noqa: N802
        self.shown = True

    def Hide(self) -> None:  # noqa: N802
        self.shown = False


class FakeDispatcher:
    """``bmd.UIDispatcher(ui)``; ``RunLoop`` returns as when the user closes the window."""

    def __init__(self, ui: FakeUIManager) -> None:
        self.ui = ui
        self.windows: list[FakeWindow] = []
        self.loops = 0

    def AddWindow(self, props: dict[str, Any], layout: FakeWidget) -> FakeWindow:  # noqa: N802
        _check(props, dict, "AddWindow(props)")
        _check(layout, FakeWidget, "AddWindow(layout)")
        window = FakeWindow(props, self.ui)
        self.windows.append(window)
        return window

    def RunLoop(self) -> None:  # noqa: N802
        self.loops += 1
        window = self.windows[-1]
        window.On.handlers[(window.props["ID"], "Close")](None)  # the user closes the window

    def ExitLoop(self) -> None:  # noqa: N802
        pass


class FakeBmd:
    """Fusion's ``bmd`` module."""

    def __init__(self) -> None:
        self.dispatchers: list[FakeDispatcher] = []

    def UIDispatcher(self, ui: FakeUIManager) -> FakeDispatcher:  # noqa: N802
        _check(ui, FakeUIManager, "UIDispatcher(ui)")
        self.dispatchers.append(FakeDispatcher(ui))
        return self.dispatchers[-1]


# --- building a project ---------------------------------------------------------------------------


def make_resolve(version: tuple[int, int, int], name: str, rate: Fraction, start_frame: int,
                 edits: list[tuple[str, int, int, int]]) -> FakeResolve:  # fmt: skip
    """Resolve with one project whose current timeline holds ``edits`` on video track 1.

    Args:
        edits: (media path, record frame, left offset, duration) per item.
    """
    resolve = FakeResolve(version)
    project = resolve.project
    timeline = FakeTimeline(resolve, name, rate, start_frame)
    items = project.media_pool.ImportMedia([path for path, *_ in edits])
    for (_, record, left, duration), media in zip(edits, items):
        timeline.place(timeline.video[0], media, record, left, left + duration)
    project.timelines.append(timeline)
    project.current = timeline
    return resolve


def _timecode_frames(timecode: str | None, rate: Fraction) -> int:
    if not timecode:
        return 0
    return round(RationalTime.from_timecode(timecode, float(rate)).value)


def _timecode(frame: int, rate: Fraction) -> str:
    return RationalTime(frame, float(rate)).to_timecode()
