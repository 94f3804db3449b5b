"""Matte the current DaVinci Resolve timeline on the rvm-render daemon and place the mattes above it.

Runs inside Resolve's own Python (Workspace > Scripts > Utility > RVM Render Matte, installed by
``python -m rvm_render.integrations install resolve``), so it imports only the standard library
and :mod:`rvm_render.api.client`. The story, as :func:`main` tells it:

1. Export the current timeline with ``Timeline.Export(path, resolve.EXPORT_OTIO,
   resolve.EXPORT_NONE)`` (the live enum values) and check that the file exists: Resolve can
   report success and write nothing.
2. Submit the OTIO document to the daemon as a timeline job (ProRes 4444 mattes, straight
   alpha) and show its progress: in a UI Manager window when Resolve offers one, always on the
   console. Resolve runs menu scripts on a thread of their own, so polling never blocks its UI.
3. Import the mattes into an "RVM Mattes" bin and place them on a video track named
   ``<source track> RVM Matte``, each at its source item's record frame and showing the same
   source frames (``AppendToTimeline`` with ``trackIndex`` and ``recordFrame``, Resolve 18.6+).
   The call never overwrites, its ``endFrame`` is exclusive, it floors mixed rates and its
   return value can be wrong, so the track is read back (``GetItemListInTrack``, ``GetStart``,
   ``GetLeftOffset``, ``GetDuration``) and every matte that did not land is reported.
   Run again (after a trim, or for a new clip), it updates those tracks in place: the daemon
   knows its own mattes in the export and renders only what changed; a matte already on its
   track where it belongs stays, the items that no longer match are deleted (``DeleteClips``),
   only the missing ones are placed, and the read-back covers every matte of the tracks. A
   matte the daemon replaced by a wider one (a clip trimmed past it: the new matte holds its
   frames, and its file is deleted) leaves the bin too (``MediaPool.DeleteClips``).
4. Before 18.6 ``AppendToTimeline`` ignores track and record frame: the daemon's ``.rvm.otio``
   is imported as a new timeline instead (``ImportTimelineFromFile`` with a name no timeline has:
   Resolve returns None on a clash), and read back the same way.

Resolve objects answer ``hasattr`` with True for any name, so features are detected with
``dir()``. Each matte's Alpha Mode is set to Straight where ``SetClipProperty`` takes it;
where it does not, the user is told once, in the closing summary, to set it by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple  # noqa: UP035

from rvm_render.api.client import ApiError, RvmRenderClient, progress_text
from rvm_render.integrations.plugin_settings import OUTPUT_DIR_ENV, SETTINGS_PATH, matte_folder_beside, plugin_settings

__all__ = ["Settings", "MattePlacement", "RunReport", "main", "matte_placements"]

MATTE_BIN = "RVM Mattes"
MATTE_TRACK_SUFFIX = " RVM Matte"
METADATA_KEY = "rvm_render"
#: ``AppendToTimeline`` honours ``trackIndex`` and ``recordFrame`` from this Resolve version on.
TRACK_PLACEMENT_SINCE = (18, 6)
#: ``Timeline.Export`` writes OpenTimelineIO from this version on.
OTIO_EXPORT_SINCE = (18, 5)
ALPHA_MODE_HINT = (
    "set the mattes' Alpha Mode to Straight (Media Pool: select the clips in the 'RVM Mattes' bin, "
    "Clip Attributes > Video > Alpha Mode > Straight); Resolve's API cannot"
)

#: What a timeline item shows: track name, record frame, left offset, duration, file (:func:`_item_key`).
ItemKey = Tuple[str, int, int, int, str]  # noqa: UP006
Json = Dict[str, Any]  # noqa: UP006 - evaluated at import: editors' Python may be 3.7 (Nuke 13)


@dataclass(frozen=True)
class Settings:
    """Where the daemon is and what to ask of it.

    ``url`` and ``token`` default to ``$RVM_RENDER_URL`` and ``$RVM_RENDER_TOKEN``; ``output_dir``
    to ``$RVM_RENDER_OUTPUT_DIR``, else ``rvm_mattes`` beside the timeline's first media file (the
    daemon must be allowed to write there: inside its ``media_roots``).
    """

    url: str | None = None
    token: str | None = None
    output_dir: str | None = None
    preset: Json = field(default_factory=lambda: {"formats": ["prores4444"]})
    poll_s: float = 1.0
    timeout_s: float | None = None

    @classmethod
    def load(cls, path: str = SETTINGS_PATH) -> Settings:
        """The installer's ``settings.json`` (when present), then the environment over it.

        Raises:
            OSError, ValueError: the file cannot be read or is not a JSON object.
        """
        values = plugin_settings(path)
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})


@dataclass(frozen=True)
class MattePlacement:
    """Where one matte goes: timeline frames for the record side, matte media frames for the source side."""

    name: str
    path: str
    source_track_name: str
    source_video_track: int
    """Resolve's 1-based index of the source clip's video track."""
    record_frame: int
    """Timeline frames from the timeline's first frame (add ``Timeline.GetStartFrame()``)."""
    start_frame: int
    """The first frame of the matte media shown (``startFrame``)."""
    frames: int


