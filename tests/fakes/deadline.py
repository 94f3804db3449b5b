"""Strict fakes of Thinkbox Deadline 10: ``deadlinecommand`` job submission and the plug-in API a Worker runs.

Both follow Deadline 10's documentation (Manual Job Submission; Scripting Reference, Application
Plugins): only the documented arguments, keys and methods exist, and anything else fails.

- :data:`DEADLINECOMMAND`: a ``deadlinecommand`` script for ``PATH``. It takes
  ``JOBINFO PLUGININFO [AUX...]`` or ``-SubmitMultipleJobs [-dependent] -job JOBINFO PLUGININFO ...``;
  job info keys must be documented ones, plug-in info keys those ``RVMRender.options`` defines. Each
  job is appended as a JSON line to ``$FAKE_DEADLINE_LOG`` with its ID and ``JobDependencies``
  (``-dependent``: the job before); it prints ``Result=Success`` and ``JobID=...`` as Deadline does.
- :class:`DeadlineWorker`: loads a plug-in's ``<Name>.py`` against fake ``Deadline.Plugins`` and
  ``Deadline.Scripting`` modules and runs one task as a Worker does a simple plug-in:
  ``GetDeadlinePlugin()``, the InitializeProcess callback, ``RenderExecutable``/``RenderArgument``,
  the process with every output line (stdout and stderr, as the Worker logs both) passed to the
  stdout handlers whose regex matches, then ``CleanupDeadlinePlugin``. ``FailRender`` ends the task.
"""

from __future__ import annotations

import re
import runpy
import shlex
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEADLINECOMMAND", "JOB_INFO_KEYS", "DeadlineWorker", "TaskResult", "RenderFailed"]

#: Job info keys of Deadline 10's job submission documentation that the exporter may write.
JOB_INFO_KEYS = frozenset({
    "Plugin", "Name", "BatchName", "Comment", "Department", "Pool", "SecondaryPool", "Group", "Priority",
    "Frames", "ChunkSize", "MachineLimit", "ConcurrentTasks", "JobDependencies", "InitialStatus",
    "OnJobComplete", "OutputDirectory0", "OutputFilename0", "UserName", "TaskTimeoutMinutes",
})  # fmt: skip

DEADLINECOMMAND = r'''#!{python}
"""Fake deadlinecommand: documented submission forms and keys only."""
import json, os, re, sys

JOB_INFO_KEYS = {job_info_keys!r}
OPTIONS = {options!r}


def fail(message):
    print("Error: " + message)
    sys.exit(1)


def read_keys(path, allowed, what):
    keys = {{}}
    for line in open(path, encoding="utf-8").read().splitlines():
        if not line.strip():
            continue
        if "=" not in line:
            fail("{{}}: line {{!r}} is not Key=Value".format(path, line))
        key, value = line.split("=", 1)
        if key not in allowed:
            fail("{{}}: unknown {{}} key {{!r}}".format(path, what, key))
        keys[key] = value
    return keys


args = sys.argv[1:]
pairs, dependent = [], False
if args and args[0] == "-SubmitMultipleJobs":
    args = args[1:]
    if args and args[0] == "-dependent":
        dependent, args = True, args[1:]
    while args:
        if args[0] != "-job" or len(args) < 3:
            fail("expected -job JOBINFO PLUGININFO, got {{}}".format(args))
        pairs.append((args[1], args[2]))
        args = args[3:]
elif len(args) >= 2 and not args[0].startswith("-"):
    pairs.append((args[0], args[1]))
else:
    fail("unsupported arguments {{}}".format(sys.argv[1:]))
if not pairs:
    fail("no job to submit")
log = open(os.environ["FAKE_DEADLINE_LOG"], "a", encoding="utf-8")
previous = None
for number, (job_file, plugin_file) in enumerate(pairs):
    job = read_keys(job_file, JOB_INFO_KEYS, "job info")
    for required in ("Plugin", "Frames"):
        if required not in job:
            fail("{{}}: no {{}}".format(job_file, required))
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", job["Frames"]):
        fail("{{}}: Frames={{!r}} is not a frame list".format(job_file, job["Frames"]))
    plugin = read_keys(plugin_file, OPTIONS, "plug-in info")
    job_id = "{{:024x}}".format(len(open(os.environ["FAKE_DEADLINE_LOG"]).read().splitlines()) + number + 1)
    if dependent and previous is not None:
        job["JobDependencies"] = previous
    log.write(json.dumps({{"id": job_id, "job_info": job, "plugin_info": plugin}}) + "\n")
    print("Result=Success")
    print("JobID=" + job_id)
    previous = job_id
'''


