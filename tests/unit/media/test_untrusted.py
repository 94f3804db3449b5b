"""Untrusted parses in a child process: the result or the error comes back; a crash, a hang or a
runaway allocation is one UntrustedFileError, and the caller lives on."""

from __future__ import annotations

import faulthandler
import os
import time
from pathlib import Path

import pytest

from rvm_render.errors import UnreadableMediaError
from rvm_render.media.probe import probe
from rvm_render.media.untrusted import ParseLimits, UntrustedFileError, parse_untrusted


def test_a_parse_returns_what_it_returns_in_process(clips_dir: Path) -> None:
    clip = clips_dir / "bedroom.mp4"
    assert parse_untrusted(probe, clip, what="clip") == probe(clip)


def test_the_parse_s_own_error_comes_back_as_itself(tmp_path: Path) -> None:
    with pytest.raises(UnreadableMediaError, match="no such file") as raised:
        parse_untrusted(probe, tmp_path / "missing.mp4", what="clip")
    assert type(raised.value) is UnreadableMediaError


def test_a_crash_in_the_child_names_the_file_and_the_signal() -> None:
    with pytest.raises(UntrustedFileError, match=r"^timeline 'x\.otio': the reader crashed \(SIGSEGV\)"):
        parse_untrusted(faulthandler._sigsegv, what="timeline 'x.otio'")


def test_a_parse_that_never_answers_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.mp4")
    started = time.monotonic()
    with pytest.raises(UntrustedFileError, match="took longer than 1 s"):
        parse_untrusted(probe, tmp_path / "pipe.mp4", what="clip", limits=ParseLimits(timeout_s=1))
    assert time.monotonic() - started < 10


def test_a_parse_over_the_memory_limit_fails_naming_it() -> None:
    with pytest.raises(UntrustedFileError, match=r"the reader failed on it \(MemoryError"):
        parse_untrusted(bytearray, 8 << 30, what="clip", limits=ParseLimits(memory_bytes=2 << 30))