@dataclass
class RunReport:
    """What a run did, for the caller and the tests; ``problems`` is what the user was told went wrong."""

    job: Json | None = None
    placed: list[MattePlacement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timeline_name: str | None = None
    """The timeline the mattes are in (the current one, or the imported one in the fallback)."""
    alpha_mode_set: bool = False
    """Whether Resolve took Alpha Mode Straight for every matte; else the user is told to set it."""

    @property
    def ok(self) -> bool:
        return not self.problems and self.job is not None and self.job["state"] == "done"


# --- the user's story ------------------------------------------------------------------------


def main(resolve: Any, settings: Settings, bmd: Any = None) -> RunReport:
    """Matte the current timeline and bring the mattes back (see the module doc).

    Args:
        resolve: Resolve's scripting object.
        settings: the daemon's URL and token, output folder, preset.
        bmd: Fusion's ``bmd`` module, for a UI Manager progress window; None: console only.
    """
    report = RunReport()
    ui = Progress(resolve, bmd)
    try:
        _run(resolve, settings, ui, report)
    except (PluginError, ApiError, OSError, ValueError) as err:
        report.problems.append(str(err))
    ui.finish(report)
    return report


class PluginError(Exception):
    """A step failed; the message names what and how to fix it."""


def _run(resolve: Any, settings: Settings, ui: Progress, report: RunReport) -> None:
    version = _version(resolve)
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline() if project else None
    if not timeline:
        raise PluginError("no timeline is open; open the timeline to matte and run RVM Render Matte again")
    exported = export_timeline(resolve, timeline, version)
    output_dir = settings.output_dir or _default_output_dir(exported)
    client = RvmRenderClient(settings.url, settings.token)
    ui.status(f"Submitting '{timeline.GetName()}' to {client.url}")
    job = client.submit(otio=exported, output_dir=output_dir, preset=settings.preset)
    job = client.wait(job["id"], poll_s=settings.poll_s, timeout_s=settings.timeout_s, on_update=ui.job)
    report.job = job
    if job["state"] != "done":
        raise PluginError(f"the daemon's job {job['id']} {job['state']}: {job.get('error') or 'no reason given'}")
    rvm_otio_path = job["outputs"][0]
    with open(rvm_otio_path, encoding="utf-8") as stream:
        conformed = json.load(stream)
    placements, skipped = matte_placements(conformed, _frame_rate(timeline))
    report.problems += skipped
    media_pool = project.GetMediaPool()
    if version >= TRACK_PLACEMENT_SINCE and "AppendToTimeline" in dir(media_pool):
        items = import_mattes(media_pool, sorted({p.path for p in placements}))
        track_indexes, removed = place_on_matte_tracks(media_pool, timeline, placements, items, ui)
        remove_replaced_mattes(media_pool, os.path.dirname(rvm_otio_path), ui)
        report.timeline_name = timeline.GetName()
    else:
        ui.status(f"Resolve {'.'.join(map(str, version[:2]))} cannot place clips on a track; "
                  "importing the matted timeline instead")  # fmt: skip
        timeline = import_conformed_timeline(project, media_pool, rvm_otio_path, timeline.GetName())
        in_bin = {_same_file(item.GetClipProperty("File Path")): item for item in _matte_bin(media_pool).GetClipList()
                  or ()}  # fmt: skip
        items = {p.path: in_bin[_same_file(p.path)] for p in placements if _same_file(p.path) in in_bin}
        track_indexes, removed = _track_indexes_by_name(timeline), frozenset()
        report.timeline_name = timeline.GetName()
    placed, problems = verify_placements(timeline, placements, track_indexes, removed)
    report.placed += placed
    report.problems += problems
    report.alpha_mode_set = all(item.SetClipProperty("Alpha mode", "Straight") for item in items.values())


def export_timeline(resolve: Any, timeline: Any, version: tuple[int, ...]) -> Json:
    """The timeline as an OTIO document, exported by Resolve itself."""
    if "EXPORT_OTIO" not in dir(resolve) or version < OTIO_EXPORT_SINCE:
        raise PluginError(f"Resolve {'.'.join(map(str, version[:3]))} cannot export OpenTimelineIO; "
                          "update to Resolve 18.5 or later")  # fmt: skip
    folder = tempfile.mkdtemp(prefix="rvm_render_")
    path = os.path.join(folder, "timeline.otio")
    try:
        exported = timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE)
        if not exported or not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise PluginError(f"Resolve did not write the OTIO export of '{timeline.GetName()}' to {path}; "
                              "check that the timeline has clips and the temp folder is writable")  # fmt: skip
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def place_on_matte_tracks(media_pool: Any, timeline: Any, placements: list[MattePlacement], items: dict[str, Any],
                          ui: Progress) -> tuple[dict[str, int], frozenset[ItemKey]]:  # fmt: skip
    """Bring the ``<source track> RVM Matte`` tracks up to date (an earlier run's reused, else added).
    Mattes already in place stay; the other items on those tracks are deleted.

    Returns:
        The tracks' indexes by name, and what each item deleted showed (:func:`_item_key`).
    """
    track_indexes = {name: index for name, index in _track_indexes_by_name(timeline).items()
                     if name.endswith(MATTE_TRACK_SUFFIX)}  # fmt: skip
    for source_name in dict.fromkeys(p.source_track_name for p in placements):
        name = source_name + MATTE_TRACK_SUFFIX
        if name in track_indexes:
            continue
        if not timeline.AddTrack("video"):
            raise PluginError(f"Resolve did not add the video track '{name}'; is the timeline locked?")
        track_indexes[name] = timeline.GetTrackCount("video")
        timeline.SetTrackName("video", track_indexes[name], name)
    first_frame = timeline.GetStartFrame()
    wanted = {(p.source_track_name + MATTE_TRACK_SUFFIX, first_frame + p.record_frame, p.start_frame, p.frames,
               _same_file(p.path)): p for p in placements}  # fmt: skip
    in_place, stale, removed = set(), [], set()
    for name, index in track_indexes.items():
        for item in timeline.GetItemListInTrack("video", index) or ():
            key = _item_key(name, item)
            if key in wanted and key not in in_place:
                in_place.add(key)
            else:
                stale.append(item)
                removed.add(key)
    if stale:
        ui.status(f"Removing {len(stale)} matte(s) that no longer match their source clips")
        if not timeline.DeleteClips(stale, False):
            raise PluginError(f"Resolve did not delete {len(stale)} out-of-date matte(s) from the matte tracks; "
                              "is the timeline locked?")  # fmt: skip
    clip_infos = [
        {
            "mediaPoolItem": items[placement.path],
            "startFrame": placement.start_frame,
            "endFrame": placement.start_frame + placement.frames,  # exclusive
            "mediaType": 1,  # video only
            "trackIndex": track_indexes[placement.source_track_name + MATTE_TRACK_SUFFIX],
            "recordFrame": first_frame + placement.record_frame,
        }
        for key, placement in wanted.items()
        if key not in in_place
    ]
    ui.status(f"Placing {len(clip_infos)} matte(s), {len(in_place)} already in place")
    if clip_infos:
        media_pool.AppendToTimeline(clip_infos)  # its return value is no evidence: verify_placements reads the track
    return track_indexes, frozenset(removed)