class RenderFailed(Exception):
    """``FailRender(message)``: Deadline ends the task as failed with the message."""


@dataclass
class TaskResult:
    """What a task did: its command line, exit code, progress and status messages, and the failure if any."""

    command: list[str]
    exit_code: int | None = None
    progress: list[float] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    failed: str | None = None
    output: list[str] = field(default_factory=list)


class _Event:
    """A .NET event as pythonnet exposes it: ``+=`` subscribes; calling fires every handler."""

    def __init__(self) -> None:
        self.handlers: list[Callable[[], Any]] = []

    def __iadd__(self, handler: Callable[[], Any]) -> _Event:
        if not callable(handler):
            raise TypeError(f"an event handler must be callable, not {handler!r}")
        self.handlers.append(handler)
        return self

    def __call__(self) -> Any:
        if len(self.handlers) != 1:
            raise RuntimeError(f"a callback needs exactly one handler, has {len(self.handlers)}")
        return self.handlers[0]()


class _StdoutHandler:
    def __init__(self, regex: str) -> None:
        self.regex = re.compile(regex)
        self.HandleCallback = _Event()


class _PluginType:
    Simple = "Simple"
    Advanced = "Advanced"


_CALLBACKS = ("InitializeProcessCallback", "RenderExecutableCallback", "RenderArgumentCallback",
              "PreRenderTasksCallback", "PostRenderTasksCallback", "StartupDirectoryCallback")  # fmt: skip
_SETTINGS = ("SingleFramesOnly", "PluginType", "StdoutHandling", "PopupHandling", "HideDosWindow")


