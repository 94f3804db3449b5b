"""``rvm-render daemon``: run the render node (hot folders, job queue, HTTP API, status page)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from rvm_render.daemon.config import load_config

__all__ = ["add_parser", "run", "config_path_from", "CONFIG_ENV"]

CONFIG_ENV = "RVM_RENDER_CONFIG"


def config_path_from(args: argparse.Namespace) -> Path:
    """``--config``, else ``$RVM_RENDER_CONFIG``, else ``./config.yaml``."""
    return args.config or Path(os.environ.get(CONFIG_ENV) or "config.yaml")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "daemon",
        help="run the render node: hot folders, a job queue, an HTTP API and a live status page",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Watch the folders of the config (clips and image sequences, and OpenTimelineIO timelines),\n"
            "render what is dropped in them once it is complete, queue jobs sent to the HTTP API, and\n"
            "serve the status page at http://HOST:PORT/. The model stays loaded between jobs. After a\n"
            "crash or kill, starting again resumes unfinished jobs from their last finished segment.\n"
            "SIGTERM or Ctrl-C: stop taking jobs, interrupt the running one (it resumes at the next\n"
            "start), exit 0. Logs: stderr, and JSON lines in STATE_DIR/daemon.log."
        ),
        epilog=(
            "The token of the API and page: api.token in the config, else $RVM_RENDER_TOKEN, else made\n"
            "at the first start in STATE_DIR/token (mode 0600).\n\n"
            "Examples:\n"
            "  rvm-render daemon                       # ./config.yaml: watchfolders/incoming -> watchfolders/output\n"
            "  rvm-render daemon --config /etc/rvm-render/node.yaml"
        ),
    )
    parser.add_argument("--config", type=Path, default=None, metavar="PATH",
                        help="the node's config (default: $RVM_RENDER_CONFIG, else ./config.yaml)")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rvm_render.daemon.service import Daemon  # loaded when it runs: --help starts at once (cli.main)

    config = load_config(config_path_from(args))
    if not args.quiet and not args.verbose:
        logging.getLogger().setLevel(logging.INFO)  # a service reports what it does
    return Daemon(config).run()