def remove_replaced_mattes(media_pool: Any, output_dir: str, ui: Progress) -> None:
    """Delete from the "RVM Mattes" bin the mattes of ``output_dir`` whose files the daemon deleted (module doc).

    Only the folder the daemon has just written counts: one this machine cannot reach says nothing.
    """
    folder = _same_file(output_dir)
    gone = [item for item in _matte_bin(media_pool).GetClipList() or ()
            if os.path.dirname(_same_file(item.GetClipProperty("File Path"))) == folder
            and not os.path.exists(item.GetClipProperty("File Path"))]  # fmt: skip
    if not gone:
        return
    ui.status(f"Removing {len(gone)} matte(s) replaced by wider ones from the '{MATTE_BIN}' bin")
    if not media_pool.DeleteClips(gone):
        ui.status(f"Resolve did not delete {len(gone)} offline matte(s) from the '{MATTE_BIN}' bin; delete them "
                  "by hand")  # fmt: skip


def _item_key(track_name: str, item: Any) -> ItemKey:
    """What a timeline item shows, to compare with what it should show."""
    media = item.GetMediaPoolItem()
    file = _same_file(media.GetClipProperty("File Path")) if media else ""
    return track_name, item.GetStart(), item.GetLeftOffset(), item.GetDuration(), file


