"""RVM Render Matte: matte the current timeline on the rvm-render daemon and place the mattes above it.

Installed as ``Fusion/Scripts/Utility/RVM Render Matte.py`` by
``python -m rvm_render.integrations install resolve``, which sets ``SUPPORT_DIR`` below to the
folder holding the plug-in and its vendored API client; or linked there, with ``rvm_render_davinci/``
beside it, from a checkout's ``integrations/davinci``. Run it from Workspace > Scripts, or from a
terminal while Resolve runs (with Resolve's scripting environment variables set).
"""

import os
import sys

SUPPORT_DIR = None  # set by the installer


def _resolve():
    """Resolve's scripting object, the ways Resolve hands it to scripts."""
    scope = globals()
    if scope.get("resolve"):
        return scope["resolve"]
    if scope.get("app"):
        return scope["app"].GetResolve()
    if scope.get("bmd"):
        return scope["bmd"].scriptapp("Resolve")
    try:
        import DaVinciResolveScript
    except ImportError:
        return None
    return DaVinciResolveScript.scriptapp("Resolve")


def run():
    script = globals().get("__file__")
    for folder in (SUPPORT_DIR, script and os.path.dirname(os.path.realpath(script))):
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        from rvm_render_davinci.resolve_matte import Settings, main
    except ImportError as err:
        print(f"RVM Render: error: {err} (install the plug-in with `python -m rvm_render.integrations install "
              "resolve`, link the checkout's integrations/davinci files into Fusion/Scripts/Utility, or set "
              "RVM_RENDER_HOME to the checkout where they were copied from)")
        return 1

    resolve = _resolve()
    if resolve is None:
        print("RVM Render: error: Resolve is not reachable; run this from Workspace > Scripts in DaVinci Resolve "
              "(or set RESOLVE_SCRIPT_API/RESOLVE_SCRIPT_LIB as Resolve's scripting README says)")
        return 1
    report = main(resolve, Settings.load(), globals().get("bmd"))
    return 0 if report.ok else 1


if __name__ == "__main__":
    status = run()
    if globals().get("resolve") is None and globals().get("app") is None and globals().get("bmd") is None:
        sys.exit(status)  # from a terminal; inside Resolve, never exit its Python
