"""Numbered-frame file names as printf patterns: ``shot.%04d.exr``, ``%%`` for a literal ``%``.

Image sequences (inputs and the EXR/PNG deliverables) are named by a printf pattern with one
frame field (``%d`` or ``%0Nd``), as FFmpeg, Nuke and OpenImageIO write them; ``pattern % 1001``
names frame 1001. A ``%`` that belongs to the name itself is written ``%%`` (``take 100%%.%04d.png``),
so the pattern formats to the real file name. Input patterns may also use ``####`` (the last run
of ``#`` is the field, as Nuke reads it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["FrameField", "frame_field", "escaped", "unescaped", "hashes_as_printf", "file_name_regex"]

# A run of %% escapes, then either another escape or a conversion: scanning left to right this
# way never mistakes the second % of an escape for the start of a field.
_PERCENT_RE: Final = re.compile(r"%(%|0?(\d*)d)")
_HASHES_RE: Final = re.compile(r"#+")


@dataclass(frozen=True, slots=True)
class FrameField:
    """Where the frame number goes in a pattern: ``name[start:end]`` is ``%d`` or ``%0Nd``."""

    start: int
    end: int
    width: int
    """Digits the number is padded to (0: unpadded)."""

    def prefix(self, name: str) -> str:
        """The literal text before the field (escapes undone)."""
        return unescaped(name[: self.start])

    def suffix(self, name: str) -> str:
        """The literal text after the field (escapes undone)."""
        return unescaped(name[self.end :])


def frame_field(name: str) -> FrameField | None:
    """The printf frame field of a file name, or None when it has none (``%%`` is not a field).

    A name with more than one field is not a pattern this project reads; the first is taken.
    """
    for match in _PERCENT_RE.finditer(name):
        if match.group(1) != "%":
            digits = match.group(2)
            padded = match.group(1).startswith("0")
            return FrameField(match.start(), match.end(), int(digits) if digits and padded else 0)
    return None


def escaped(text: str) -> str:
    """``text`` with every ``%`` doubled, to put a literal name into a pattern."""
    return text.replace("%", "%%")


def unescaped(text: str) -> str:
    """A pattern fragment without a field, as the literal text it formats to."""
    return text.replace("%%", "%")


def hashes_as_printf(name: str) -> str | None:
    """``shot.####.png`` -> ``shot.%04d.png`` (the last run of ``#``, rest escaped); None without ``#``."""
    runs = list(_HASHES_RE.finditer(name))
    if not runs:
        return None
    last = runs[-1]
    return f"{escaped(name[: last.start()])}%0{len(last.group())}d{escaped(name[last.end() :])}"


def file_name_regex(name: str, field: FrameField) -> re.Pattern[str]:
    """A regex matching the file names of a pattern; group 1 is the frame number's digits.

    A padded field matches exactly ``width`` digits, an unpadded one any number of digits.
    """
    digits = rf"\d{{{field.width}}}" if field.width else r"\d+"
    return re.compile(re.escape(field.prefix(name)) + f"({digits})" + re.escape(field.suffix(name)) + r"\Z")
