"""What both editor plug-ins read: the installer's ``settings.json``, then the environment over it.

The installer (:mod:`rvm_render.integrations.install`) writes ``settings.json`` into the plug-in's
folder, beside the vendored ``rvm_render/`` tree this module lives in. ``RVM_RENDER_URL``,
``RVM_RENDER_TOKEN`` and ``RVM_RENDER_OUTPUT_DIR`` win over it. Mattes go, unless told otherwise,
into ``rvm_mattes/`` beside the source media.
"""

from __future__ import annotations

import json
import os
from typing import Any

from rvm_render.api.client import TOKEN_ENV, URL_ENV

__all__ = ["SETTINGS_FILE", "SETTINGS_PATH", "OUTPUT_DIR_ENV", "MATTE_FOLDER", "plugin_settings", "matte_folder_beside"]

SETTINGS_FILE = "settings.json"
#: ``<plug-in folder>/rvm_render/integrations/`` is where this module is installed.
SETTINGS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", SETTINGS_FILE)
OUTPUT_DIR_ENV = "RVM_RENDER_OUTPUT_DIR"
MATTE_FOLDER = "rvm_mattes"
_ENVIRONMENT = (("url", URL_ENV), ("token", TOKEN_ENV), ("output_dir", OUTPUT_DIR_ENV))


def plugin_settings(path: str) -> dict[str, Any]:
    """The settings file's values (none when it is missing), with the environment's over them.

    Raises:
        OSError, ValueError: the file cannot be read or is not a JSON object.
    """
    values: dict[str, Any] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
        if not isinstance(values, dict):
            raise ValueError(f"{os.path.normpath(path)} holds no JSON object")
    for name, variable in _ENVIRONMENT:
        if os.environ.get(variable, "").strip():
            values[name] = os.environ[variable].strip()
    return values


def matte_folder_beside(media_path: str) -> str:
    """The default output folder of a source: ``rvm_mattes/`` in its folder."""
    return os.path.join(os.path.dirname(media_path), MATTE_FOLDER)
