"""Matte the selected Read nodes on an rvm-render daemon and wire each matte back beside its Read.

One job per Read. The menu command reads the selected Reads in Nuke's main thread and returns at
once; for each Read a thread submits the file with its frame range, follows the job (a
``nuke.ProgressTask`` shows it; its Cancel cancels the job) and hands the finished matte back to
the main thread with ``nuke.executeInMainThread``, which builds, beside the Read::

    Read (source) ---------------B--> Copy (rgba.alpha -> rgba.alpha) --> Premult
    Read (matte EXRs, raw) ------A--^

Run again on a Read that already has its tree (a Copy taking the Read as B and a Read as A, then
a Premult), the tree is updated (the matte Read's file and range) rather than built a second time.
Nodes are touched only in the main thread and the threads never wait for it, so Nuke's UI keeps
running while the daemon renders. A Read that cannot be submitted, an unreachable daemon and a
failed job reach the user as ``nuke.message``, naming the Read, its file and the reason.

Frame numbers, as Nuke gives them (the assumptions this module makes about a Read's knobs):

- ``file`` with a frame field (``####``, one ``#`` a digit, or printf ``%04d``) is an image
  sequence; the daemon takes printf, so ``####`` becomes ``%04d``. Its frames are the file
  numbers ``first``..``last``, and the daemon numbers the matte EXRs the same.
- any other ``file`` is a movie. Nuke numbers a movie's frames from 1 (its ``origfirst``), the
  daemon from 0: Nuke's ``first``..``last`` are the daemon's ``first - 1``..``last - 1``.
- ``frame_mode``/``frame`` place file frames on the timeline: ``expression`` with an empty
  ``frame`` (the default) shows file frame f at frame f; ``start at`` S shows ``first`` at S;
  ``offset`` O shows f at f + O. Any other expression cannot be followed: such a Read is refused.
- the matte Read gets the EXRs' numbers as ``first``/``last`` and, where its first EXR must show
  at another frame (always for a movie, or a renumbered Read), ``frame_mode`` ``start at``: every
  matte frame sits under the same frame number as the source frame it belongs to.
- the EXRs hold straight RGB and the matte in A: the matte Read is ``raw`` (no colour transform
  touches the alpha) and not ``premultiplied``; the Premult after the Copy premultiplies by it.
- ``nuke.filename`` gives the file with TCL and variables expanded (a proxy file in proxy mode:
  submit with proxy mode off).

Settings (:class:`Settings`): the daemon's URL and token and the output folder come from the
environment (``RVM_RENDER_URL``, ``RVM_RENDER_TOKEN``, ``RVM_RENDER_OUTPUT_DIR``), else from the
``settings.json`` the installer writes into the plug-in folder, else the client's defaults and
``rvm_mattes/`` beside the source. The daemon must be allowed to write the mattes there (inside
its ``media_roots``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nuke

from rvm_render.api.client import FINAL_STATES, ApiError, RvmRenderClient, progress_text
from rvm_render.integrations.plugin_settings import OUTPUT_DIR_ENV, SETTINGS_PATH, matte_folder_beside, plugin_settings

__all__ = [
    "OUTPUT_DIR_ENV", "Settings", "ReadError", "Source", "Matte", "MatteJob", "JOBS", "matte_selected_reads",
    "source_of_read", "daemon_path", "output_dir_for", "follow_job", "matte_of_job", "matte_tree",
    "existing_matte_tree",
]  # fmt: skip

#: The frame number Nuke gives a movie's first frame (the daemon counts from 0).
MOVIE_FIRST_FRAME = 1
#: What the daemon renders for a Read: the matte Read needs the EXR sequence (straight RGB + A).
PRESET: dict[str, Any] = {"formats": ["exr"]}
#: Seconds between two looks at a running job: progress moves every second or so, and a look costs
#: the daemon one small query.
POLL_S = 1.0
#: Node-graph units between the matte tree's column and the source Read, and between its nodes.
#: A Read with its postage stamp is about 80 x 80; these keep a node's width of space between.
COLUMN_STEP = 180
ROW_STEP = 110
#: The matte tree's footprint (three nodes in a column), to find a column where it covers nothing.
TREE_WIDTH = 80
TREE_HEIGHT = 2 * ROW_STEP + 80

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?\d*d")

#: Every job started in this session, oldest first (the jobs panel lists them).
JOBS: list[MatteJob] = []
#: Called in the main thread when a job's status changes (the jobs panel refreshes).
on_change: list[Callable[[], None]] = []


@dataclass(frozen=True)
class Settings:
    """Where the daemon is and where mattes go; None: the client's default, or beside the source."""

    url: str | None = None
    token: str | None = None
    output_dir: str | None = None

    @classmethod
    def load(cls, path: str | None = None) -> Settings:
        """The installer's ``settings.json`` (when present), then the environment over it.

        Raises:
            OSError, ValueError: the file cannot be read or is not a JSON object.
        """
        values = plugin_settings(SETTINGS_PATH if path is None else path)
        known = {name: str(values[name]) for name in ("url", "token", "output_dir") if values.get(name)}
        return cls(**known)

    def client(self) -> RvmRenderClient:
        return RvmRenderClient(self.url, self.token)


