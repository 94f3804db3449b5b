"""The official RVM ``convert_video``, written out without torchvision, pims or tqdm: the end-to-end reference.

    python bench/reference_convert_video.py CLIP --weights DIR --downsample-ratio R \\
        --alpha OUT.mp4 --composition OUT.mp4 [--frames N] [--device cuda --fp16 --seq-chunk 12]

Reproduces, from PeterL1n/RobustVideoMatting (``inference.py``, ``inference_utils.py``), the
Python call ``convert_video(model, CLIP, downsample_ratio=R, output_type="video",
output_alpha=..., output_composition=..., progress=False)`` with its defaults (``seq_chunk=1``,
``num_workers=0``, ``output_video_mbps`` -> 1), ``model`` the eager float32 mobilenetv3
``MattingNetwork`` with the fast guided filter, not fused:

- read: ``pims.PyAVVideoReader`` (``PyAVReaderTimed``) read front to back, as the DataLoader
  asks for frames 0, 1, 2, ...: each decoded frame is reformatted to an rgb24 frame and made an
  array, and both stay in pims's 16-frame cache; its length is ``int(duration * average_rate)``
  and its frame rate ``float(average_rate)``;
- ``VideoReader.__getitem__`` makes a PIL image of the array, ``transforms.ToTensor()`` makes it
  float32 ``[3, H, W]`` 0..1 (copy out of PIL, permute, contiguous, float, /255), and the
  DataLoader (batch 1) stacks it to ``[1, 3, H, W]`` (``pin_memory`` does nothing without CUDA);
- matte, under ``torch.no_grad()``: ``src.unsqueeze(0)`` is ``[1, 1, 3, H, W]``,
  ``fgr, pha, *rec = model(src, *rec, R)``, ``rec`` starting as ``[None] * 4``;
- write: ``pha[0]`` to the alpha writer, then ``com = fgr * pha + bgr * (1 - pha)`` with
  ``bgr = (120, 255, 155) / 255`` to the composition writer. Each is a ``VideoWriter``: H.264,
  yuv420p, 1 Mb/s, rate ``f"{frame_rate:.4f}"``; a frame is ``mul(255).byte()`` (truncated),
  grey repeated to 3 channels, encoded from rgb24 and muxed; at the end each encoder is flushed
  and its file closed (composition first).

Where it deviates:

- torchvision, pims, tqdm and the DataLoader are not imported; the steps of theirs listed above
  are written out, so their import time and memory are not counted (nor a progress bar: off).
- The network is this repository's ``MattingNetwork`` built by ``network_for_weights`` from the
  weights given (the bench passes the tfjs uint8 model, dequantized to float32), not the
  official model code loading ``rvm_mobilenetv3.pth``: same architecture, same eager float32
  arithmetic.
- The installed torch and PyAV, not the official pins (torch 1.9, av 8.0.3, pims 0.5). PyAV 14+
  refuses a string rate, so the writer gets ``Fraction(f"{frame_rate:.4f}")``, the value older
  PyAV parsed that string to; and it refuses setting the size of an open encoder, so width and
  height are set at the first frame only (the official sets the same values at every write).
- Frames are taken in decode order; pims numbers them by timestamp, which is the same for a
  constant-rate clip without gaps, like the bench clip. If the stream ends before pims's length,
  pims would repeat cached frames; here the run stops.
- The command-line ``inference.py`` scripts and freezes the model with TorchScript; the Python
  call reproduced here does not.
- ``--frames N`` stops after the first N frames (for short runs); the official has no such option.

On CUDA (``--device cuda --fp16 --seq-chunk 12``, as the official README advises for speed) it is
``convert_video(..., device="cuda", dtype=torch.float16, seq_chunk=12)``: the model in half
precision on the GPU, ``seq_chunk`` frames stacked per call (``[1, T, 3, H, W]``) and copied from
pinned memory (the DataLoader's ``pin_memory`` on CUDA), each output frame ``mul(255).byte()`` on
the GPU before it comes back.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from rvm_render.engine.weights import network_for_weights, read_weights

BACKGROUND = (120, 255, 155)  # convert_video's green for video compositions
PIMS_CACHE_FRAMES = 16  # PyAVReaderTimed's default cache_size
BIT_RATE = 1_000_000  # output_video_mbps default: 1


class PimsVideoReader:
    """``pims.PyAVVideoReader`` (``PyAVReaderTimed``) read front to back: rgb24 arrays."""

    def __init__(self, path: Path) -> None:
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        try:
            duration = self.stream.duration * self.stream.time_base
        except TypeError:  # no stream duration: pims falls back to the container's
            duration = Fraction(self.container.duration, av.time_base)
        self.rate = self.stream.average_rate
        self.length = int(duration * self.rate)
        self.cache: list[tuple[av.VideoFrame, np.ndarray] | None] = [None] * PIMS_CACHE_FRAMES

    @property
    def frame_rate(self) -> float:
        return float(self.rate)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[np.ndarray]:
        for index, frame in zip(range(self.length), self.container.decode(self.stream)):
            rgb_frame = frame.reformat(format="rgb24")  # WrapPyAvFrame: a copy FFmpeg will not reuse
            array = rgb_frame.to_ndarray(format="rgb24")  # WrapPyAvFrame.to_frame
            self.cache[index % PIMS_CACHE_FRAMES] = (rgb_frame, array)
            yield array


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``VideoReader.__getitem__`` then ``transforms.ToTensor()``: float32 ``[3, H, W]`` 0..1."""
    image = Image.fromarray(np.asarray(rgb))
    array = torch.from_numpy(np.array(image, np.uint8, copy=True))
    width, height = image.size
    return array.view(height, width, 3).permute(2, 0, 1).contiguous().to(torch.float32).div(255)