class _DeadlinePlugin:
    """``Deadline.Plugins.DeadlinePlugin``: the members a simple plug-in may use, nothing else."""

    def __init__(self) -> None:
        for name in _CALLBACKS:
            object.__setattr__(self, name, _Event())
        object.__setattr__(self, "StdoutHandlers", [])
        object.__setattr__(self, "_task", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _CALLBACKS + _SETTINGS and not name.startswith("_"):
            raise AttributeError(f"DeadlinePlugin has no settable member {name!r}")
        if name == "PluginType" and value not in (_PluginType.Simple, _PluginType.Advanced):
            raise TypeError(f"PluginType must be a PluginType value, not {value!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name not in _CALLBACKS:
            raise AttributeError(f"cannot delete {name!r}")
        object.__delattr__(self, name)

    # --- the Worker's task, as the plug-in reads it
    def AddStdoutHandlerCallback(self, regex: str) -> _StdoutHandler:  # noqa: N802
        handler = _StdoutHandler(regex)
        self.StdoutHandlers.append(handler)
        return handler

    def GetPluginInfoEntry(self, key: str) -> str:  # noqa: N802
        if key not in self._task.plugin_info:
            raise KeyError(f"plug-in info has no entry {key!r}")  # Deadline throws on a missing key
        return self._task.plugin_info[key]

    def GetPluginInfoEntryWithDefault(self, key: str, default: str) -> str:  # noqa: N802
        if not isinstance(default, str):
            raise TypeError("GetPluginInfoEntryWithDefault(key, default): default is a string")
        return self._task.plugin_info.get(key, default)

    def GetConfigEntry(self, key: str) -> str:  # noqa: N802
        if key not in self._task.config:
            raise KeyError(f"plug-in configuration has no entry {key!r}")
        return self._task.config[key]

    def GetStartFrame(self) -> int:  # noqa: N802
        return self._task.frame

    def GetEndFrame(self) -> int:  # noqa: N802
        return self._task.frame

    def GetRegexMatch(self, index: int) -> str:  # noqa: N802
        return self._task.match.group(index)

    def SetProgress(self, progress: float) -> None:  # noqa: N802
        if not isinstance(progress, float) or not 0 <= progress <= 100:
            raise TypeError(f"SetProgress takes a float percentage, not {progress!r}")
        self._task.result.progress.append(progress)

    def SetStatusMessage(self, message: str) -> None:  # noqa: N802
        if not isinstance(message, str):
            raise TypeError("SetStatusMessage takes a string")
        self._task.result.status.append(message)

    def FailRender(self, message: str) -> None:  # noqa: N802
        raise RenderFailed(message)

    def LogInfo(self, message: str) -> None:  # noqa: N802
        self._task.result.output.append(message)


def _search_file_list(paths: str) -> str:
    """``FileUtils.SearchFileList``: the first of the ``;``-separated paths that exists, else ``""``."""
    return next((path for path in paths.split(";") if path and Path(path).is_file()), "")


@dataclass
class _Task:
    plugin_info: dict[str, str]
    config: dict[str, str]
    frame: int
    result: TaskResult
    match: re.Match[str] | None = None


class DeadlineWorker:
    """A Worker running the tasks of one plug-in (``integrations/deadline/<Name>/<Name>.py``).

    Args:
        plugin_dir: the plug-in's folder.
        config: its configuration entries (what Monitor > Configure Plugins holds).
    """

    def __init__(self, plugin_dir: Path, config: dict[str, str]) -> None:
        self.plugin_file = plugin_dir / f"{plugin_dir.name}.py"
        self.config = config
        self.process: subprocess.Popen[str] | None = None
        self.started = threading.Event()

    def modules(self) -> dict[str, types.ModuleType]:
        deadline = types.ModuleType("Deadline")
        plugins = types.ModuleType("Deadline.Plugins")
        plugins.DeadlinePlugin, plugins.PluginType = _DeadlinePlugin, _PluginType
        scripting = types.ModuleType("Deadline.Scripting")
        scripting.FileUtils = types.SimpleNamespace(SearchFileList=_search_file_list)
        deadline.Plugins, deadline.Scripting = plugins, scripting
        return {"Deadline": deadline, "Deadline.Plugins": plugins, "Deadline.Scripting": scripting}

    def run_task(self, plugin_info: dict[str, str], frame: int, env: dict[str, str] | None = None) -> TaskResult:
        """Run the task for ``frame`` of a job with ``plugin_info``; the result says how it ended."""
        saved = {name: sys.modules.get(name) for name in self.modules()}
        sys.modules.update(self.modules())
        try:
            scope = runpy.run_path(str(self.plugin_file))
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        plugin = scope["GetDeadlinePlugin"]()
        task = _Task(plugin_info, self.config, frame, TaskResult([]))
        object.__setattr__(plugin, "_task", task)
        try:
            plugin.InitializeProcessCallback()
            if plugin.PluginType != _PluginType.Simple:
                raise AssertionError("only simple plug-ins are run here")
            executable = plugin.RenderExecutableCallback()
            arguments = plugin.RenderArgumentCallback()
            task.result.command = [executable, *shlex.split(arguments)]
            self._run_process(plugin, task)
        except RenderFailed as failure:
            task.result.failed = str(failure)
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
        finally:
            if self.process is not None:
                task.result.exit_code = self.process.wait()
            scope["CleanupDeadlinePlugin"](plugin)
            for name in _CALLBACKS[:3]:
                assert not hasattr(plugin, name), f"CleanupDeadlinePlugin left {name}"
        return task.result

    def _run_process(self, plugin: _DeadlinePlugin, task: _Task) -> None:
        self.process = subprocess.Popen(task.result.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, bufsize=1)  # fmt: skip
        self.started.set()
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            task.result.output.append(line)
            if not plugin.StdoutHandling:
                continue
            for handler in plugin.StdoutHandlers:
                task.match = handler.regex.search(line)
                if task.match:
                    for callback in handler.HandleCallback.handlers:
                        callback()
        if self.process.wait() != 0 and task.result.failed is None:
            task.result.failed = f"renderer returned non-zero error code {self.process.returncode}"

    def requeue(self) -> None:
        """Requeue the running task: the Worker stops the render process (SIGTERM)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)


def options_keys(options_file: Path) -> list[str]:
    """The plug-in info keys a ``.options`` file defines (its ``[Section]`` names)."""
    return re.findall(r"^\[(\w+)\]$", options_file.read_text(), flags=re.MULTILINE)