def import_mattes(media_pool: Any, paths: list[str]) -> dict[str, Any]:
    """The matte files as media pool items in the "RVM Mattes" bin (those an earlier run imported kept), by path."""
    matte_bin = _matte_bin(media_pool)
    by_path = {_same_file(item.GetClipProperty("File Path")): item for item in matte_bin.GetClipList() or ()}
    new = [path for path in paths if _same_file(path) not in by_path]
    previous = media_pool.GetCurrentFolder()
    media_pool.SetCurrentFolder(matte_bin)
    try:
        imported = (media_pool.ImportMedia(new) or []) if new else []
    finally:
        if previous:
            media_pool.SetCurrentFolder(previous)
    by_path.update({_same_file(item.GetClipProperty("File Path")): item for item in imported})
    items = {path: by_path.get(_same_file(path)) for path in paths}
    missing = [path for path, item in items.items() if item is None]
    if missing:
        raise PluginError(f"Resolve did not import {missing[0]}; check that this machine can read the "
                          "daemon's output folder (same path on both)")  # fmt: skip
    return items


def import_conformed_timeline(project: Any, media_pool: Any, path: str, source_name: str) -> Any:
    """The daemon's ``.rvm.otio`` as a new timeline (its clips into the "RVM Mattes" bin), made current."""
    names = {project.GetTimelineByIndex(i).GetName() for i in range(1, project.GetTimelineCount() + 1)}
    name = f"{source_name} RVM Mattes"
    suffix = 2
    while name in names:
        name, suffix = f"{source_name} RVM Mattes {suffix}", suffix + 1
    previous = media_pool.GetCurrentFolder()
    media_pool.SetCurrentFolder(_matte_bin(media_pool))
    try:
        imported = media_pool.ImportTimelineFromFile(path, {"timelineName": name, "importSourceClips": True})
    finally:
        if previous:
            media_pool.SetCurrentFolder(previous)
    if not imported:
        raise PluginError(f"Resolve did not import the matted timeline {path} as '{name}'; "
                          "import it with File > Import > Timeline")  # fmt: skip
    project.SetCurrentTimeline(imported)
    return imported


def verify_placements(
    timeline: Any,
    placements: list[MattePlacement],
    track_indexes: dict[str, int],
    removed: frozenset[ItemKey] = frozenset(),
) -> tuple[list[MattePlacement], list[str]]:
    """Read the matte tracks back: the mattes where they belong, one problem per other matte and per
    out-of-date matte (``removed``, as :func:`_item_key` gives them) still on its track."""
    placed, problems = [], []
    first_frame = timeline.GetStartFrame()
    for name, index in track_indexes.items():
        for item in timeline.GetItemListInTrack("video", index) if name.endswith(MATTE_TRACK_SUFFIX) else ():
            if _item_key(name, item) in removed:
                problems.append(f"the out-of-date matte '{item.GetName()}' at frame {item.GetStart()} of track "
                                f"'{name}' is still there; delete it")  # fmt: skip
    for placement in placements:
        track_name = placement.source_track_name + MATTE_TRACK_SUFFIX
        index = track_indexes.get(track_name)
        record_frame = first_frame + placement.record_frame
        landed = [item for item in (timeline.GetItemListInTrack("video", index) if index else None) or ()
                  if item.GetStart() == record_frame]  # fmt: skip
        where = f"at frame {record_frame} of track '{track_name}'"
        shown = (landed[0].GetLeftOffset(), landed[0].GetDuration()) if landed else None
        if shown is None:
            problems.append(f"matte '{placement.name}' did not land {where}; place {placement.path} there by hand")
        elif shown != (placement.start_frame, placement.frames):
            problems.append(f"matte '{placement.name}' {where} shows {shown[1]} frames from {shown[0]}, not "
                            f"{placement.frames} from {placement.start_frame}; trim it to its source clip")  # fmt: skip
        else:
            placed.append(placement)
    return placed, problems


