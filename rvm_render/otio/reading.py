"""Reading and writing editors' timelines through OpenTimelineIO and its adapter plug-ins.

``.otio``, ``.otioz`` and ``.otiod`` are read by OpenTimelineIO itself; Premiere/FCP7 XML and
FCPXML need the adapter plug-ins of the ``editorial`` extra (``otio-fcp-adapter``,
``otio-fcpx-xml-adapter``). A file that cannot be used as a timeline is one
:class:`~rvm_render.errors.TimelineError` naming the file, the reason and the fix. Writes go
through :func:`~rvm_render.media.commit.write_bytes_atomically`-style temp names: a reader never
sees half a timeline.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import opentimelineio as otio

from rvm_render.errors import TimelineError
from rvm_render.media.commit import PartialFile, writing_to

__all__ = [
    "ReadTimeline",
    "read_timeline",
    "check_timeline",
    "write_timeline",
    "same_format_name",
    "EDITORIAL_EXTRA",
    "NATIVE_ADAPTERS",
]

#: The pip extra that brings the XML adapters.
EDITORIAL_EXTRA = "rvm-render[editorial]"
#: OpenTimelineIO's own formats (no plug-in needed).
NATIVE_ADAPTERS = frozenset({"otio_json", "otioz", "otiod"})


@dataclass(frozen=True, slots=True)
class ReadTimeline:
    """A timeline as read: the timeline, the adapter that read it, and the folder its relative paths start from."""

    timeline: otio.schema.Timeline
    adapter: str
    media_root: Path


def _adapter_name(path: Path) -> str:
    try:
        return otio.adapters.from_filepath(str(path)).name
    except Exception as err:  # NoKnownAdapterForExtensionError and friends
        raise TimelineError(
            f"cannot read timeline '{path}': no OpenTimelineIO adapter reads '{path.suffix}' files; export .otio "
            f"from your editor, or pip install '{EDITORIAL_EXTRA}' for Premiere/FCP XML and FCPXML"
        ) from err


def read_timeline(path: Path, *, bundle_media_dir: Path | None = None) -> ReadTimeline:
    """Read ``path`` as an editorial timeline.

    Args:
        path: ``.otio``, ``.otiod`` (a folder), ``.otioz``, or any format an installed adapter reads.
        bundle_media_dir: where an ``.otioz`` bundle's media is extracted (its references then
            point there); required for ``.otioz``.

    Raises:
        TimelineError: missing, unreadable, malformed, of an unknown schema version, or not a
            timeline (e.g. a bare clip), naming the file and the fix.
    """
    if not path.exists():
        raise TimelineError(f"cannot read timeline '{path}': no such file; check the path")
    adapter = _adapter_name(path)
    options: dict[str, object] = {}
    media_root = path if path.is_dir() else path.parent
    if adapter == "otioz":
        if bundle_media_dir is None:
            raise ValueError("reading an .otioz bundle needs bundle_media_dir")
        with writing_to(bundle_media_dir):
            bundle_media_dir.mkdir(parents=True, exist_ok=True)
        options["extract_to_directory"] = str(bundle_media_dir)
        media_root = bundle_media_dir
    try:
        result = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except otio.exceptions.UnsupportedSchemaError as err:
        raise TimelineError(
            f"cannot read timeline '{path}': a schema version this OpenTimelineIO ({otio.__version__}) does not "
            f"know ({err}); upgrade opentimelineio or export for an older version"
        ) from err
    except Exception as err:  # adapters raise anything from ValueError to XML parse errors
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TimelineError(f"cannot read timeline '{path}': {reason}; re-export it from your editor") from err
    if not isinstance(result, otio.schema.Timeline):
        kind = getattr(result, "schema_name", lambda: type(result).__name__)()
        raise TimelineError(
            f"cannot read timeline '{path}': it holds a {kind}, not a Timeline; export the whole timeline"
        )
    for where, time in _times(result):
        if not (math.isfinite(time.rate) and time.rate > 0):
            raise TimelineError(f"cannot read timeline '{path}': {where} has rate {time.rate:g}; every time needs "
                                "a frame rate above 0: re-export it from your editor")  # fmt: skip
    return ReadTimeline(result, adapter, media_root)


def check_timeline(path: Path) -> None:
    """Read ``path`` whole as :func:`read_timeline` does (an ``.otioz`` unpacked to a temp folder), keeping nothing.

    Module-level, so :func:`~rvm_render.media.untrusted.parse_untrusted` can run it in a child.

    Raises:
        TimelineError: as :func:`read_timeline`.
    """
    with tempfile.TemporaryDirectory(prefix="rvm-render-check-") as unpacked:
        read_timeline(path, bundle_media_dir=Path(unpacked))


def _times(timeline: otio.schema.Timeline) -> Iterator[tuple[str, otio.opentime.RationalTime]]:
    """Every time of the edit that frames are computed from, with where it is (``clip 'A' source_range``)."""
    if timeline.global_start_time is not None:
        yield "the timeline's global_start_time", timeline.global_start_time
    for item in timeline.find_children():
        where = f"{item.schema_name()} '{item.name}'"
        if isinstance(item, otio.schema.Transition):
            yield f"{where} in_offset", item.in_offset
            yield f"{where} out_offset", item.out_offset
            continue
        if item.source_range is not None:
            yield f"{where} source_range", item.source_range.start_time
            yield f"{where} source_range", item.source_range.duration
        reference = getattr(item, "media_reference", None)
        if reference is not None and reference.available_range is not None:
            yield f"{where} available_range", reference.available_range.start_time
            yield f"{where} available_range", reference.available_range.duration
        if isinstance(reference, otio.schema.ImageSequenceReference):
            yield f"{where} media_reference", otio.opentime.RationalTime(reference.start_frame, reference.rate)


def write_timeline(timeline: otio.schema.Timeline, path: Path, *, adapter: str = "otio_json") -> Path:
    """Write ``timeline`` with ``adapter`` under a temp name and rename it into place (replacing).

    Raises:
        OutputError: the file cannot be written.
    """
    partial = PartialFile(path, overwrite=True)
    try:
        with writing_to(path):
            otio.adapters.write_to_file(timeline, str(partial.path), adapter_name=adapter)
        return partial.commit()
    except BaseException:
        partial.abort()
        raise


def same_format_name(read: ReadTimeline, path: Path) -> str | None:
    """``<stem>.rvm<ext>``: the name of the copy written back in the input's own format, for a
    timeline read by a plug-in adapter (XML, FCPXML); None for OpenTimelineIO's own formats."""
    if read.adapter in NATIVE_ADAPTERS:
        return None
    return f"{path.stem}.rvm{path.suffix}"

