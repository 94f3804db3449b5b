"""Hot folders on the repository's own watchfolders/: its READMEs are notes, never jobs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rvm_render.daemon.config import WatchFolder
from rvm_render.daemon.watcher import HotFolders
from rvm_render.jobs.store import JobKind

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_watch_folders_readmes_are_not_taken_as_media(tmp_path: Path) -> None:
    shutil.copytree(REPO / "watchfolders", tmp_path / "watchfolders")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "watchfolders/incoming/README.md", "watchfolders/output/README.md", "watchfolders/timelines/README.md"]
    (tmp_path / "watchfolders" / "incoming" / "take.mov").write_bytes(b"a clip being dropped")
    (tmp_path / "watchfolders" / "incoming" / "notes").mkdir()
    (tmp_path / "watchfolders" / "incoming" / "notes" / "README.md").write_text("a folder of the user's: not ours")
    folders = [WatchFolder(tmp_path / "watchfolders" / name, kind, tmp_path / "watchfolders" / "output")
               for name, kind in (("incoming", JobKind.CLIP), ("timelines", JobKind.TIMELINE))]  # fmt: skip
    ready: list[str] = []
    hot = HotFolders(folders, 0.1, lambda folder, entry: ready.append(entry.relative_to(tmp_path).as_posix()))
    hot.start()
    try:
        for _ in range(5):
            hot.tick()
            time.sleep(0.15)
    finally:
        hot.stop()
    assert sorted(ready) == ["watchfolders/incoming/notes", "watchfolders/incoming/take.mov"]
