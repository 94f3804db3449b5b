"""``python -m rvm_render.integrations install resolve|nuke``: put an editor plug-in where its host finds it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rvm_render.api.client import TOKEN_ENV, URL_ENV
from rvm_render.integrations.install import HOSTS, SETTINGS_FILE, install, nuke_plugin_dir, resolve_scripts_dir

NEXT_STEPS = {
    "resolve": "In Resolve open the timeline to matte and choose Workspace > Scripts > RVM Render Matte.",
    "nuke": "Add the folder to NUKE_PATH (or put nuke.pluginAddPath({folder!r}) in ~/.nuke/init.py), restart Nuke, "
            "select Read nodes and choose Render > RVM Render > Matte selected Reads.",
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rvm_render.integrations",
        description="Install the DaVinci Resolve or Nuke plug-in of rvm-render for this user.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = commands.add_parser("install", help="copy a plug-in and the API client where the host finds them")
    command.add_argument("host", choices=HOSTS, help="the editor")
    command.add_argument("--dest", type=Path, default=None, metavar="DIR",
                         help=f"resolve: the Fusion Scripts folder (default: {resolve_scripts_dir()}); "
                              f"nuke: the plug-in folder (default: {nuke_plugin_dir()})")  # fmt: skip
    command.add_argument("--url", default=None, help=f"the daemon's URL, saved in {SETTINGS_FILE} "
                                                     f"(default at run time: ${URL_ENV}, else http://127.0.0.1:8765)")
    command.add_argument("--token", default=None, help=f"the daemon's API token, saved in {SETTINGS_FILE} "
                                                       f"(default at run time: ${TOKEN_ENV})")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        installed = install(args.host, args.dest, url=args.url, token=args.token)
    except (FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"installed the {args.host} plug-in: {installed.entry}")
    print(f"support files: {installed.support_dir}")
    if installed.settings is not None:
        print(f"daemon settings: {installed.settings} (${URL_ENV}/${TOKEN_ENV} override them)")
    else:
        print(f"daemon settings: set ${URL_ENV} and ${TOKEN_ENV} for the editor, or install again with --url/--token")
    print(NEXT_STEPS[args.host].format(folder=str(installed.support_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
