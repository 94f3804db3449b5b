"""Untrusted files are parsed where a crash cannot take the caller down: a child process with limits.

A render node reads whatever users drop or post: an OpenTimelineIO document nested 200,000
levels deep overflows the C++ reader's stack (a segfault, no Python exception), a FIFO or a
stalled share blocks a probe forever, a crafted file can make a demuxer allocate without end.
:func:`parse_untrusted` runs one parse function in a child process (forked from a fork server,
so the caller's threads are not copied) with an address-space limit and a timeout. The caller
gets the function's return value, or the :class:`RvmRenderError` it raised; anything else (a
child that dies, overruns, runs out of memory or raises another exception) is one
:class:`UntrustedFileError` naming the file.

Only the check runs in the child: its result must pickle (a ``MediaInfo`` does; an OTIO
timeline does not, so timelines are *checked* in the child and then read by the caller).
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from rvm_render.errors import RvmRenderError, UnreadableMediaError

__all__ = ["ParseLimits", "UntrustedFileError", "parse_untrusted", "preload_parsers"]

_T = TypeVar("_T")
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__])


class UntrustedFileError(UnreadableMediaError):
    """The child parsing a file crashed, ran out of memory or time: the file cannot be used."""


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one parse may use.

    ``timeout_s``: a probe counts a clip's packets by demuxing; two hours of ProRes on a share
    take well under a minute, so two minutes only cut off a file that never answers.
    ``memory_bytes``: the child's address space; the parsers need a few hundred MiB.
    """

    timeout_s: float = 120.0
    memory_bytes: int = 4 << 30


def preload_parsers(*parsers: Callable[..., Any]) -> None:
    """Import the parsers' modules once, in the fork server, before its first child.

    Each child then starts in milliseconds instead of importing PyAV and OpenTimelineIO again
    (about 2 s on a busy CPU). Without it nothing but the parse module is preloaded (not the
    caller's ``__main__``, which may import torch).
    """
    _CONTEXT.set_forkserver_preload(sorted({__name__, *(parser.__module__ for parser in parsers)}))


def _run_limited(sending: Connection, memory_bytes: int, parse: Callable[..., Any], args: tuple[Any, ...]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash on a hostile file leaves no core dump
    outcome: tuple[str, Any]
    try:
        outcome = ("result", parse(*args))
    except RvmRenderError as err:  # the caller re-raises it
        outcome = ("error", err)
    except Exception as err:  # MemoryError under the limit, RecursionError, a reader's bug
        outcome = ("failure", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": "))
    sending.send(outcome)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"crashed ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def parse_untrusted(parse: Callable[..., _T], *args: Any, what: str, limits: ParseLimits = ParseLimits()) -> _T:
    """``parse(*args)`` run in a child process under ``limits``.

    Args:
        parse: a module-level function (the child imports it by name); its result must pickle.
        what: the file, as the error names it (``clip '/media/a.mov'``).

    Raises:
        Whatever ``parse`` raised; UntrustedFileError: the child crashed, ran out of memory or
            took longer than ``limits.timeout_s``.
    """
    receiving, sending = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_run_limited, args=(sending, limits.memory_bytes, parse, args), daemon=True)
    try:
        child.start()
        sending.close()
        if not receiving.poll(limits.timeout_s):
            raise UntrustedFileError(f"{what}: reading it took longer than {limits.timeout_s:.0f} s (a pipe, a "
                                     "device or a stalled share?); copy it into place as a regular file")  # fmt: skip
        try:
            kind, value = receiving.recv()
        except EOFError:
            child.join()
            raise UntrustedFileError(
                f"{what}: the reader {_death(child.exitcode)} on it (malformed, nested too deep or too large); "
                "re-export it from the application that made it"
            ) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiving.close()
    if kind == "error":
        raise value
    if kind == "failure":
        raise UntrustedFileError(f"{what}: the reader failed on it ({value}); re-export it from the application "
                                 "that made it")  # fmt: skip
    return value  # type: ignore[no-any-return]