def _matte_bin(media_pool: Any) -> Any:
    root = media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or ():
        if folder.GetName() == MATTE_BIN:
            return folder
    folder = media_pool.AddSubFolder(root, MATTE_BIN)
    if not folder:
        raise PluginError(f"Resolve did not create the '{MATTE_BIN}' bin; is the media pool locked?")
    return folder


# --- reading the OTIO documents (plain JSON: no opentimelineio inside Resolve) -----------------


def matte_placements(conformed: Json, timeline_rate: float) -> tuple[list[MattePlacement], list[str]]:
    """Where each matte clip of the daemon's ``.rvm.otio`` goes; a note per clip the daemon skipped and
    per matte this cannot place.

    Record frames count from the timeline's first frame (add ``GetStartFrame()``), at ``timeline_rate``.
    """
    tracks = conformed["tracks"]["children"]
    video_indexes = {}  # OTIO track index -> Resolve's 1-based video track index
    for index, track in enumerate(tracks):
        if track.get("kind") == "Video" and not track.get("name", "").endswith(MATTE_TRACK_SUFFIX):
            video_indexes[index] = len(video_indexes) + 1
    placements = []
    skipped = [f"clip '{s['name']}' ({s['clip']}) was not matted: {s['reason']}"
               for s in conformed.get("metadata", {}).get(METADATA_KEY, {}).get("skipped", [])]  # fmt: skip
    for track in tracks:
        if track.get("kind") != "Video" or not track.get("name", "").endswith(MATTE_TRACK_SUFFIX):
            continue
        position = 0
        for item in track["children"]:
            schema = item["OTIO_SCHEMA"].split(".")[0]
            if schema == "Transition":
                continue  # transitions overlap their neighbours: they take no track time
            if schema == "Clip" and METADATA_KEY in item.get("metadata", {}):
                placement = _placement(item, position, timeline_rate, video_indexes)
                if placement is None:
                    skipped.append(f"matte '{item['name']}' has a retime; place it by hand")
                else:
                    placements.append(placement)
            elif schema in ("Stack", "Track"):
                skipped.append(f"'{item.get('name') or schema}' is nested (a compound clip); its mattes are in the "
                               f"daemon's .rvm.otio, import it with File > Import > Timeline")  # fmt: skip
            position += _to_frames(_duration(item), timeline_rate)
    return placements, skipped


def _placement(clip: Json, position: int, timeline_rate: float, video_indexes: dict[int, int]) -> MattePlacement | None:
    if clip.get("effects"):
        return None
    info = clip["metadata"][METADATA_KEY]
    reference = clip["media_references"][clip.get("active_media_reference_key", "DEFAULT_MEDIA")]
    available = reference["available_range"]
    media_rate = available["start_time"]["rate"]
    source = clip["source_range"]
    start = _to_frames(source["start_time"], media_rate) - _to_frames(available["start_time"], media_rate)
    return MattePlacement(
        name=clip["name"],
        path=_local_path(reference["target_url"]),
        source_track_name=info["source_track"],
        source_video_track=video_indexes.get(info["source_track_index"], 0),
        record_frame=position,
        start_frame=start,
        frames=_to_frames(source["duration"], timeline_rate),
    )


def _duration(item: Json) -> Json:
    """An item's duration as a RationalTime document."""
    if item.get("source_range"):
        return item["source_range"]["duration"]
    children = item.get("children", [])
    durations = [_duration(child) for child in children if child["OTIO_SCHEMA"].split(".")[0] != "Transition"]
    rate = durations[0]["rate"] if durations else 24.0
    seconds = [d["value"] / d["rate"] for d in durations]
    total = (max(seconds) if item["OTIO_SCHEMA"].startswith("Stack") else sum(seconds)) if seconds else 0.0
    return {"value": total * rate, "rate": rate}


