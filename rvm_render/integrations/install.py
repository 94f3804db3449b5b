"""Install an editor plug-in where its host looks for it, with a vendored copy of the API client.

The plug-ins are the files of the repository's top-level ``integrations/davinci`` and
``integrations/nuke`` (a wheel carries them as ``rvm_render/integrations/plugins/``). An install
copies exactly those files, plus a vendored ``rvm_render/`` tree holding only ``api/client.py``
and ``integrations/plugin_settings.py`` (empty ``__init__`` files, so no torch or numpy is ever
imported in the host):

- **resolve**: ``RVM Render Matte.py`` in the per-user ``Fusion/Scripts/Utility`` folder (the
  Workspace > Scripts menu), its ``SUPPORT_DIR`` line set to the support folder
  ``rvm_render_plugin/`` beside ``Scripts`` (not a menu folder, so the support modules are not
  listed as scripts), which holds ``rvm_render_davinci/``.
- **nuke**: a folder (default ``~/.nuke/rvm_render_plugin``) with ``init.py``, ``menu.py`` and
  ``rvm_render_nuke/`` for ``NUKE_PATH``.

``settings.json`` in the support folder holds the daemon's URL and token when given; the
environment (``RVM_RENDER_URL``, ``RVM_RENDER_TOKEN``) wins over it at run time. Files are
replaced only when they are the plug-in's own (an earlier install); nothing else is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import rvm_render.api.client as api_client
from rvm_render.integrations.plugin_settings import SETTINGS_FILE

__all__ = ["HOSTS", "Installed", "plugins_dir", "plugin_files", "resolve_scripts_dir", "nuke_plugin_dir", "install"]

HOSTS = ("resolve", "nuke")
PACKAGE_DIR = Path(__file__).resolve().parent
#: Each host's folder under ``integrations/``.
PLUGIN_FOLDERS = {"resolve": "davinci", "nuke": "nuke"}
RESOLVE_SCRIPT_NAME = "RVM Render Matte.py"
SUPPORT_DIR_NAME = "rvm_render_plugin"
#: Modules of ``rvm_render/integrations/`` itself that every plug-in imports.
SHARED_MODULES = ("plugin_settings.py",)
VENDORED_INIT = '"""Vendored by rvm_render.integrations.install: the API client and the editor plug-ins only."""\n'


@dataclass(frozen=True)
class Installed:
    """What an install wrote: the file the host runs (or the folder it loads) and the support folder."""

    entry: Path
    support_dir: Path
    settings: Path | None


def resolve_scripts_dir(platform: str = sys.platform, home: Path | None = None,
                        environ: Mapping[str, str] = os.environ) -> Path:  # fmt: skip
    """Resolve's per-user ``Fusion/Scripts`` folder, as its scripting README gives it per OS."""
    home = home or Path.home()
    if platform == "darwin":
        return home / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts"
    if platform.startswith("win"):
        appdata = Path(environ.get("APPDATA") or home / "AppData" / "Roaming")
        return appdata / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    return home / ".local/share/DaVinciResolve/Fusion/Scripts"


def nuke_plugin_dir(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".nuke" / SUPPORT_DIR_NAME


def plugins_dir() -> Path:
    """The plug-ins: ``rvm_render/integrations/plugins/`` in a wheel, the checkout's ``integrations/`` otherwise."""
    packaged = PACKAGE_DIR / "plugins"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parents[1] / "integrations"


def plugin_files(host: str) -> dict[str, Path]:
    """A host's plug-in files by their path relative to its folder (``menu.py``, ``rvm_render_nuke/panel.py``)."""
    folder = plugins_dir() / PLUGIN_FOLDERS[host]
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.relative_to(folder).parts
    }


def install(host: str, dest: Path | None = None, *, url: str | None = None, token: str | None = None) -> Installed:
    """Install the plug-in for ``host`` (``dest``: the Scripts folder for resolve, the plug-in folder for nuke).

    Raises:
        ValueError: an unknown host.
        FileExistsError: a file in the way that an earlier install did not write.
    """
    if host not in HOSTS:
        raise ValueError(f"unknown host '{host}'; choose from {', '.join(HOSTS)}")
    files = plugin_files(host)
    if host == "resolve":
        scripts = dest or resolve_scripts_dir()
        support = scripts.parent / SUPPORT_DIR_NAME
        entry = scripts / "Utility" / RESOLVE_SCRIPT_NAME
        launcher = files.pop(RESOLVE_SCRIPT_NAME).read_text(encoding="utf-8")
        marker = "SUPPORT_DIR = None  # set by the installer"
        assert marker in launcher
        _vendor(support, files)
        _write_own(entry, launcher.replace(marker, f"SUPPORT_DIR = {str(support)!r}  # set by the installer"))
    else:
        support = entry = dest or nuke_plugin_dir()
        _vendor(support, {name: path for name, path in files.items() if "/" in name})
        for name in ("init.py", "menu.py"):
            _write_own(support / name, files[name].read_text(encoding="utf-8"))
    settings = None
    if url or token:
        settings = support / SETTINGS_FILE
        values = {key: value for key, value in (("url", url), ("token", token)) if value}
        _write(settings, json.dumps(values, indent=2) + "\n")
        if os.name == "posix":
            settings.chmod(0o600)  # it may hold the token
    return Installed(entry, support, settings)


def _vendor(support: Path, plugin_package: dict[str, Path]) -> None:
    """``support/``: the plug-in's package and a ``rvm_render/`` tree of the client and the settings loader."""
    tree = support / "rvm_render"
    if tree.exists() and not (tree / "__init__.py").read_text(encoding="utf-8").startswith(VENDORED_INIT[:40]):
        raise FileExistsError(f"'{tree}' exists and is not an rvm_render plug-in install; move it or pick "
                              "another --dest")  # fmt: skip
    for folder in {tree, *(support / name.split("/")[0] for name in plugin_package)}:
        shutil.rmtree(folder, ignore_errors=True)  # ours: the vendored tree and the plug-in's package
    for package in ("", "api", "integrations"):
        _write(tree / package / "__init__.py", VENDORED_INIT)
    _write(tree / "api" / "client.py", Path(api_client.__file__).read_text(encoding="utf-8"))
    for shared in SHARED_MODULES:
        _write(tree / "integrations" / shared, (PACKAGE_DIR / shared).read_text(encoding="utf-8"))
    for name, path in plugin_package.items():
        _write(support / name, path.read_text(encoding="utf-8"))


def _write_own(path: Path, text: str) -> None:
    """Write a file the host runs, refusing to replace one that an earlier install did not write."""
    if path.exists() and "rvm_render" not in path.read_text(encoding="utf-8", errors="replace"):
        raise FileExistsError(f"'{path}' exists and is not the rvm_render plug-in's; move it or pick another --dest")
    _write(path, text)


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole: under a temp name, renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