class ReadError(ValueError):
    """A Read that cannot be submitted; the message names the Read, its file and what to change."""


@dataclass(frozen=True)
class Source:
    """What a Read asks the daemon for, taken from its knobs in the main thread."""

    read_name: str  # full name (``Group1.Read1`` inside a group)
    file: str  # as the daemon takes it: printf frame field for a sequence
    first_frame: int  # the Read's first/last: file numbers as Nuke has them
    last_frame: int
    is_sequence: bool
    shown_first_frame: int  # the timeline frame where the Read shows ``first_frame``
    output_dir: str

    @property
    def frames(self) -> str:
        """The daemon's range: file numbers of a sequence, 0-based indexes of a movie."""
        offset = 0 if self.is_sequence else MOVIE_FIRST_FRAME
        return f"{self.first_frame - offset}-{self.last_frame - offset}"

    def shown_frame(self, matte_number: int) -> int:
        """The timeline frame where the Read shows the source frame of matte EXR ``matte_number``."""
        file_frame = matte_number + (0 if self.is_sequence else MOVIE_FIRST_FRAME)
        return self.shown_first_frame + file_frame - self.first_frame


@dataclass(frozen=True)
class Matte:
    """A finished job's EXR sequence, from its manifest."""

    pattern: str  # printf, e.g. /shots/rvm_mattes/take_matte.%06d.exr
    first_frame: int
    last_frame: int


def daemon_path(file: str) -> tuple[str, bool]:
    """The file as the daemon takes it (``####`` becomes ``%04d``), and whether it is a sequence."""
    folder, name = os.path.split(file)
    name = _HASHES.sub(lambda run: f"%0{len(run.group())}d", name)
    return os.path.join(folder, name), bool(_PRINTF.search(name))


def output_dir_for(media_path: str, settings: Settings) -> str:
    """The configured output folder, else ``rvm_mattes/`` in the media's folder."""
    return settings.output_dir or matte_folder_beside(media_path)


def source_of_read(read: Any, settings: Settings) -> Source:
    """The job a Read asks for. Main thread only (it reads knobs).

    Raises:
        ReadError: not a Read, no file, or a frame expression that cannot be followed.
    """
    name = read.fullName()
    if read.Class() != "Read":
        raise ReadError(f"{name} is a {read.Class()} node, not a Read: select Read nodes")
    file = nuke.filename(read)
    if not file:
        raise ReadError(f"{name} has no file: set its file knob")
    path, is_sequence = daemon_path(file)
    first, last = int(read["first"].value()), int(read["last"].value())
    if last < first:
        raise ReadError(f"{name} ({file}): its frame range {first}-{last} ends before it starts")
    mode, frame = read["frame_mode"].value(), read["frame"].value().strip()
    if mode == "start at":
        shown_first = _whole_number(frame, name, file)
    elif mode == "offset":
        shown_first = first + _whole_number(frame, name, file)
    elif not frame:
        shown_first = first
    else:
        raise ReadError(f"{name} ({file}): its frame expression '{frame}' cannot be followed; "
                        "clear it or use 'start at' or 'offset'")  # fmt: skip
    return Source(name, path, first, last, is_sequence, shown_first, output_dir_for(path, settings))


