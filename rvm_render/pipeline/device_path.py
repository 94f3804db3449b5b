"""The data path between host and engine device: integer frames up, each writer's payload down.

Frames go to the engine's device as the integers they were decoded to (uint8 or uint16
``[T, H, W, 3]``, in pinned host memory on CUDA), copied on a stream of their own and turned into
float ``[T, 3, H, W]`` 0..1 there, so the bus carries a quarter (8-bit) or half (16-bit) of the
float32 bytes. After the engine, each writer's payload is made on the same device
(:func:`device_feed`): 10-bit Y'CbCr + alpha planes for ProRes 4444 (the matrix of
:func:`rvm_render.media.colour.ycbcr_matrix`, applied in the same float32 order as
:func:`~rvm_render.media.colour.rgb_to_ycbcr`), half-float RGBA for OpenEXR, integer RGBA for
PNG, matte luma for the alpha movie, 8-bit 4:2:0 planes of the composite over a still
background. Only those come back, copied on a second stream into pinned memory while the engine
works on the next batch; the writers wait for a batch's copy only when they reach it.

The same torch code runs on the CPU device, where it matches the numpy conversions of the
writers (ProRes code values within 1, OpenEXR within half-float rounding). The CPU path keeps
the numpy conversions (:func:`host_feed`): there the writers' own threads do them, in parallel
with the engine. A composite over a video background always takes the host feed (its
background frames are decoded by the writer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rvm_render.media.colour import ycbcr_matrix
from rvm_render.media.reader import DecodedFrame
from rvm_render.media.writers import MatteWriter, OutputFormat

__all__ = [
    "IntegerBatch",
    "UploadedBatch",
    "HostPayloads",
    "Transfers",
    "WriterFeed",
    "integer_batches",
    "ycbcr_codes",
    "prores4444_planes",
    "exr_planes",
    "png_rgba",
    "matte_luma",
    "comp_planes",
    "device_feed",
    "host_feed",
]

ALPHA_BITS = 10
ALPHA_LUMA_OFFSET = 64.0
ALPHA_LUMA_SPAN = 876.0


@dataclass(frozen=True, slots=True)
class IntegerBatch:
    """Consecutive decoded frames stacked as they were decoded.

    Shape:
        rgb: [T, H, W, 3] uint8 (0..255) or uint16 (0..65535)
    """

    first_index: int
    rgb: Tensor


@dataclass(frozen=True, slots=True, eq=False)
class UploadedBatch:
    """A batch on the engine's device, float there; :meth:`src` waits for its copy.

    Shape:
        src: [T, 3, H, W] float32 0..1 (channels-last memory)
    """

    first_index: int
    _src: Tensor
    _copied: torch.cuda.Event | None

    def src(self) -> Tensor:
        """The frames, usable on the calling thread's current stream."""
        if self._copied is not None:
            stream = torch.cuda.current_stream(self._src.device)
            stream.wait_event(self._copied)
            self._src.record_stream(stream)
        return self._src


@dataclass(frozen=True, slots=True, eq=False)
class HostPayloads:
    """One batch's payloads in host memory; :meth:`arrays` waits for their copy."""

    first_index: int
    _tensors: tuple[tuple[Tensor, ...], ...]
    _copied: torch.cuda.Event | None

    def arrays(self, slot: int) -> tuple[np.ndarray, ...]:
        """Writer ``slot``'s payload arrays, each ``[T, ...]``."""
        if self._copied is not None:
            self._copied.synchronize()
        return tuple(tensor.numpy() for tensor in self._tensors[slot])


def integer_batches(frames: Iterable[DecodedFrame], batch_frames: int, *, pinned: bool) -> Iterator[IntegerBatch]:
    """Stack consecutive decoded frames, as integers, into batches of at most ``batch_frames``.

    Args:
        pinned: stack into page-locked memory (CUDA copies from it run asynchronously).
    """
    pending: list[DecodedFrame] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch_frames:
            yield _stacked(pending, pinned)
            pending = []
    if pending:
        yield _stacked(pending, pinned)


def _stacked(frames: list[DecodedFrame], pinned: bool) -> IntegerBatch:
    first = frames[0].rgb
    rgb = torch.empty((len(frames), *first.shape), dtype=torch.from_numpy(first[:0]).dtype, pin_memory=pinned)
    np.stack([frame.rgb for frame in frames], out=rgb.numpy())
    return IntegerBatch(frames[0].index, rgb)


