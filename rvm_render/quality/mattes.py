"""Mattes to score: alpha planes of movies, image and EXR sequences, stills and manifests, as float32 0..1.

A matte is read from what carries it: a movie, an image or EXR (or a numbered sequence of them),
decoded by :mod:`rvm_render.media.mattes` (alpha plane or channel ``A``, else a grey matte), or a
manifest ``<stem>.rvm.json``: the best matte it lists (:data:`MATTE_FORMATS`: EXR, then ProRes
4444, PNG, the grey ``alpha`` movie).

Sequences follow the media layer's rules (:func:`rvm_render.media.probe.probe`): ``shot.%04d.exr``,
``shot.####.exr`` or any one frame. A numbered image whose siblings do not form one contiguous
run (``take_0.png``, ``take_7.png``) is a still on its own.

A folder of clips (:func:`clips_in_folder`) pairs with another by clip name (:func:`matte_pairs`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from rvm_render.errors import ConfigError, MediaError, UnreadableMediaError
from rvm_render.media.mattes import image_matte, movie_mattes
from rvm_render.media.probe import IMAGE_EXTENSIONS, probe, sequence_frame_path
from rvm_render.quality.metrics import FIRST_FRAMES, ClipScores, clip_scores

log = logging.getLogger(__name__)

__all__ = [
    "MatteClip",
    "MATTE_FORMATS",
    "MOVIE_EXTENSIONS",
    "MANIFEST_SUFFIX",
    "open_matte",
    "matte_frames",
    "clips_in_folder",
    "matte_pairs",
    "pair_scores",
]

#: Manifest outputs that carry a matte, best first (half-float EXR is the most precise).
MATTE_FORMATS: Final = ("exr", "prores4444", "png", "alpha")
#: File extensions taken as movies when a folder is scanned (a named file is always tried).
MOVIE_EXTENSIONS: Final = frozenset({".mov", ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mxf"})
#: The manifest's file-name suffix (:mod:`rvm_render.pipeline.manifest`).
MANIFEST_SUFFIX: Final = ".rvm.json"

_NUMBERED_RE: Final = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class MatteClip:
    """One clip's matte, ready to read.

    Args:
        name: what reports and folder pairing call it (a manifest's stem, a file's stem).
        path: what was named: manifest, movie, sequence pattern or image.
        source: the movie, or the sequence pattern, the frames are read from.
        frame_files: one image per frame, in order; empty for a movie.
        frames, width, height: the matte's frame count and size.
    """

    name: str
    path: Path
    source: Path
    frame_files: tuple[Path, ...]
    frames: int
    width: int
    height: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


# --- opening ------------------------------------------------------------------------------


def open_matte(path: str | Path, name: str | None = None) -> MatteClip:
    """Find the matte ``path`` names and describe it (frames, size); only a still is decoded here.

    Args:
        path: manifest, movie, sequence pattern, one frame of a sequence, or a still image.
        name: the clip's name in reports; default: the manifest's stem or the file's stem.

    Raises:
        UnreadableMediaError: missing, unreadable, or a manifest that lists no matte.
    """
    path = Path(path)
    if path.name.endswith(MANIFEST_SUFFIX):
        return _manifest_matte(path, name)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and _is_still(path):
        width, height = image_matte(path).shape[::-1]
        return MatteClip(name or path.stem, path, path, (path,), 1, width, height)
    info = probe(path)
    if info.is_sequence:
        files = tuple(sequence_frame_path(info, i) for i in range(info.frames))
        default = _sequence_name(info.path) if len(files) > 1 else files[0].stem
    else:
        files, default = (), path.stem
    return MatteClip(name or default, path, info.path, files, info.frames, info.width, info.height)


def _manifest_matte(path: Path, name: str | None) -> MatteClip:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        outputs = {str(entry["format"]): Path(entry["path"]) for entry in document["outputs"]}
    except FileNotFoundError:
        raise UnreadableMediaError(f"cannot read '{path}': no such file; check the path") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = f"no {err} field" if isinstance(err, KeyError) else str(err)
        raise UnreadableMediaError(
            f"cannot read manifest '{path}': {reason}; pass an .rvm.json written by rvm-render, or the matte itself"
        ) from err
    for fmt in MATTE_FORMATS:
        if fmt in outputs:
            clip = open_matte(outputs[fmt], name or path.name[: -len(MANIFEST_SUFFIX)])
            log.debug("manifest '%s': scoring its %s matte '%s'", path, fmt, outputs[fmt])
            return MatteClip(clip.name, path, clip.source, clip.frame_files, clip.frames, clip.width, clip.height)
    listed = ", ".join(sorted(outputs)) or "none"
    raise UnreadableMediaError(
        f"manifest '{path}' lists no matte (outputs: {listed}); render with --formats exr (or prores4444, png, alpha)"
    )


def _numbered_siblings(path: Path) -> list[tuple[int, Path]]:
    """(number, file) of every file named like ``path`` with another number, sorted; [] if unnumbered."""
    match = _NUMBERED_RE.match(path.name)
    if match is None:
        return []
    prefix, _, suffix = match.groups()
    regex = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"\Z")
    found = [(int(m.group(1)), path.parent / m.group(0)) for m in map(regex.match, _names_in(path.parent)) if m]
    return sorted(found)


def _names_in(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except OSError as err:
        raise UnreadableMediaError(f"cannot read folder '{folder}': {err.strerror}; check the path") from err


def _forms_sequence(numbers: list[int]) -> bool:
    """More than one number and no gap: a sequence; anything else is a set of stills."""
    return len(numbers) > 1 and numbers[-1] - numbers[0] + 1 == len(numbers)


def _is_still(path: Path) -> bool:
    return not _forms_sequence([number for number, _ in _numbered_siblings(path)])


def _sequence_name(pattern: Path) -> str:
    """``take_matte.%06d.exr`` -> ``take_matte``; a bare ``%04d.png`` takes its folder's name."""
    prefix = re.split(r"%0?\d*d|#+", pattern.name, maxsplit=1)[0]
    return prefix.replace("%%", "%").rstrip("._-") or pattern.parent.name


