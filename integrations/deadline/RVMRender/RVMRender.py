"""RVMRender: the Deadline 10 plug-in that runs rvm-render's segment and assemble tasks.

Copy this folder into the repository's ``custom/plugins/`` (``<repository>/custom/plugins/RVMRender``)
and set the rvm-render executable in Monitor > Tools > Configure Plugins > RVMRender. Jobs come from
``rvm-render farm export INPUT -o OUTDIR --format deadline`` (or ``farm submit``): each task of a wave
job runs ``rvm-render segment WORKDIR --index K`` for its frame K, the assemble job's one task
``rvm-render assemble WORKDIR``.

A simple plug-in (Deadline's ``PluginType.Simple``): Deadline runs ``RenderExecutable()`` with
``RenderArgument()`` and feeds every output line to the stdout handlers. rvm-render's progress lines
(``... 42.0% 10/24 frames ...``) set the task's progress and status; its one-line error
(``error: <what>, <path>, <fix>``) fails the task with that line. When Deadline requeues or suspends a
task it stops the process; rvm-render takes that SIGTERM as Ctrl-C: the segment's partial outputs are
removed and the checkpoints of finished segments stay, so the task runs again from them.

Loaded by Deadline's own Python: the standard library and Deadline's modules only.
"""

import re
import sys

from Deadline.Plugins import DeadlinePlugin, PluginType
from Deadline.Scripting import FileUtils

PROGRESS = r"(\d+(?:\.\d+)?)% (\d+)/(\d+) frames"
ERROR = r"^error: (.*)$"
#: How rvm-render says it ended on SIGTERM (cli/main.py), the signal Deadline stops a requeued task with.
STOPPED = "terminated (SIGTERM)"


def GetDeadlinePlugin():  # noqa: N802 (the names Deadline calls)
    return RVMRenderPlugin()


def CleanupDeadlinePlugin(deadlinePlugin):  # noqa: N802, N803
    deadlinePlugin.Cleanup()


class RVMRenderPlugin(DeadlinePlugin):
    def __init__(self):
        if sys.version_info.major == 3:  # noqa: UP036 (Deadline's documented plug-in constructor)
            super().__init__()
        self.InitializeProcessCallback += self.InitializeProcess
        self.RenderExecutableCallback += self.RenderExecutable
        self.RenderArgumentCallback += self.RenderArgument

    def Cleanup(self):  # noqa: N802
        for stdoutHandler in self.StdoutHandlers:  # noqa: N806
            del stdoutHandler.HandleCallback
        del self.InitializeProcessCallback
        del self.RenderExecutableCallback
        del self.RenderArgumentCallback

    def InitializeProcess(self):  # noqa: N802
        self.SingleFramesOnly = True  # a task is one segment: its frame is the segment index
        self.PluginType = PluginType.Simple
        self.StdoutHandling = True
        self.AddStdoutHandlerCallback(PROGRESS).HandleCallback += self.HandleProgress
        self.AddStdoutHandlerCallback(ERROR).HandleCallback += self.HandleError

    def RenderExecutable(self):  # noqa: N802
        executable = self.GetPluginInfoEntryWithDefault("Executable", "").strip()
        if executable:
            return executable
        configured = FileUtils.SearchFileList(self.GetConfigEntry("RVMRender_Executable"))
        if not configured:
            self.FailRender("no rvm-render executable found in the RVMRender plug-in configuration ({}); set it in "
                            "Monitor > Tools > Configure Plugins".format(self.GetConfigEntry("RVMRender_Executable")))
        return configured

    def RenderArgument(self):  # noqa: N802
        work_dir = self.GetPluginInfoEntry("WorkDir")
        command = self.GetPluginInfoEntry("Command")
        extra = self.GetPluginInfoEntryWithDefault("Arguments", "").strip()
        if command == "segment":
            words = ["segment", _quoted(work_dir), "--index", str(self.GetStartFrame())]
        elif command == "assemble":
            words = ["assemble", _quoted(work_dir)]
        else:
            self.FailRender(f"plug-in info Command={command!r}: expected segment or assemble (export the job "
                            "again with rvm-render farm export --format deadline)")
        return " ".join(words + ([extra] if extra else []))

    def HandleProgress(self):  # noqa: N802
        self.SetProgress(float(self.GetRegexMatch(1)))
        self.SetStatusMessage(f"{self.GetRegexMatch(2)}/{self.GetRegexMatch(3)} frames")

    def HandleError(self):  # noqa: N802
        message = self.GetRegexMatch(1)
        if message.startswith(STOPPED):  # Deadline itself stopped the task (requeue, suspend): not an error
            self.SetStatusMessage(message)
            return
        self.FailRender(message)


def _quoted(path):
    """A path as one argument of the command line Deadline splits (quotes around spaces)."""
    return f'"{path}"' if re.search(r"\s", path) else path
