"""The Nuke plug-in: "RVM Render/Matte selected Reads" and a jobs panel in Nuke, and the current
sequence as a timeline job in Nuke Studio/Hiero.

Runs inside Nuke's Python: imports only the standard library, ``nuke``/``nukescripts``/``hiero``
and :mod:`rvm_render.api.client`. ``init.py`` and ``menu.py`` sit at the root of the ``NUKE_PATH``
folder: a checkout's ``integrations/nuke``, or the folder ``python -m rvm_render.integrations
install nuke`` fills (with a vendored client beside this package).
"""

import os
import sys

try:
    import rvm_render.api.client  # noqa: F401 (vendored beside this package by the installer)
except ImportError:  # NUKE_PATH=<checkout>/integrations/nuke: the checkout's own client
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))))