class VideoWriter:
    """``inference_utils.VideoWriter``: H.264 yuv420p at ``bit_rate``, fed ``[T, C, H, W]`` 0..1."""

    def __init__(self, path: Path, frame_rate: float, bit_rate: int = BIT_RATE) -> None:
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("h264", rate=Fraction(f"{frame_rate:.4f}"))
        self.stream.pix_fmt = "yuv420p"
        self.stream.bit_rate = bit_rate

    def write(self, frames: torch.Tensor) -> None:
        if not self.stream.codec_context.is_open:  # PyAV 14+: no size change once open
            self.stream.width = frames.size(3)
            self.stream.height = frames.size(2)
        if frames.size(1) == 1:
            frames = frames.repeat(1, 3, 1, 1)  # grey to RGB
        array = frames.mul(255).byte().cpu().permute(0, 2, 3, 1).numpy()
        for frame in array:
            self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()


def convert_video(
    model: torch.nn.Module,
    clip: Path,
    downsample_ratio: float,
    alpha: Path,
    composition: Path,
    frames: int | None = None,
    seq_chunk: int = 1,
) -> None:
    """``convert_video`` with ``output_type="video"``, alpha and composition, on the model's device and dtype."""
    source = PimsVideoReader(clip)
    writer_com = VideoWriter(composition, source.frame_rate)
    writer_pha = VideoWriter(alpha, source.frame_rate)
    param = next(model.parameters())
    bgr = torch.tensor(BACKGROUND, device=param.device, dtype=param.dtype).div(255).view(1, 1, 3, 1, 1)
    try:
        with torch.no_grad():
            rec: list[torch.Tensor | None] = [None] * 4
            for chunk in batched(islice(source, frames), seq_chunk):
                src = torch.stack([to_tensor(rgb) for rgb in chunk])  # DataLoader, batch_size=seq_chunk
                if param.device.type == "cuda":
                    src = src.pin_memory()  # DataLoader(pin_memory=True) on CUDA
                src = src.to(param.device, param.dtype, non_blocking=True).unsqueeze(0)  # [B, T, C, H, W]
                fgr, pha, *rec = model(src, *rec, downsample_ratio)
                writer_pha.write(pha[0])
                com = fgr * pha + bgr * (1 - pha)
                writer_com.write(com[0])
    finally:
        writer_com.close()
        writer_pha.close()


def batched(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of ``size`` frames (the last may be shorter), as the DataLoader batches them."""
    chunk: list[np.ndarray] = []
    for rgb in frames:
        chunk.append(rgb)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="video file to matte")
    parser.add_argument("--weights", type=Path, required=True, help="weights file or tfjs model folder")
    parser.add_argument("--downsample-ratio", type=float, required=True, help="network input scale")
    parser.add_argument("--alpha", type=Path, required=True, help="alpha video to write (.mp4)")
    parser.add_argument("--composition", type=Path, required=True, help="composition video to write (.mp4)")
    parser.add_argument("--frames", type=int, default=None, help="stop after the first N frames (default: all)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--fp16", action="store_true", help="half-precision model (CUDA)")
    parser.add_argument("--seq-chunk", type=int, default=1, help="frames per model call (default: 1)")
    args = parser.parse_args()
    dtype = torch.float16 if args.fp16 else torch.float32
    model = network_for_weights(read_weights(args.weights)).eval().to(args.device, dtype)
    convert_video(model, args.clip, args.downsample_ratio, args.alpha, args.composition, args.frames, args.seq_chunk)


if __name__ == "__main__":
    main()
