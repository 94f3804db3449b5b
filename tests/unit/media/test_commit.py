"""Temp names in the target folder, atomic rename, overwrite refusal, clean abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvm_render.errors import OutputExistsError
from rvm_render.media import MediaInfo
from rvm_render.media.commit import PartialFile, PartialSequence, write_bytes_atomically
from rvm_render.media.writers import OutputFormat, open_writer


def test_partial_file_is_hidden_then_renamed(tmp_path: Path) -> None:
    final = tmp_path / "out.mov"
    partial = PartialFile(final, overwrite=False)
    assert partial.path.parent == tmp_path and partial.path.name.startswith(".")
    partial.path.write_bytes(b"x")
    assert not final.exists()
    assert partial.commit() == final and final.read_bytes() == b"x" and not partial.path.exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    final = tmp_path / "out.mov"
    final.write_bytes(b"old")
    with pytest.raises(OutputExistsError) as err:
        PartialFile(final, overwrite=False)
    assert str(final) in str(err.value) and "--overwrite" in str(err.value)
    partial = PartialFile(final, overwrite=True)
    partial.path.write_bytes(b"new")
    partial.commit()
    assert final.read_bytes() == b"new"


def test_file_appearing_during_render_is_not_clobbered(tmp_path: Path) -> None:
    final = tmp_path / "out.mov"
    partial = PartialFile(final, overwrite=False)
    partial.path.write_bytes(b"new")
    final.write_bytes(b"someone else's")
    with pytest.raises(OutputExistsError):
        partial.commit()
    assert final.read_bytes() == b"someone else's"


def test_sequence_refuses_any_existing_frame(tmp_path: Path) -> None:
    (tmp_path / "shot.000007.exr").write_bytes(b"old")
    with pytest.raises(OutputExistsError) as err:
        PartialSequence(tmp_path / "shot.%06d.exr", overwrite=False)
    assert "shot.000007.exr" in str(err.value)


def test_sequence_commit_and_abort(tmp_path: Path) -> None:
    seq = PartialSequence(tmp_path / "shot.%06d.png", overwrite=False)
    for number in (1, 2):
        seq.path_for(number).write_bytes(b"p")
    assert sorted(p.name for p in tmp_path.iterdir()) == [seq.folder.name]
    seq.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.000001.png", "shot.000002.png"]
    other = PartialSequence(tmp_path / "take.%06d.png", overwrite=False)
    other.path_for(5).write_bytes(b"p")
    other.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.000001.png", "shot.000002.png"]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_writer_abort_leaves_nothing(fmt: OutputFormat, dog_info: MediaInfo, dog_frames: list, tmp_path: Path) -> None:
    writer = open_writer(fmt, tmp_path, "dog", dog_info)
    for index, fgr, pha in dog_frames[:3]:
        writer.write(index, fgr, pha)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_writer_refuses_existing_output(
    fmt: OutputFormat, dog_info: MediaInfo, dog_frames: list, tmp_path: Path
) -> None:
    writer = open_writer(fmt, tmp_path, "dog", dog_info)
    index, fgr, pha = dog_frames[0]
    writer.write(index, fgr, pha)
    written = writer.close()
    with pytest.raises(OutputExistsError) as err:
        open_writer(fmt, tmp_path, "dog", dog_info)
    assert "--overwrite" in str(err.value)
    again = open_writer(fmt, tmp_path, "dog", dog_info, overwrite=True)
    again.write(index, fgr, pha)
    assert again.close().path == written.path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_bytes_atomically(tmp_path: Path) -> None:
    path = tmp_path / "clip.rvm.json"
    write_bytes_atomically(path, b"one")
    write_bytes_atomically(path, b"two")
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(OutputExistsError):
        write_bytes_atomically(path, b"three", overwrite=False)


def test_linked_sequence_appears_whole_and_keeps_its_sources(tmp_path: Path) -> None:
    from rvm_render.media.commit import link_sequence_into_place

    sources = {}
    for number in (7, 8, 9):
        source = tmp_path / "work" / f"shot.{number:04d}.exr"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(f"frame {number}".encode())
        sources[number] = source
    pattern = tmp_path / "out" / "shot.%04d.exr"
    finals = link_sequence_into_place(sources, pattern, overwrite=False)
    assert [p.read_bytes() for p in finals] == [s.read_bytes() for s in sources.values()]
    assert all(s.exists() for s in sources.values())
    assert sorted(p.name for p in pattern.parent.iterdir()) == [p.name for p in finals]
    with pytest.raises(OutputExistsError):
        link_sequence_into_place(sources, pattern, overwrite=False)
    assert sorted(p.name for p in pattern.parent.iterdir()) == [p.name for p in finals]
