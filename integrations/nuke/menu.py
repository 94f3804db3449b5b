"""Nuke runs ``menu.py`` when an interactive session starts (after ``init.py``): the RVM Render menus.

- Nodes toolbar and Nuke's Render menu: "RVM Render/Matte selected Reads" (one job per selected
  Read; the matte comes back as a Read/Copy/Premult tree beside it) and "RVM Render/Jobs panel".
- Nuke Studio: also "Render/RVM Render/Matte current sequence" (the timeline as one OTIO job).

The installer puts this file at the root of a ``NUKE_PATH`` folder, with ``rvm_render`` (the
API client and this plug-in) beside it; the daemon's URL and token come from ``RVM_RENDER_URL``
and ``RVM_RENDER_TOKEN``.
"""

import nuke

from rvm_render_nuke import hiero_export, matte_reads, panel


def _add_menus() -> None:
    for menu, folder in ((nuke.menu("Nodes"), "RVM Render"), (nuke.menu("Nuke"), "Render/RVM Render")):
        menu.addCommand(folder + "/Matte selected Reads", matte_reads.matte_selected_reads,
                        tooltip="Matte the selected Reads on the rvm-render daemon")  # fmt: skip
        menu.addCommand(folder + "/Jobs panel", panel.show_jobs_panel)
    if nuke.env["studio"]:
        nuke.menu("Nuke").addCommand("Render/RVM Render/Matte current sequence", hiero_export.matte_active_sequence)


_add_menus()
