"""Editor plug-ins (DaVinci Resolve, Nuke) and their installer.

The plug-ins run inside the host application's Python: they import only the standard library,
the host's own modules and :mod:`rvm_render.api.client`, so no torch, numpy or other library of
ours can clash with the host's. ``python -m rvm_render.integrations install resolve|nuke`` copies
a plug-in with a vendored copy of the client to where the host looks for it.
"""
