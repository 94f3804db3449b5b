"""The "RVM Render" panel: which daemon, this session's matte jobs and their state, and a button
that mattes the selected Reads.

A ``nukescripts.PythonPanel`` (Nuke's own knob-built panels, no Qt of ours). Its job list follows
each job as it moves (the jobs call :func:`matte_reads._notify` in the main thread), so the panel
can stay open beside the node graph while the daemon works.
"""

from __future__ import annotations

from typing import Any

import nuke
import nukescripts

from rvm_render_nuke import matte_reads

__all__ = ["JobsPanel", "show_jobs_panel", "PANEL_ID"]

PANEL_ID = "rvm_render.jobs"
#: The panel lists the latest jobs only: a session that matted hundreds of Reads stays readable.
SHOWN_JOBS = 20

_panel: JobsPanel | None = None


class JobsPanel(nukescripts.PythonPanel):
    """The daemon's URL, a "Matte selected Reads" button and the latest jobs, one line each."""

    def __init__(self) -> None:
        nukescripts.PythonPanel.__init__(self, "RVM Render", PANEL_ID)
        self.daemon = nuke.Text_Knob("daemon", "daemon", "")
        self.matte = nuke.PyScript_Knob("matte", "Matte selected Reads")
        self.jobs = nuke.Text_Knob("jobs", "jobs", "")
        for knob in (self.daemon, self.matte, self.jobs):
            self.addKnob(knob)
        self.refresh()
        matte_reads.on_change.append(self.refresh)

    def knobChanged(self, knob: Any) -> None:  # noqa: N802 (nukescripts' name)
        if knob.name() == "matte":
            matte_reads.matte_selected_reads()

    def refresh(self) -> None:
        """Main thread: the daemon and the job list as they are now."""
        try:
            self.daemon.setValue(matte_reads.Settings.load().client().url)
        except (OSError, ValueError) as err:
            self.daemon.setValue(f"settings unreadable: {err}")
        lines = [job.describe() for job in matte_reads.JOBS[-SHOWN_JOBS:]]
        self.jobs.setValue("\n".join(lines) if lines else "no jobs yet: select Reads, then Matte selected Reads")


def show_jobs_panel() -> JobsPanel:
    """The menu command: show the panel (one per session, made on first use)."""
    global _panel
    if _panel is None:
        _panel = JobsPanel()
    _panel.show()
    return _panel
