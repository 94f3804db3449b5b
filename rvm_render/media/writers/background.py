"""What the composite deliverable puts behind the subject: a colour, an image, or a video."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from rvm_render.errors import ConfigError

__all__ = ["Background", "parse_background", "is_colour", "COLOUR_NAMES"]

#: Named colours (R'G'B' 0..1); greens and blues are the usual keying references.
COLOUR_NAMES: Final[dict[str, tuple[float, float, float]]] = {
    "black": (0.0, 0.0, 0.0),
    "white": (1.0, 1.0, 1.0),
    "grey": (0.5, 0.5, 0.5),
    "gray": (0.5, 0.5, 0.5),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
}
_HEX_RE: Final = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp"})


@dataclass(frozen=True, slots=True)
class Background:
    """A flat ``colour`` (R'G'B' 0..1), or an ``image`` / ``video`` file scaled to the frame."""

    kind: Literal["colour", "image", "video"]
    colour: tuple[float, float, float] = (0.0, 0.0, 0.0)
    path: Path | None = None


def is_colour(text: str) -> bool:
    """Whether ``text`` reads as a colour (a name, ``#rgb``, ``#rrggbb``) without looking at any file.

    A caller that limits which files may be read checks every other background as a path first.
    """
    value = text.strip()
    return value.lower() in COLOUR_NAMES or (value.startswith("#") and _HEX_RE.match(value) is not None)


def parse_background(text: str, setting: str = "--background") -> Background:
    """Background from a colour name, ``#rgb``/``#rrggbb``, or a path to an image or video.

    Raises:
        ConfigError: neither a known colour nor an existing file, naming ``setting`` (the flag or config key).
    """
    value = text.strip()
    if value.lower() in COLOUR_NAMES:
        return Background(kind="colour", colour=COLOUR_NAMES[value.lower()])
    match = _HEX_RE.match(value)
    if match and (value.startswith("#") or not os.path.exists(value)):
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        rgb = tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
        return Background(kind="colour", colour=rgb)  # type: ignore[arg-type]
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"background '{text}': not a colour name ({', '.join(sorted(COLOUR_NAMES))}), "
            f"#rrggbb, or an existing image/video file; fix {setting}"
        )
    kind: Literal["image", "video"] = "image" if path.suffix.lower() in _IMAGE_SUFFIXES else "video"
    return Background(kind=kind, path=path)
