"""The render daemon's overhead against ``rvm-render matte`` on the same 20 files, measured in one run.

    python bench/daemon_overhead.py [--shared DIR] [--rounds N] [--frames N]

Each round, in turn:
  (a) ``rvm-render -q matte`` of the 20 files, process start to exit (model load included);
  (b) the same 20 files dropped at once into the hot folder of an ``rvm-render daemon`` that is
      already running (model loaded), from the drop to the last job done, and from the drop to
      the first finished segment (its checkpoint in the state dir).
Both render the same deliverables with the same settings (EXR, ratio 0.25, 8-frame segments,
CPU). The daemon waits ``settle_seconds`` before it takes a file; that wait is reported, and the
overhead is printed with and without it. The files are the first --frames frames of the shared
``bedroom.mp4``, remuxed (no re-encode).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import av
import yaml

FILES = 20
SETTLE_S = 1.0
SEGMENT_FRAMES = 8
RATIO = "0.25"
RVM_RENDER = str(Path(sys.executable).with_name("rvm-render"))


def remuxed(source: Path, target: Path, frames: int) -> Path:
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        for copied, packet in enumerate(p for p in inp.demux(inp.streams.video[0]) if p.size):
            if copied == frames:
                break
            packet.stream = video
            out.mux(packet)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def matte_seconds(files: list[Path], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([RVM_RENDER, "-q", "matte", *map(str, files), "-o", str(out), "--formats", "exr",
                    "--downsample-ratio", RATIO, "--segment-frames", str(SEGMENT_FRAMES), "--device", "cpu"],
                   check=True)  # fmt: skip
    return time.perf_counter() - started


class Node:
    """A running daemon on a temp config whose hot folder is ``incoming``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.token = "bench-token"
        config = {
            "state_dir": "state", "media_roots": ["media"], "settle_seconds": SETTLE_S, "device": "cpu",
            "api": {"port": self.port, "token": self.token},
            "preset": {"formats": ["exr"], "downsample_ratio": float(RATIO), "segment_frames": SEGMENT_FRAMES},
            "watch": [{"path": "media/incoming", "kind": "clip", "output": "media/output"}],
        }  # fmt: skip
        (folder / "media").mkdir(parents=True)
        (folder / "node.yaml").write_text(yaml.safe_dump(config))
        self.process = subprocess.Popen([RVM_RENDER, "-q", "daemon", "--config", str(folder / "node.yaml")])
        self._wait(lambda: self._get("/health") is not None, 180)

    def _get(self, path: str) -> object:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            return None

    @staticmethod
    def _wait(condition: object, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit("the daemon did not get there in time")
            time.sleep(0.02)

    def drop(self, files: list[Path]) -> tuple[float, float]:
        """Copy ``files`` into the hot folder at once; (seconds to the last job done, to the first segment)."""
        incoming = self.folder / "media" / "incoming"
        before = {job["id"] for job in self._get("/jobs") or []}  # type: ignore[union-attr]
        started = time.perf_counter()
        for file in files:
            shutil.copy(file, incoming / file.name)
        first_segment = None
        while True:
            if first_segment is None and any((self.folder / "state" / "work").glob("*/*/segment-*.done.json")):
                first_segment = time.perf_counter() - started
            jobs = [job for job in self._get("/jobs") or [] if job["id"] not in before]  # type: ignore[union-attr]
            if len(jobs) == len(files) and all(job["state"] in ("done", "failed") for job in jobs):
                if any(job["state"] == "failed" for job in jobs):
                    raise SystemExit(f"a job failed: {[j['error'] for j in jobs if j['error']]}")
                return time.perf_counter() - started, first_segment or float("nan")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=os.environ.get("RVM_RENDER_SHARED"),
                        help="shared data folder (default: $RVM_RENDER_SHARED)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the two in turn (default 2)")
    parser.add_argument("--frames", type=int, default=24, help="frames of each file (default 24)")
    args = parser.parse_args()
    if args.shared is None:
        parser.error("pass --shared DIR or set RVM_RENDER_SHARED")
    work = Path(tempfile.mkdtemp(prefix="rvm-bench-daemon-"))
    try:
        node = Node(work / "node")
        matte_runs, daemon_runs, first_segments = [], [], []
        for round_index in range(args.rounds):
            files = [remuxed(args.shared / "testdata/clips/bedroom.mp4", work / f"r{round_index}_{n:02d}.mp4",
                             args.frames) for n in range(FILES)]  # fmt: skip
            matte_runs.append(matte_seconds(files, work / f"matte{round_index}"))
            total, first = node.drop(files)
            daemon_runs.append(total)
            first_segments.append(first)
        node.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    matte_s, daemon_s = statistics.median(matte_runs), statistics.median(daemon_runs)
    print(f"{FILES} files x {args.frames} frames of bedroom.mp4 (960x540), EXR, ratio {RATIO}, "
          f"{SEGMENT_FRAMES}-frame segments, CPU; {args.rounds} rounds, the two in turn")  # fmt: skip
    print(f"rvm-render matte, start to exit (s)                 {', '.join(f'{s:.1f}' for s in matte_runs)}")
    print(f"daemon, drop to last job done (s)                   {', '.join(f'{s:.1f}' for s in daemon_runs)}")
    print(f"daemon, drop to first finished segment (s)          {', '.join(f'{s:.2f}' for s in first_segments)}")
    print(f"daemon settle_seconds (waited before taking a file)  {SETTLE_S:.1f}")
    print(f"daemon / matte, median                              {daemon_s / matte_s:6.3f}x "
          f"(overhead {100 * (daemon_s / matte_s - 1):+.1f} %, goal under +5 %)")  # fmt: skip
    print(f"daemon without the settle wait / matte              {(daemon_s - SETTLE_S) / matte_s:6.3f}x")


if __name__ == "__main__":
    main()
