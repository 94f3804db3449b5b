"""Shared machinery of the numbered-frame deliverables (OpenEXR, PNG).

Frames are numbered ``info.first_frame_number + frame_index`` (the source frame number for
sequences, the 0-based frame index for containers), written into the hidden folder of a
:class:`~rvm_render.media.commit.PartialSequence` by a thread pool with one thread per core
(each frame is independent; packing and compression run outside the GIL), and renamed into
place on ``close``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rvm_render.errors import MediaError
from rvm_render.media.commit import PartialSequence, writing_to
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.output import OutputFormat, WrittenOutput

log = logging.getLogger(__name__)

__all__ = ["SequenceWriter"]


class SequenceWriter:
    """Base of the image-sequence writers; subclasses implement :meth:`encode_file`."""

    format: OutputFormat
    #: Frames queued beyond those being encoded (bounds memory: ``workers + QUEUED_FRAMES``
    #: frames are held at most, whatever the clip length).
    QUEUED_FRAMES = 2

    def __init__(self, final_path: Path, info: MediaInfo, *, overwrite: bool, workers: int | None = None) -> None:
        self.final_path = final_path
        self.info = info
        self.workers = workers or os.cpu_count() or 1
        self.max_pending = self.workers + self.QUEUED_FRAMES
        self._partial = PartialSequence(final_path, overwrite=overwrite)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{self.format.value}-writer")
        self._pending: list[Future[None]] = []
        self._indices: list[int] = []
        self._closed = False

    def write(self, frame_index: int, fgr: np.ndarray, pha: np.ndarray) -> None:
        """Queue source frame ``frame_index`` for encoding (any order; each index once).

        The arrays are converted (:meth:`prepare`) on a pool thread: the caller must not change
        them afterwards (the pipeline hands every batch fresh arrays).

        Shape:
            fgr: [H, W, 3] float32 0..1; pha: [H, W] float32 0..1
        """
        if fgr.shape != (self.info.height, self.info.width, 3) or pha.shape != (self.info.height, self.info.width):
            raise MediaError(
                f"'{self.final_path}': frame {frame_index} is fgr {fgr.shape} / pha {pha.shape}, "
                f"expected {self.info.height}x{self.info.width}; the writer was opened for another clip"
            )
        self._submit(frame_index, self._encode_matte, fgr, pha)

    def write_converted(self, frame_index: int, payload: Any) -> None:
        """Queue a frame already converted to what :meth:`encode_file` takes (on a device, say).

        The payload is what :meth:`prepare` returns for this writer; see the subclass.
        """
        self._submit(frame_index, self._encode, payload)

    def _submit(self, frame_index: int, encode: Callable[..., None], *args: Any) -> None:
        path = self._partial.path_for(self.info.first_frame_number + frame_index)
        self._indices.append(frame_index)
        self._pending.append(self._pool.submit(encode, path, *args))
        while len(self._pending) >= self.max_pending:
            self._pending.pop(0).result()

    def close(self) -> WrittenOutput:
        """Wait for every frame, then rename the frames into place."""
        try:
            self._drain()
            if not self._indices:
                raise MediaError(f"'{self.final_path}': no frames were written; nothing to commit")
            self._partial.commit()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        first, last = min(self._indices), max(self._indices)
        log.info("wrote %s (frames %d-%d)", self.final_path, first, last)
        return WrittenOutput(self.format, self.final_path, first, last)

    def abort(self) -> None:
        """Stop and delete every frame written so far."""
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._partial.abort()

    def __enter__(self) -> SequenceWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()

    def _encode(self, path: Path, payload: Any) -> None:
        with writing_to(path):
            self.encode_file(path, payload)

    def _encode_matte(self, path: Path, fgr: np.ndarray, pha: np.ndarray) -> None:
        self._encode(path, self.prepare(fgr, pha))

    def _drain(self) -> None:
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._pool.shutdown(wait=True)

    # --- subclasses ----------------------------------------------------------------------

    def prepare(self, fgr: np.ndarray, pha: np.ndarray) -> Any:
        """Convert (on a pool thread) to what :meth:`encode_file` needs."""
        raise NotImplementedError

    def encode_file(self, path: Path, payload: Any) -> None:
        """Write one frame file (runs on a pool thread)."""
        raise NotImplementedError
