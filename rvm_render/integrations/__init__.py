"""The editor plug-ins' installer and the settings loader they share.

The plug-ins themselves live at the top of the repository, ``integrations/davinci`` and
``integrations/nuke`` (a wheel carries them as ``rvm_render/integrations/plugins``). They run inside
the host application's Python: they import only the standard library, the host's own modules and
:mod:`rvm_render.api.client`, so no torch, numpy or other library of ours can clash with the host's.
``python -m rvm_render.integrations install resolve|nuke`` copies a plug-in's files with a vendored
copy of the client to where the host looks for them.
"""