# --- reading ------------------------------------------------------------------------------


def matte_frames(clip: MatteClip) -> Iterator[np.ndarray]:
    """The clip's matte frame by frame.

    Shape:
        -> each [H, W] float32 0..1

    Raises:
        UnreadableMediaError: a frame is missing, corrupt or of another size; the movie ends early.
        UnsupportedFormatError: the frames carry no matte (colour pictures without alpha).
    """
    if clip.frame_files:
        for path in clip.frame_files:
            if not path.is_file():
                raise UnreadableMediaError(
                    f"cannot read '{path}': a frame of '{clip.path}' is missing; render or restore it"
                )
            alpha = image_matte(path)
            if alpha.shape != (clip.height, clip.width):
                raise UnreadableMediaError(
                    f"cannot read '{path}': {alpha.shape[1]}x{alpha.shape[0]} differs from the sequence's "
                    f"{clip.size}; re-export the sequence at one size"
                )
            yield alpha
        return
    yield from movie_mattes(clip.source, clip.frames)


# --- folders and pairs --------------------------------------------------------------------


def clips_in_folder(folder: Path) -> dict[str, Path]:
    """The clips a folder holds, by name.

    When the folder holds manifests, they are its clips (``take.rvm.json`` is ``take``) and
    everything else is taken as their outputs. Otherwise: movies (:data:`MOVIE_EXTENSIONS`,
    by stem), image sequences (``take.%04d.png`` is ``take``), stills (by stem), and each
    subfolder that holds exactly one clip (by the subfolder's name: ``pha/0000/0000.png ...``
    is ``0000``, as the official RVM evaluation lays clips out). Subfolders of subfolders are
    not searched.

    Raises:
        UnreadableMediaError: the folder cannot be listed.
        MediaError: two clips of the folder have the same name.
    """
    return _folder_clips(folder, subfolders=True)