class Transfers:
    """Copies between host and ``device``: on CUDA on two streams of their own, elsewhere in line."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self._upload = torch.cuda.Stream(device) if self.pinned else None
        self._download = torch.cuda.Stream(device) if self.pinned else None

    def upload(self, batch: IntegerBatch) -> UploadedBatch:
        """Copy a batch to the device and make it float 0..1 there (on the upload stream).

        Transposed to planar before the float conversion, as :class:`IntegerBatch` comes: on the
        CPU the transposing copy then moves the narrower integer samples.
        """
        scale = float(torch.iinfo(batch.rgb.dtype).max)
        if self._upload is None:
            planar = batch.rgb.permute(0, 3, 1, 2).contiguous()
            return UploadedBatch(batch.first_index, _unit_float(planar, scale), None)
        with torch.cuda.stream(self._upload):
            rgb = batch.rgb.to(self.device, non_blocking=True)
            src = _unit_float(rgb.permute(0, 3, 1, 2), scale)
            copied = torch.cuda.Event()
            copied.record(self._upload)
        return UploadedBatch(batch.first_index, src, copied)

    def download(self, first_index: int, payloads: list[tuple[Tensor, ...]]) -> HostPayloads:
        """Start copying each writer's payload to the host (pinned), after the work queued so far."""
        if self._download is None:
            return HostPayloads(first_index, tuple(payloads), None)
        computed = torch.cuda.Event()
        computed.record(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._download):
            self._download.wait_event(computed)
            host = []
            for payload in payloads:
                copies = []
                for tensor in payload:
                    if not tensor.is_cuda:  # a host feed's frames, copied back by its own conversion
                        copies.append(tensor)
                        continue
                    copy = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                    copy.copy_(tensor, non_blocking=True)
                    tensor.record_stream(self._download)
                    copies.append(copy)
                host.append(tuple(copies))
            copied = torch.cuda.Event()
            copied.record(self._download)
        return HostPayloads(first_index, tuple(host), copied)


def _unit_float(rgb: Tensor, scale: float) -> Tensor:
    # uint16 -> int32 first: torch has no uint16 arithmetic on every build
    wide = rgb.to(torch.int32) if rgb.dtype == torch.uint16 else rgb
    return wide.float().div_(scale)


# --- payloads, in torch, on any device ----------------------------------------------------


def ycbcr_codes(rgb: Tensor, *, colorspace: str, color_range: str, bit_depth: int) -> Tensor:
    """Rounded Y'CbCr code values: :func:`~rvm_render.media.colour.rgb_to_ycbcr` in torch.

    Shape:
        rgb: [T, 3, H, W] float R'G'B' (clipped to 0..1 first) -> [T, 3, H, W] uint8 (8 bits) or uint16
    """
    codes = _ycbcr_float_codes(rgb, colorspace=colorspace, color_range=color_range, bit_depth=bit_depth)
    return codes.to(torch.uint8 if bit_depth == 8 else torch.uint16)


