"""Work split over time and machines: shot cuts, segments, checkpoints, farm jobs (issue 3).

Import the submodules directly (``rvm_render.jobs.cuts``, ``.segments``, ``.checkpoint``,
``.farm.openjd``, ``.farm.opencue``); this package re-exports nothing so that importing one
part never pulls in the others' dependencies.
"""
