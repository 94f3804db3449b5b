"""Nuke Studio/Hiero: the current sequence as a timeline job.

The sequence is written by Nuke Studio's own OTIO exporter: the task of File > Export's "OTIO"
preset (``hiero.exporters.FnOTIOExportTask``, in Nuke Studio and Hiero 13 and later), run with
``taskRegistry.createAndExecuteProcessor(..., synchronous=True)`` from a ``TimelineProcessorPreset``
into a new temporary folder. The export can fail without a word, so the file is looked for, then
read (it is JSON) and submitted as the job's OTIO document. A thread follows the job as for a Read
(progress task, cancel) and tells the user where the conformed timeline with its matte tracks
(``<sequence>.rvm.otio``) and the mattes were written; File > Import brings it in.

Mattes go to the configured output folder (``$RVM_RENDER_OUTPUT_DIR``, or the installer's
settings), else to ``rvm_mattes/`` beside the media of the sequence's first clip. Where the
exporter is missing (before 13) the user is told to export the OTIO with File > Export and
submit it with ``rvm-render submit``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import threading
from typing import Any
from urllib.parse import unquote, urlparse

import nuke

from rvm_render.api.client import ApiError, RvmRenderClient, progress_text
from rvm_render_nuke.matte_reads import PRESET, Settings, follow_job, output_dir_for

__all__ = ["matte_active_sequence", "exported_otio", "first_media_path", "TimelineJob"]


def exported_otio(sequence: Any) -> dict[str, Any]:
    """The sequence as an OTIO document, written by Nuke Studio's OTIO exporter. Main thread only.

    Raises:
        ImportError: this Nuke Studio/Hiero has no OTIO exporter.
        ValueError: the export wrote no file, or not an OTIO timeline.
    """
    import hiero.core
    from hiero.exporters.FnOTIOExportTask import OTIOExportPreset
    from hiero.exporters.FnTimelineProcessor import TimelineProcessorPreset

    folder = tempfile.mkdtemp(prefix="rvm_render_otio_")
    try:
        preset = TimelineProcessorPreset("RVM Render OTIO", {
            "exportRoot": folder, "exportTemplate": (("{sequence}.otio", OTIOExportPreset("", {})),),
        })  # fmt: skip
        items = [hiero.core.ItemWrapper(sequence)]
        hiero.core.taskRegistry.createAndExecuteProcessor(preset, items, synchronous=True)
        written = sorted(glob.glob(os.path.join(folder, "**", "*.otio"), recursive=True))
        if not written:
            raise ValueError(f"the OTIO export of '{sequence.name()}' wrote no file")
        with open(written[0], encoding="utf-8") as handle:
            document = json.load(handle)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not str(document.get("OTIO_SCHEMA", "")).startswith("Timeline."):
        raise ValueError(f"the OTIO export of '{sequence.name()}' is not a timeline")
    return document


def first_media_path(document: Any) -> str | None:
    """The local path of the first clip's media in an OTIO document (JSON), or None."""
    if isinstance(document, dict):
        schema = str(document.get("OTIO_SCHEMA", ""))
        url = document.get("target_url") if schema.startswith("ExternalReference.") else (
            document.get("target_url_base") if schema.startswith("ImageSequenceReference.") else None)  # fmt: skip
        if url:
            return _local_path(url)
        children = document.values()
    elif isinstance(document, list):
        children = document
    else:
        return None
    for child in children:
        found = first_media_path(child)
        if found:
            return found
    return None


def _local_path(url: str) -> str:
    """A ``file:`` URL's path (``file:///C:/x`` gives ``C:/x``); anything else as it is."""
    if not url.startswith("file:"):
        return url
    path = unquote(urlparse(url).path)
    return path[1:] if len(path) > 2 and path[0] == "/" and path[2] == ":" else path


class TimelineJob:
    """A sequence's timeline job: a thread submits and follows it, then tells the user."""

    def __init__(self, name: str, document: dict[str, Any], output_dir: str, client: RvmRenderClient) -> None:
        self.name = name
        self.document = document
        self.output_dir = output_dir
        self.client = client
        self.job: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._run, name=f"rvm-render {name}", daemon=True)

    def _run(self) -> None:
        try:
            job = self.client.submit(otio=self.document, output_dir=self.output_dir, preset=dict(PRESET))
            self.job = follow_job(self.client, job, f"RVM Render: {self.name}")
        except ApiError as err:
            self._tell(f"RVM Render could not matte the sequence '{self.name}':\n{err}")
            return
        if self.job["state"] == "done":
            self._tell(f"RVM Render: the mattes of '{self.name}' are ready.\nTimeline with matte tracks: "
                       f"{self.job['outputs'][0]}\n(File > Import brings it in.)")  # fmt: skip
        elif self.job["state"] == "failed":
            self._tell(f"RVM Render could not matte the sequence '{self.name}':\n{self.job.get('error')}")
        else:
            self._tell(f"RVM Render: '{self.name}' {progress_text(self.job)}")

    def _tell(self, text: str) -> None:
        nuke.executeInMainThread(nuke.message, (text,))


def matte_active_sequence() -> TimelineJob | None:
    """The menu command (Nuke Studio/Hiero): export, submit and follow the active sequence."""
    import hiero.ui

    sequence = hiero.ui.activeSequence()
    if sequence is None:
        nuke.message("RVM Render: open a sequence in the timeline first")
        return None
    name = sequence.name()
    try:
        settings = Settings.load()
    except (OSError, ValueError) as err:
        nuke.message(f"RVM Render cannot read its settings ({err}); fix or remove the file")
        return None
    try:
        document = exported_otio(sequence)
    except ImportError:
        nuke.message("RVM Render: this Nuke Studio/Hiero has no OTIO exporter (13 and later have one); export "
                     "the sequence with File > Export (OTIO) and submit it with rvm-render submit")  # fmt: skip
        return None
    except (OSError, ValueError) as err:
        nuke.message(f"RVM Render could not export the sequence '{name}' as OTIO: {err}")
        return None
    media = first_media_path(document)
    if media is None:
        nuke.message(f"RVM Render: the sequence '{name}' has no clip with media to matte")
        return None
    job = TimelineJob(name, document, output_dir_for(media, settings), settings.client())
    job.thread.start()
    return job