def _whole_number(text: str, name: str, file: str) -> int:
    try:
        return int(float(text or "0"))
    except ValueError:
        raise ReadError(f"{name} ({file}): its frame '{text}' is not a number") from None


def matte_of_job(job: dict[str, Any]) -> Matte:
    """The EXR sequence of a done clip job: its manifest (``outputs[0]``, ``<stem>.rvm.json``) lists it.

    Raises:
        OSError: the manifest cannot be read. ValueError: it lists no EXR output.
    """
    with open(job["outputs"][0], encoding="utf-8") as handle:
        manifest = json.load(handle)
    for output in manifest["outputs"]:
        if output["format"] == "exr":
            return Matte(output["path"], int(output["first_frame"]), int(output["last_frame"]))
    raise ValueError(f"{job['outputs'][0]} lists no EXR matte")


def follow_job(
    client: RvmRenderClient,
    job: dict[str, Any],
    title: str,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll a job until it ends, shown in a ``nuke.ProgressTask`` whose Cancel cancels the job.

    Runs in a worker thread (a ProgressTask is made for that); returns the final job.

    Raises:
        ApiError: the daemon stopped answering or refused.
    """
    task = nuke.ProgressTask(title)
    cancel_sent = False
    while True:
        if on_update is not None:
            on_update(job)
        task.setMessage(progress_text(job))
        total = job.get("frames_total") or 0
        task.setProgress(min(100, int(100 * job["frames_done"] / total)) if total else 0)
        if job["state"] in FINAL_STATES:
            return job
        if task.isCancelled() and not cancel_sent:
            cancel_sent = True
            try:
                job = client.cancel(job["id"])
                continue
            except ApiError as err:
                if err.status == 0:
                    raise  # the daemon is gone; else the job ended meanwhile: the next look shows how
        time.sleep(POLL_S)
        job = client.job(job["id"])


def existing_matte_tree(read: Any) -> tuple[Any, Any, Any] | None:
    """The matte Read, Copy and Premult an earlier run wired to ``read``, if it is still there. Main thread only."""
    name = read.fullName()
    for copy in nuke.allNodes("Copy"):
        source, matte_read = copy.input(0), copy.input(1)
        if source is None or source.fullName() != name or matte_read is None or matte_read.Class() != "Read":
            continue
        premult = next((node for node in nuke.allNodes("Premult") if node.input(0) is not None
                        and node.input(0).fullName() == copy.fullName()), None)  # fmt: skip
        if premult is not None:
            return matte_read, copy, premult
    return None


def _point_at(matte_read: Any, source: Source, matte: Matte) -> None:
    """The matte Read's file and range, every matte frame under its source frame's number."""
    matte_read["file"].setValue(matte.pattern)
    for knob in ("first", "origfirst"):
        matte_read[knob].setValue(matte.first_frame)
    for knob in ("last", "origlast"):
        matte_read[knob].setValue(matte.last_frame)
    shown_first = source.shown_frame(matte.first_frame)
    moved = shown_first != matte.first_frame
    matte_read["frame_mode"].setValue("start at" if moved else "expression")
    matte_read["frame"].setValue(str(shown_first) if moved else "")
    matte_read["raw"].setValue(True)
    matte_read["premultiplied"].setValue(False)


def matte_tree(read: Any, source: Source, matte: Matte) -> tuple[Any, Any, Any]:
    """The matte Read, Copy and Premult, wired to ``read`` and placed beside it; an earlier run's tree
    of ``read`` is updated instead of built again. Main thread only."""
    earlier = existing_matte_tree(read)
    if earlier is not None:
        _point_at(earlier[0], source, matte)
        return earlier
    matte_read = nuke.nodes.Read()
    _point_at(matte_read, source, matte)

    copy = nuke.nodes.Copy()
    copy.setInput(0, read)  # B: the stream that gets the alpha
    copy.setInput(1, matte_read)  # A: where the alpha comes from
    copy["from0"].setValue("rgba.alpha")
    copy["to0"].setValue("rgba.alpha")
    premult = nuke.nodes.Premult()
    premult.setInput(0, copy)

    x, y = _free_column(read, (matte_read, copy, premult))
    for row, node in enumerate((matte_read, copy, premult)):
        node.setXYpos(x, y + row * ROW_STEP)
    return matte_read, copy, premult


def _free_column(read: Any, new: tuple[Any, ...]) -> tuple[int, int]:
    """The first column right of ``read`` where the tree covers no other node."""
    others = [(n.xpos(), n.ypos(), n.screenWidth(), n.screenHeight()) for n in nuke.allNodes() if n not in new]
    x, y = read.xpos() + COLUMN_STEP, read.ypos()
    while any(ox < x + TREE_WIDTH and x < ox + w and oy < y + TREE_HEIGHT and y < oy + h for ox, oy, w, h in others):
        x += COLUMN_STEP
    return x, y


class MatteJob:
    """One Read's job: a thread submits and follows it; the main thread builds its tree."""

    def __init__(self, source: Source, client: RvmRenderClient) -> None:
        self.source = source
        self.client = client
        self.job_id: int | None = None
        self.status = "submitting"
        self.nodes: tuple[str, str, str] | None = None  # names of the matte Read, Copy, Premult
        self.thread = threading.Thread(target=self._run, name=f"rvm-render {source.read_name}", daemon=True)

    def describe(self) -> str:
        return f"{self.source.read_name} ({os.path.basename(self.source.file)}): {self.status}"

    def _run(self) -> None:
        try:
            job = self.client.submit(path=self.source.file, output_dir=self.source.output_dir, preset=dict(PRESET),
                                     frames=self.source.frames)  # fmt: skip
            self.job_id = job["id"]
            title = f"RVM Render: {self.source.read_name}"
            job = follow_job(self.client, job, title, on_update=lambda j: self._set_status(progress_text(j)))
            if job["state"] == "done":
                matte = matte_of_job(job)
                nuke.executeInMainThread(self._place, (matte,))
            elif job["state"] == "failed":
                self._fail(job.get("error") or f"job {job['id']} failed")
        except ApiError as err:
            self._fail(str(err))
        except (OSError, ValueError, KeyError) as err:
            self._fail(f"cannot read the finished job's manifest ({err})")

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            nuke.executeInMainThread(_notify)

    def _fail(self, reason: str) -> None:
        self._set_status(f"failed: {reason}")
        text = f"RVM Render could not matte {self.source.read_name} ({self.source.file}):\n{reason}"
        nuke.executeInMainThread(nuke.message, (text,))

    def _place(self, matte: Matte) -> None:
        """Main thread: the matte tree beside the source Read."""
        read = nuke.toNode(self.source.read_name)
        if read is None:
            self._fail(f"the Read is no longer in the script; its matte is {matte.pattern}")
            return
        with _parent_of(self.source.read_name):
            nodes = matte_tree(read, self.source, matte)
        self.nodes = (nodes[0].name(), nodes[1].name(), nodes[2].name())
        self._set_status(f"done: {self.nodes[0]} -> {self.nodes[2]}")


def _parent_of(full_name: str) -> Any:
    """The group holding a node (the root, or ``Group1`` for ``Group1.Read1``): new nodes go there."""
    group, _, _ = full_name.rpartition(".")
    return nuke.toNode(group) if group else nuke.root()


def _notify() -> None:
    for listener in list(on_change):
        listener()


def matte_selected_reads() -> list[MatteJob]:
    """The menu command: start a job for each selected Read and return at once. Main thread only."""
    selected = nuke.selectedNodes("Read")
    if not selected:
        nuke.message("RVM Render: select one or more Read nodes first")
        return []
    try:
        settings = Settings.load()
    except (OSError, ValueError) as err:
        nuke.message(f"RVM Render cannot read its settings ({err}); fix or remove the file")
        return []
    client = settings.client()
    started: list[MatteJob] = []
    problems: list[str] = []
    for node in selected:
        try:
            source = source_of_read(node, settings)
        except ReadError as err:
            problems.append(str(err))
            continue
        job = MatteJob(source, client)
        JOBS.append(job)
        started.append(job)
        job.thread.start()
    if problems:
        nuke.message("RVM Render could not submit:\n" + "\n".join(problems))
    _notify()
    return started
