"""Fixtures of the integration tests that need a running render node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.daemon import DaemonProcess, free_port, running_daemon, write_config


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A real daemon on a temp config (:func:`~support.daemon.write_config`), shared by a module's tests."""
    folder = tmp_path_factory.mktemp("node")
    port = free_port()
    with running_daemon(write_config(folder, port=port), port) as daemon:
        yield daemon
