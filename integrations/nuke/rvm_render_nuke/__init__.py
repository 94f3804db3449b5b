"""The Nuke plug-in: "RVM Render/Matte selected Reads" and a jobs panel in Nuke, and the current
sequence as a timeline job in Nuke Studio/Hiero.

Runs inside Nuke's Python: imports only the standard library, ``nuke``/``nukescripts``/``hiero``
and :mod:`rvm_render.api.client`. ``init.py`` and ``menu.py`` go at the root of a ``NUKE_PATH``
folder (``python -m rvm_render.integrations install nuke``).
"""
