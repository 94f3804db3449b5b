"""Strict fakes of the host applications (DaVinci Resolve, Nuke) the editor plug-ins run in."""