def _ycbcr_float_codes(rgb: Tensor, *, colorspace: str, color_range: str, bit_depth: int) -> Tensor:
    """:func:`ycbcr_codes` as float (exact integers): uint16 tensors get no arithmetic on every device."""
    rgb = rgb.float().clamp(0.0, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    top = float((1 << bit_depth) - 1)
    planes = []
    for cr, cg, cb, offset in ycbcr_matrix(colorspace, color_range, bit_depth):
        acc = r * cr
        acc += g * cg
        acc += b * cb
        acc += offset
        planes.append(acc.round_().clamp_(0.0, top))
    return torch.stack(planes, dim=1)


def _codes(values: Tensor, top: float) -> Tensor:
    """``round(clip(values, 0, 1) * top)`` as float (exact integers)."""
    return (values.float().clamp(0.0, 1.0) * top).round_()


def prores4444_planes(fgr: Tensor, pha: Tensor, *, colorspace: str) -> Tensor:
    """Y', Cb, Cr (10-bit limited range) and alpha (10-bit full scale), as ProRes 4444 takes them.

    Shape:
        fgr: [T, 3, H, W], pha: [T, 1, H, W] -> [T, 4, H, W] uint16
    """
    ycbcr = _ycbcr_float_codes(fgr, colorspace=colorspace, color_range="tv", bit_depth=10)
    alpha = _codes(pha, float((1 << ALPHA_BITS) - 1))
    return torch.cat([ycbcr, alpha], dim=1).to(torch.uint16)


def exr_planes(fgr: Tensor, pha: Tensor) -> Tensor:
    """Planes R, G, B, A as half floats (round to nearest even).

    Shape:
        fgr: [T, 3, H, W], pha: [T, 1, H, W] -> [T, 4, H, W] float16
    """
    return torch.cat([fgr.float(), pha.float()], dim=1).half()


def png_rgba(fgr: Tensor, pha: Tensor, *, sixteen_bit: bool) -> Tensor:
    """Interleaved RGBA code values ``round(clip(v) * top)``, as the PNG writer takes them.

    Shape:
        fgr: [T, 3, H, W], pha: [T, 1, H, W] -> [T, H, W, 4] uint8 (uint16 when ``sixteen_bit``)
    """
    codes = _codes(torch.cat([fgr, pha], dim=1), 65535.0 if sixteen_bit else 255.0)
    return codes.permute(0, 2, 3, 1).contiguous().to(torch.uint16 if sixteen_bit else torch.uint8)


def matte_luma(pha: Tensor) -> Tensor:
    """10-bit limited-range luma of the matte, ``64 + round(pha * 876)``, as the alpha movie takes it.

    Shape:
        pha: [T, 1, H, W] -> [T, H, W] uint16
    """
    return (_codes(pha[:, 0], ALPHA_LUMA_SPAN) + ALPHA_LUMA_OFFSET).to(torch.uint16)


def comp_planes(fgr: Tensor, pha: Tensor, background: Tensor, *, colorspace: str) -> tuple[Tensor, Tensor, Tensor]:
    """The composite ``bg + (fgr - bg) * clip(pha)`` as 8-bit Y' and 2x2-averaged Cb, Cr.

    Shape:
        fgr: [T, 3, H, W], pha: [T, 1, H, W], background: [3, H, W] float32 0..1
        -> Y' [T, H, W], Cb and Cr [T, H/2, W/2], uint8
    """
    comp = background + (fgr.float() - background) * pha.float().clamp(0.0, 1.0)
    ycbcr = ycbcr_codes(comp, colorspace=colorspace, color_range="tv", bit_depth=8)
    blocks = ycbcr[:, 1:].to(torch.int32)
    summed = blocks[..., 0::2, 0::2] + blocks[..., 1::2, 0::2] + blocks[..., 0::2, 1::2] + blocks[..., 1::2, 1::2]
    chroma = ((summed + 2) >> 2).to(torch.uint8)
    return ycbcr[:, 0], chroma[:, 0], chroma[:, 1]


# --- how each writer is fed -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class WriterFeed:
    """How one writer gets its frames: what is made on the engine's device, how a frame is handed over.

    ``convert(fgr, pha)`` runs on the engine's device after each batch; ``hand_over(frame_index,
    arrays)`` runs on the writer's thread with frame ``t`` of each array it returned.
    """

    convert: Callable[[Tensor, Tensor], tuple[Tensor, ...]]
    hand_over: Callable[[int, tuple[np.ndarray, ...]], None]


def _float_frames(fgr: Tensor, pha: Tensor) -> tuple[Tensor, Tensor]:
    """fgr and pha as float32 host tensors, pha without its channel axis."""
    return fgr.to("cpu", torch.float32), pha[:, 0].to("cpu", torch.float32).contiguous()


def host_feed(writer: MatteWriter) -> WriterFeed:
    """Feed ``writer`` float fgr and pha, converted by the writer itself (numpy)."""

    def hand_over(frame_index: int, arrays: tuple[np.ndarray, ...]) -> None:
        fgr, pha = arrays
        # an HWC view of planar memory: writers that work plane by plane read contiguous planes
        writer.write(frame_index, fgr.transpose(1, 2, 0), pha)

    return WriterFeed(_float_frames, hand_over)


def device_feed(writer: MatteWriter) -> WriterFeed:
    """Feed ``writer`` the payload it takes, made on the engine's device; :func:`host_feed` where none is."""
    fmt = getattr(writer, "format", None)
    matrix = writer.colour.matrix if hasattr(writer, "colour") else None

    def convert_with(convert: Callable[[Tensor, Tensor], Tensor | tuple[Tensor, ...]]) -> WriterFeed:
        def converted(fgr: Tensor, pha: Tensor) -> tuple[Tensor, ...]:
            payload = convert(fgr, pha)
            return payload if isinstance(payload, tuple) else (payload,)

        def hand_over(frame_index: int, arrays: tuple[np.ndarray, ...]) -> None:
            writer.write_converted(frame_index, arrays[0] if len(arrays) == 1 else list(arrays))  # type: ignore[attr-defined]

        return WriterFeed(converted, hand_over)

    if fmt is OutputFormat.PRORES4444:
        return convert_with(lambda fgr, pha: prores4444_planes(fgr, pha, colorspace=matrix))
    if fmt is OutputFormat.EXR:
        return convert_with(exr_planes)
    if fmt is OutputFormat.PNG:
        sixteen_bit = writer.sixteen_bit  # type: ignore[attr-defined]
        return convert_with(lambda fgr, pha: png_rgba(fgr, pha, sixteen_bit=sixteen_bit))
    if fmt is OutputFormat.ALPHA:
        return convert_with(lambda fgr, pha: matte_luma(pha))
    still = getattr(writer, "still_background", None)
    if fmt is OutputFormat.COMP and still is not None:
        backgrounds: dict[torch.device, Tensor] = {}

        def comp(fgr: Tensor, pha: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            if fgr.device not in backgrounds:
                planar = np.ascontiguousarray(still.transpose(2, 0, 1))
                backgrounds[fgr.device] = torch.from_numpy(planar).to(fgr.device)
            return comp_planes(fgr, pha, backgrounds[fgr.device], colorspace=matrix)

        return convert_with(comp)
    return host_feed(writer)
