"""Two real daemons (their own state dirs) on one watch folder: one renders it; the other takes over a dead owner's."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import yaml

from support.daemon import DaemonProcess, free_port, running_daemon, wait_for, write_config
from support.frames import short_clip

CLAIM_TIMEOUT_S = 4


def _node_configs(folder: Path) -> tuple[tuple[Path, int], tuple[Path, int]]:
    """Two node configs over the same media/ and watch folders, with their own state dirs and ports."""
    ports = free_port(), free_port()
    first = write_config(folder, port=ports[0])
    config = yaml.safe_load(first.read_text())
    config["claim_timeout_seconds"] = CLAIM_TIMEOUT_S
    first.write_text(yaml.safe_dump(config))
    second = folder / "node-b.yaml"
    second.write_text(yaml.safe_dump({**config, "state_dir": "state-b", "api": {**config["api"], "port": ports[1]}}))
    return (first, ports[0]), (second, ports[1])


def _names(daemon: DaemonProcess) -> list[str]:
    return sorted(Path(job["input"]).name for job in daemon.jobs())


def test_the_second_daemon_refuses_an_owned_watch_folder_and_takes_over_a_dead_owners(
    tmp_path: Path, clips_dir: Path
) -> None:
    (config_a, port_a), (config_b, port_b) = _node_configs(tmp_path)
    incoming = tmp_path / "media" / "incoming"
    with running_daemon(config_a, port_a) as owner, running_daemon(config_b, port_b) as second:
        refusal = next(line for line in second.log.read_text().splitlines() if f"watch folder {incoming} " in line)
        assert f"is owned by the daemon on {socket.gethostname()} (pid {owner.process.pid}, state dir " in refusal
        assert str(tmp_path / "state") in refusal and " since 20" in refusal and "not watched here" in refusal

        short_clip(clips_dir / "05_default_juggle.mp4", incoming / "first.mp4", 3)
        (job,) = wait_for(lambda: owner.jobs(), 60, "the owner to queue first.mp4")
        owner.wait_done(job["id"], 180)
        assert _names(owner) == ["first.mp4"] and _names(second) == []

        os.kill(owner.process.pid, signal.SIGKILL)
        owner.process.wait(timeout=30)
        takeover = wait_for(lambda: [line for line in second.log.read_text().splitlines() if "taking it over" in line
                                     and str(incoming) in line], CLAIM_TIMEOUT_S * 4, "the takeover")  # fmt: skip
        assert f"(pid {owner.process.pid}, " in takeover[0]
        assert f"claim_timeout_seconds ({CLAIM_TIMEOUT_S} s)" in takeover[0]
        short_clip(clips_dir / "05_default_juggle.mp4", incoming / "second.mp4", 3)
        (job,) = wait_for(lambda: [j for j in second.jobs() if j["input"].endswith("second.mp4")], 60, "second.mp4")
        second.wait_done(job["id"], 180)
