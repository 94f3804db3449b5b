"""Nuke runs ``init.py`` in every session, command-line renders and farm renders too: the plug-in
adds nothing there on purpose.

No menus, no callbacks, no imports. The trees it builds are plain Read, Copy and Premult nodes,
so a script with mattes renders anywhere, with or without rvm_render; the menus come from
``menu.py``, which Nuke runs only in interactive sessions.
"""