def _to_frames(time: Json, rate: float) -> int:
    """A RationalTime document in whole frames at ``rate`` (same rates: its value, exactly)."""
    if abs(time["rate"] - rate) < 1e-3:
        return round(time["value"])
    return round(time["value"] * rate / time["rate"])


def _same_file(path: str) -> str:
    """A path as compared: absolute, and case-folded where the file system ignores case."""
    return os.path.normcase(os.path.abspath(path))


def _local_path(url: str) -> str:
    """A media reference's file: a bare path as Resolve writes it, or a ``file://`` URL."""
    if not url.lower().startswith("file:"):
        return url
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    return path[1:] if len(path) > 2 and path[0] == "/" and path[2] == ":" else path  # /C:/... on Windows


# --- what Resolve says about itself --------------------------------------------------------------


def _version(resolve: Any) -> tuple[int, ...]:
    fields = resolve.GetVersion() if "GetVersion" in dir(resolve) else []
    return tuple(int(f) for f in fields[:3] if isinstance(f, int)) or (0,)


def _frame_rate(timeline: Any) -> float:
    text = str(timeline.GetSetting("timelineFrameRate"))
    number = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    try:
        return float(number)
    except ValueError:
        raise PluginError(f"cannot read the timeline's frame rate ('{text}')") from None


def _track_indexes_by_name(timeline: Any) -> dict[str, int]:
    return {timeline.GetTrackName("video", i): i for i in range(1, timeline.GetTrackCount("video") + 1)}


def _default_output_dir(exported: Json) -> str:
    for track in exported["tracks"]["children"]:
        for item in track.get("children", []):
            reference = (item.get("media_references") or {}).get(item.get("active_media_reference_key", ""))
            url = (reference or {}).get("target_url")
            if url:
                return matte_folder_beside(_local_path(url))
    raise PluginError(f"the timeline has no media files to matte; set {OUTPUT_DIR_ENV} or add clips")


# --- telling the user ------------------------------------------------------------------------------


class Progress:
    """Progress and problems: on the console, and in a UI Manager window when ``bmd`` is given."""

    def __init__(self, resolve: Any, bmd: Any) -> None:
        self._window = self._items = self._dispatcher = None
        fusion = resolve.Fusion() if bmd is not None and "Fusion" in dir(resolve) else None
        if fusion is not None and "UIManager" in dir(fusion):
            ui = fusion.UIManager
            self._dispatcher = bmd.UIDispatcher(ui)
            self._window = self._dispatcher.AddWindow(
                {"ID": "RvmRender", "WindowTitle": "RVM Render", "Geometry": [200, 200, 560, 160]},
                ui.VGroup([
                    ui.Label({"ID": "Status", "Text": "Exporting the timeline", "WordWrap": True}),
                    ui.Label({"ID": "Problems", "Text": "", "WordWrap": True}),
                    ui.Button({"ID": "Close", "Text": "Close"}),
                ]),
            )  # fmt: skip
            self._items = self._window.GetItems()
            self._window.On.Close.Clicked = self._close
            self._window.On.RvmRender.Close = self._close
            self._window.Show()

    def status(self, text: str) -> None:
        print(f"RVM Render: {text}")
        if self._items is not None:
            self._items["Status"].Text = text

    def job(self, job: Json) -> None:
        self.status(progress_text(job))

    def finish(self, report: RunReport) -> None:
        """The outcome; with a window, wait until the user closes it."""
        if report.placed:
            summary = f"{len(report.placed)} matte(s) placed in '{report.timeline_name}'"
            self.status(summary if report.alpha_mode_set else f"{summary}; {ALPHA_MODE_HINT}")
        elif report.problems:
            self.status("Nothing was placed")
        for problem in report.problems:
            print(f"RVM Render: problem: {problem}")
        if self._items is not None:
            self._items["Problems"].Text = "\n".join(report.problems)
        if self._dispatcher is not None:
            self._dispatcher.RunLoop()  # until the user closes the window
            self._window.Hide()

    def _close(self, _event: Any) -> None:
        self._dispatcher.ExitLoop()