def _folder_clips(folder: Path, *, subfolders: bool) -> dict[str, Path]:
    names = [n for n in _names_in(folder) if not n.startswith(".")]
    manifests = [n for n in names if n.endswith(MANIFEST_SUFFIX) and (folder / n).is_file()]
    if manifests:
        return {n[: -len(MANIFEST_SUFFIX)]: folder / n for n in manifests}
    clips: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        if name in clips:
            raise MediaError(
                f"folder '{folder}' holds two clips named '{name}' ('{clips[name].name}' and '{path.name}'); "
                "pass the clips one by one, or keep one matte per clip in the folder"
            )
        clips[name] = path

    runs: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for name in names:
        path = folder / name
        suffix = path.suffix.lower()
        if path.is_dir():
            inner = _folder_clips(path, subfolders=False) if subfolders else {}
            if len(inner) == 1:
                add(name, *inner.values())
        elif suffix in MOVIE_EXTENSIONS:
            add(path.stem, path)
        elif suffix in IMAGE_EXTENSIONS:
            match = _NUMBERED_RE.match(name)
            if match is None:
                add(path.stem, path)
            else:
                runs.setdefault((match.group(1), match.group(3)), []).append((int(match.group(2)), path))
    for (prefix, _), numbered in runs.items():
        numbered.sort()
        if _forms_sequence([number for number, _ in numbered]):
            add(prefix.rstrip("._-") or folder.name, numbered[0][1])
        else:
            for _, path in numbered:
                add(path.stem, path)
    return clips


def matte_pairs(pred: str | Path, gt: str | Path) -> list[tuple[MatteClip, MatteClip]]:
    """Pair predictions with ground truth, checked to match frame for frame.

    ``pred`` and ``gt`` are two mattes, or two folders of clips paired by name
    (:func:`clips_in_folder`). Ground-truth clips without a prediction are left out with a
    warning; a prediction without ground truth is an error.

    Raises:
        ConfigError: one is a folder and the other is not; two folders share no clip name.
        MediaError: a prediction has no ground truth; a pair differs in frame count or size.
        UnreadableMediaError: a matte is missing or unreadable.
    """
    pred, gt = Path(pred), Path(gt)
    if pred.is_dir() != gt.is_dir():
        folder, other = (pred, gt) if pred.is_dir() else (gt, pred)
        raise ConfigError(
            f"'{folder}' is a folder but '{other}' is not; pass two mattes, or two folders of clips paired by name"
        )
    if not pred.is_dir():
        pairs = [(open_matte(pred), open_matte(gt))]
    else:
        pred_clips, gt_clips = clips_in_folder(pred), clips_in_folder(gt)
        if not pred_clips:
            raise MediaError(f"folder '{pred}' holds no mattes (manifests, movies, image sequences or stills)")
        missing = sorted(set(pred_clips) - set(gt_clips))
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MediaError(
                f"no ground truth in '{gt}' for {shown}; name each ground-truth clip as its prediction "
                f"(clips there: {', '.join(sorted(gt_clips)[:5]) or 'none'})"
            )
        unscored = sorted(set(gt_clips) - set(pred_clips))
        if unscored:
            log.warning("%d ground-truth clips in '%s' have no prediction and are not scored: %s",
                        len(unscored), gt, ", ".join(unscored))
        pairs = [(open_matte(pred_clips[n], n), open_matte(gt_clips[n], n)) for n in sorted(pred_clips)]
    for p, g in pairs:
        _check_pair(p, g)
    return pairs


def _check_pair(pred: MatteClip, gt: MatteClip) -> None:
    if pred.frames != gt.frames:
        raise MediaError(
            f"cannot score '{pred.path}' against '{gt.path}': {pred.frames} frames against {gt.frames}; "
            "score mattes of the same frames (render the ground truth's range, e.g. with --frames)"
        )
    if (pred.width, pred.height) != (gt.width, gt.height):
        raise MediaError(
            f"cannot score '{pred.path}' against '{gt.path}': {pred.size} against {gt.size}; "
            "score mattes of the same size (render at the ground truth's size)"
        )


def pair_scores(
    pred: MatteClip,
    gt: MatteClip,
    first_frames: int = FIRST_FRAMES,
    on_frame: Callable[[int], None] | None = None,
) -> ClipScores:
    """Read a checked pair frame by frame and score it (:func:`rvm_render.quality.metrics.clip_scores`).

    Raises:
        MediaError: the pair differs in frame count or size; a frame cannot be read.
    """
    _check_pair(pred, gt)
    return clip_scores(zip(matte_frames(pred), matte_frames(gt)), first_frames, on_frame)
