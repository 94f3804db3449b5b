"""Matter: the RVM model on a device, with its recurrent state carried between calls.

One ``Matter`` mattes one clip at a time: ``matte(src)`` takes the next ``T`` frames, runs the
model with the current :class:`RecurrentState` and keeps the new one, so consecutive calls
equal one long frame-by-frame run (RVM, Lin et al., WACV 2022). Memory stays flat: no
gradients (``torch.inference_mode``), and only the last state is kept.

Device and precision: ``device="auto"`` picks CUDA when available, else CPU; ``precision="auto"``
is fp16 on CUDA and fp32 on CPU. In fp16 the network runs in half precision while the frames
stay float32 and the refiner fits its guided filter in float32 (see
:mod:`rvm_render.model.refiner`): half-precision statistics broke real mattes. The model runs
with every BatchNorm folded into its conv (:func:`~rvm_render.engine.fusion.fused_for_inference`)
and in channels-last layout, which measured fastest on CPU; on CPU frames are fed one at a time
(faster there than ``[1, T]`` clips), on CUDA the ``T`` frames go in one call.

Network calls on CUDA (``network``): frame-by-frame work is launch-bound on a fast GPU (about
120 fps whatever the frame size, issue 19), so ``"cuda_graph"`` captures the ``[1, T]`` call once per
shape (frames, size, ratio; kept for every later clip of that shape) in a CUDA graph and
replays it, copying frames and state into its fixed buffers. A shape is captured the second
time it is called with a state: its first call runs eagerly (and warms up what capture needs),
so a shape met once, such as a clip's last short batch, costs no capture. A capture that fails
falls back to eager for that shape, with a warning.

Start-up (:func:`open_matter`): on CUDA the context, cuDNN and the caching allocator are brought
up on a thread of their own while the weights are read and the network built on the CPU; the
log says what each took (``-v``).
``bench/gpu_node.py`` measures both; ``"auto"`` takes the CUDA graph on CUDA and is eager
elsewhere.

Backend: ``backend="auto"`` runs the network with ONNX Runtime on the CPU when it is installed
(faster there than eager PyTorch, see ``bench/matte_speed.py``;
:mod:`~rvm_render.engine.onnx_backend`) and with PyTorch otherwise and on CUDA.

Steps (:meth:`Matter.steps`): on the ONNX Runtime backend the engine is three steps, the
stateless encoder, the recurrent decoder and the refiner, which the pipeline runs on threads
of their own so that frame ``t + 1`` is encoded while frame ``t`` is decoded and ``t - 1``
refined; each step gets :func:`auto_step_threads` threads. ``matte()`` runs the same steps one
after another.

Downsample ratio ``"auto"`` (:func:`auto_downsample_ratio`): the network sees the frame with
its long side at most 512 px, the ratio snapped down to a multiple of 1/32 (this reproduces the
official recommendations: 0.375 for 1280x720, 0.25 for 1920x1080, 0.125 for 3840x2160),
unless snapping would put the long side under 256 px; frames up to 512 px run at ratio 1.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn

from rvm_render.engine.defaults import AUTO_LONG_SIDE_MAX, AUTO_LONG_SIDE_MIN, AUTO_RATIO_STEP
from rvm_render.engine.fusion import fused_for_inference
from rvm_render.engine.onnx_backend import (
    FeaturesSession,
    RecurrentSession,
    onnxruntime_available,
    require_onnxruntime,
)
from rvm_render.engine.state import RecurrentState
from rvm_render.engine.weights import check_variant, network_for_weights, read_weights, resolve_weights_path
from rvm_render.errors import ConfigError
from rvm_render.model.matting import downsampled

__all__ = [
    "EngineOptions",
    "MatteBatch",
    "Matter",
    "Backend",
    "Precision",
    "auto_downsample_ratio",
    "auto_step_threads",
    "resolve_device",
    "preferred_batch_frames",
    "resolve_precision",
    "resolve_backend",
    "resolve_network",
    "Network",
    "open_matter",
    "PlanningMatter",
    "open_planning_matter",
    "load_model",
]

log = logging.getLogger(__name__)

_SessionT = TypeVar("_SessionT", FeaturesSession, RecurrentSession)
Precision = Literal["auto", "fp32", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16")
Backend = Literal["auto", "torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnxruntime")
Network = Literal["auto", "eager", "cuda_graph"]
NETWORKS: tuple[str, ...] = ("auto", "eager", "cuda_graph")
#: Eager calls on the capture stream before a CUDA graph is captured (lazy initialisation happens
#: outside the capture); the shape's first call, eager on the default stream, came before them.
GRAPH_WARMUP_CALLS = 1
#: Engine steps that run at the same time in a pipeline (ONNX Runtime backend).
CONCURRENT_STEPS = 3


def auto_downsample_ratio(height: int, width: int) -> float:
    """The downsample ratio that puts the frame's long side within 256..512 px (see module doc).

    Frames whose long side is 512 px or less run at full size (ratio 1).
    """
    long_side = max(height, width)
    if long_side <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if long_side <= AUTO_LONG_SIDE_MAX:
        return 1.0
    ratio = AUTO_LONG_SIDE_MAX / long_side
    snapped = math.floor(ratio / AUTO_RATIO_STEP) * AUTO_RATIO_STEP
    return snapped if snapped * long_side >= AUTO_LONG_SIDE_MIN else ratio


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the model runs.

    Attributes:
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        precision: ``"auto"`` (fp16 on CUDA, fp32 on CPU), ``"fp32"`` or ``"fp16"`` (CUDA only).
        downsample_ratio: ``"auto"`` (:func:`auto_downsample_ratio`) or a ratio in (0, 1].
        backend: ``"auto"`` (ONNX Runtime on CPU when installed, else PyTorch), ``"torch"`` or
            ``"onnxruntime"`` (CPU, fp32 only).
        step_threads: ONNX Runtime intra-op threads for each engine step; ``"auto"`` shares the
            cores between the three steps the pipeline overlaps (:func:`auto_step_threads`).
        network: ``"auto"`` (CUDA graphs on CUDA, else eager), ``"eager"``, or ``"cuda_graph"``
            (CUDA only): how the torch network is called (see the module doc).
    """

    device: str = "auto"
    precision: Precision = "auto"
    downsample_ratio: float | Literal["auto"] = "auto"
    backend: Backend = "auto"
    step_threads: int | Literal["auto"] = "auto"
    network: Network = "auto"

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ConfigError(f"network: unknown {self.network!r} (expected one of {', '.join(NETWORKS)})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: unknown {self.precision!r} (expected one of {', '.join(PRECISIONS)})")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: unknown {self.backend!r} (expected one of {', '.join(BACKENDS)})")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError) as err:
                raise ConfigError(f"device: unknown {self.device!r} (expected auto, cpu, cuda or cuda:N)") from err
        if self.step_threads != "auto" and not (isinstance(self.step_threads, int) and self.step_threads >= 1):
            raise ConfigError(f"step_threads: {self.step_threads!r} is not 'auto' or a positive thread count")
        ratio = self.downsample_ratio
        if ratio != "auto" and not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise ConfigError(f"downsample_ratio: {ratio!r} is not 'auto' or a number in (0, 1]")


@dataclass(frozen=True, slots=True, eq=False)
class MatteBatch:
    """Model output for ``T`` frames, float32 on the CPU.

    Shape:
        fgr: ``[T, 3, H, W]`` RGB 0..1; pha: ``[T, 1, H, W]`` 0..1.
    """

    fgr: Tensor
    pha: Tensor


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; other names are checked for availability.

    Raises:
        ConfigError: CUDA was asked for but is not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but CUDA is not available; use --device cpu or auto")
    return resolved


def auto_step_threads() -> int:
    """Threads per engine step: torch's thread count shared by the steps a pipeline overlaps, at least 1.

    On 2 cores that is 1: there, 2 threads per step cost about 15 ms more CPU per 1280x720 frame
    (thread hand-offs) and ran no faster end to end; the slowest step (the recurrent decoder)
    then bounds the speed, so machines with more cores give it more threads.
    """
    return max(1, torch.get_num_threads() // CONCURRENT_STEPS)


def preferred_batch_frames(device: str = "auto") -> int:
    """Frames per engine call that run fastest on ``device``: 1 on the CPU, 4 on CUDA.

    On the CPU every frame goes through the network alone anyway; single-frame batches let the
    pipeline overlap the engine's steps more finely and hold a third of the frames in memory
    (``bench/matte_speed.py``). On CUDA a ``[1, T]`` call keeps the GPU busier. A named CUDA
    device need not be present (a farm job may be prepared on a CPU-only host).

    Raises:
        ConfigError: ``device`` is not a device name.
    """
    if device == "auto":
        return preferred_batch_frames(resolve_device().type)
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device: unknown {device!r} (expected auto, cpu, cuda or cuda:N)") from err
    return 1 if kind == "cpu" else 4


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> fp16 on CUDA, fp32 elsewhere.

    Raises:
        ConfigError: fp16 on a non-CUDA device.
    """
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision: fp16 needs a CUDA device, not {device.type}; use fp32 or auto")
    return precision


def resolve_backend(backend: str, device: torch.device, precision: str) -> str:
    """``"auto"`` -> ``"onnxruntime"`` for fp32 on the CPU when installed, else ``"torch"``.

    Raises:
        ConfigError: ONNX Runtime asked for but missing, or asked for off the CPU or in fp16.
    """
    if backend == "auto":
        use_ort = device.type == "cpu" and precision == "fp32" and onnxruntime_available()
        return "onnxruntime" if use_ort else "torch"
    if backend == "onnxruntime":
        require_onnxruntime()
        if device.type != "cpu" or precision != "fp32":
            raise ConfigError(
                f"backend: 'onnxruntime' runs fp32 on the CPU only, not {precision} on {device.type}; "
                "use backend auto or torch"
            )
    return backend


def resolve_network(network: str, device: torch.device) -> str:
    """``"auto"`` -> ``"cuda_graph"`` on CUDA, else ``"eager"``.

    Raises:
        ConfigError: CUDA graphs asked for off CUDA.
    """
    if network == "auto":
        return "cuda_graph" if device.type == "cuda" else "eager"
    if network == "cuda_graph" and device.type != "cuda":
        raise ConfigError(f"network: 'cuda_graph' needs a CUDA device, not {device.type}; use eager or auto")
    return network


class _GraphedCall:
    """The network's ``[1, T]`` call for one shape, captured in a CUDA graph with fixed buffers.

    Shape:
        src: ``[T, 3, H, W]`` float32; rec: the state for that shape.
    """

    def __init__(self, model: nn.Module, src: Tensor, rec: list[Tensor], ratio: float) -> None:
        self._src = src.clone()
        self._rec = [r.clone() for r in rec]
        side = torch.cuda.Stream(src.device)
        side.wait_stream(torch.cuda.current_stream(src.device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_CALLS):
                model(self._src[None], *self._rec, downsample_ratio=ratio)
        torch.cuda.current_stream(src.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        # thread_local: the pipeline's other threads keep copying and allocating pinned memory meanwhile
        with torch.cuda.device(src.device), torch.cuda.graph(self._graph, capture_error_mode="thread_local"):
            self._fgr, self._pha, *self._rec_out = model(self._src[None], *self._rec, downsample_ratio=ratio)

    def __call__(self, src: Tensor, rec: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Replay on ``src`` from state ``rec``: fgr ``[T, 3, H, W]``, pha ``[T, 1, H, W]``, the next state."""
        self._src.copy_(src)
        for buffer, state in zip(self._rec, rec):
            buffer.copy_(state)
        self._graph.replay()
        return self._fgr[0].clone(), self._pha[0].clone(), [r.clone() for r in self._rec_out]


def _dtype(precision: str) -> torch.dtype:
    return torch.float16 if precision == "fp16" else torch.float32


class Matter:
    """A MattingNetwork ready to run on one device, carrying the recurrent state between calls.

    Args:
        model: A MattingNetwork holding its weights (official layout; left unchanged).
        options: Device, precision, downsample ratio.
        weights_sha256: Digest of the weights file, reported in manifests.

    Raises:
        ConfigError: Unusable device or precision.
    """

    def __init__(
        self, model: nn.Module, options: EngineOptions | None = None, *, weights_sha256: str | None = None
    ) -> None:
        self.options = options or EngineOptions()
        self.device = resolve_device(self.options.device)
        self.precision = resolve_precision(self.options.precision, self.device)
        self.variant: str | None = getattr(model, "variant", None)
        self.refiner: str | None = getattr(model, "refiner_name", None)
        self.weights_sha256 = weights_sha256
        self.backend = resolve_backend(self.options.backend, self.device, self.precision)
        self.network = resolve_network(self.options.network, self.device)
        #: Captured calls by (T, H, W, ratio); None where capture failed (that shape runs eagerly).
        self._graphs: dict[tuple[int, int, int, float], _GraphedCall | None] = {}
        #: Shapes called once with a state and not captured yet (module doc).
        self._called_once: set[tuple[int, int, int, float]] = set()
        self._dtype = _dtype(self.precision)
        self.model = (
            fused_for_inference(model).to(device=self.device, dtype=self._dtype).to(memory_format=torch.channels_last)
        )
        # Frames per model call: 1 on CPU (measured faster than [1, T] clips), all T on CUDA.
        self._frames_per_call: int | None = 1 if self.device.type == "cpu" else None
        self._state = RecurrentState.initial()
        self._frame_size: tuple[int, int] | None = None
        step_threads = self.options.step_threads
        self._step_threads = auto_step_threads() if step_threads == "auto" else step_threads
        self._features_session: FeaturesSession | None = None
        self._recurrent_session: RecurrentSession | None = None

    @property
    def state(self) -> RecurrentState:
        """The recurrent state after the last frame matted (initial after :meth:`reset`)."""
        return self._state

    @state.setter
    def state(self, state: RecurrentState) -> None:
        self._state = state.to(self.device, self._dtype)
        self._frame_size = None

    def reset(self) -> None:
        """Forget the recurrent state: the next frame is treated as the first of a clip."""
        self._state = RecurrentState.initial()
        self._frame_size = None

    def downsample_ratio_for(self, height: int, width: int) -> float:
        """The ratio used for frames of this size (the option, or :func:`auto_downsample_ratio`)."""
        ratio = self.options.downsample_ratio
        return auto_downsample_ratio(height, width) if ratio == "auto" else float(ratio)

    def steps(self, *, on_device: bool = False) -> tuple[Callable[[Any], Any], ...]:
        """The engine as a chain of steps, for a pipeline that overlaps them on threads.

        The first step takes ``src [T, 3, H, W]`` (as :meth:`matte`), each next step takes the
        previous one's result, and the last returns the :class:`MatteBatch`. Feed every step
        its batches in frame order; different steps may run at the same time on different
        threads (step ``k`` on batch ``n + 1`` while step ``k + 1`` is on batch ``n``). Only
        one step carries the recurrent state. On the ONNX Runtime backend the steps are the
        network's stateless features, its recurrent decoder, and the refiner; elsewhere
        there is one step.

        Args:
            on_device: the last step leaves fgr and pha on the engine's device, in the network's
                dtype (for payloads made there), instead of float32 on the CPU.
        """
        if self.backend == "onnxruntime":
            return (self._features_step, self._recurrent_step, self._refine_step)
        return (partial(self._torch_step, on_device=on_device),)

    def matte(self, src: Tensor) -> MatteBatch:
        """Matte the next ``T`` frames of the clip, carrying the recurrent state.

        Args:
            src: The frames, float RGB 0..1, on the CPU.

        Returns:
            Foreground and alpha as float32 CPU tensors.

        Shape:
            src: ``[T, 3, H, W]``; returns fgr ``[T, 3, H, W]``, pha ``[T, 1, H, W]``.

        Raises:
            ValueError: ``src`` is not ``[T, 3, H, W]`` floating point.
        """
        result: Any = src
        for step in self.steps():
            result = step(result)
        return result

    def _checked_ratio(self, src: Tensor) -> float:
        """The downsample ratio for ``src``, after checking it is a float ``[T, 3, H, W]`` batch."""
        if src.ndim != 4 or src.shape[1] != 3 or not src.is_floating_point():
            raise ValueError(f"src must be a float [T, 3, H, W] tensor, got {src.dtype} {list(src.shape)}")
        return self.downsample_ratio_for(*src.shape[-2:])

    def _state_for_size(self, height: int, width: int) -> list[Tensor | None]:
        """The state to continue from; reset (with a warning) when the frame size changed."""
        if self._frame_size not in (None, (height, width)) and not self._state.is_initial:
            log.warning("frame size changed to %dx%d: recurrent state reset", width, height)
            self._state = RecurrentState.initial()
        self._frame_size = (height, width)
        return self._state.as_list()

    def _torch_step(self, src: Tensor, *, on_device: bool = False) -> MatteBatch:
        ratio = self._checked_ratio(src)
        rec = self._state_for_size(*src.shape[-2:])
        step = self._frames_per_call or src.shape[0]
        fgrs: list[Tensor] = []
        phas: list[Tensor] = []
        with torch.inference_mode():
            # float32 frames: a half network rounds only its own input, the refiner guides by these
            frames = src.to(device=self.device, dtype=torch.float32, non_blocking=True)
            for start in range(0, frames.shape[0], step):
                chunk = frames[start : start + step]
                if chunk.shape[0] == 1:
                    x = chunk.contiguous(memory_format=torch.channels_last)
                    fgr, pha, *rec = self.model(x, *rec, downsample_ratio=ratio)
                else:
                    fgr, pha, rec = self._clip_call(chunk, rec, ratio)
                fgrs.append(fgr)
                phas.append(pha)
            fgr_all = torch.cat(fgrs) if len(fgrs) > 1 else fgrs[0]
            pha_all = torch.cat(phas) if len(phas) > 1 else phas[0]
            if on_device:
                out = MatteBatch(fgr=fgr_all, pha=pha_all)
            else:
                out = MatteBatch(
                    fgr=fgr_all.to("cpu", torch.float32).contiguous(),
                    pha=pha_all.to("cpu", torch.float32).contiguous(),
                )
        self._state = RecurrentState.from_list(rec)
        return out

    def _clip_call(self, chunk: Tensor, rec: list[Tensor | None], ratio: float) -> tuple[Tensor, Tensor, list[Any]]:
        """One ``[1, T]`` network call: replayed from its CUDA graph where one is (or can be) captured."""
        if self.network == "cuda_graph" and all(r is not None for r in rec):
            key = (chunk.shape[0], chunk.shape[-2], chunk.shape[-1], ratio)
            if key not in self._graphs and key in self._called_once:
                self._graphs[key] = self._captured(chunk, rec, ratio)  # type: ignore[arg-type]
            self._called_once.add(key)
            graphed = self._graphs.get(key)
            if graphed is not None:
                return graphed(chunk, rec)  # type: ignore[arg-type]
        fgr, pha, *rec = self.model(chunk[None], *rec, downsample_ratio=ratio)
        return fgr[0], pha[0], rec

    def _captured(self, chunk: Tensor, rec: list[Tensor], ratio: float) -> _GraphedCall | None:
        """The call captured for ``chunk``'s shape, or None (with a warning) if capture fails."""
        try:
            graphed = _GraphedCall(self.model, chunk, rec, ratio)
        except Exception as err:  # any capture failure (CUDA, allocator, an op that cannot be captured)
            log.warning("CUDA graph capture failed for %s frames at ratio %g (%s); running them eagerly",
                        "x".join(map(str, chunk.shape)), ratio, err)  # fmt: skip
            return None
        log.info("captured a CUDA graph for %s frames at ratio %g", "x".join(map(str, chunk.shape)), ratio)
        return graphed

    def _features_step(self, src: Tensor) -> _Features:
        """Downsample each frame and run the stateless encoder + LR-ASPP (ONNX Runtime)."""
        ratio = self._checked_ratio(src)
        src = src.to(torch.float32)
        with torch.inference_mode():
            src_sm = downsampled(src, ratio).contiguous() if ratio != 1 else src
            session = self._features_session = self._sized(self._features_session, FeaturesSession, src_sm)
            features = [session.run(src_sm[t : t + 1]) for t in range(src.shape[0])]
        return _Features(src, src_sm, features)

    def _recurrent_step(self, batch: _Features) -> _Decoded:
        """Run the recurrent decoder frame by frame, carrying the state (ONNX Runtime)."""
        rec = self._state_for_size(*batch.src.shape[-2:])
        session = self._recurrent_session = self._sized(self._recurrent_session, RecurrentSession, batch.src_sm)
        decoded = []
        for t, features in enumerate(batch.features):
            fgr_residual, pha, hid, rec = session.run(batch.src_sm[t : t + 1], features, rec)  # type: ignore[assignment]
            decoded.append((fgr_residual, pha, hid))
        self._state = RecurrentState.from_list(rec)
        return _Decoded(batch.src, batch.src_sm, decoded)

    def _sized(self, session: _SessionT | None, kind: type[_SessionT], src_sm: Tensor) -> _SessionT:
        """``session`` if it was made for ``src_sm``'s size, else a new ``kind`` session for it."""
        height, width = src_sm.shape[-2:]
        if session is None or (session.height, session.width) != (height, width):
            session = kind(self.model, height, width, threads=self._step_threads)
        return session

    def _refine_step(self, batch: _Decoded) -> MatteBatch:
        """Bring each frame's low-resolution result to full size with the refiner (PyTorch)."""
        fgrs: list[Tensor] = []
        phas: list[Tensor] = []
        with torch.inference_mode():
            for t, (fgr_residual, pha, hid) in enumerate(batch.decoded):
                fgr, pha = self.model.full_res(batch.src[t : t + 1], batch.src_sm[t : t + 1], fgr_residual, pha, hid)
                fgrs.append(fgr)
                phas.append(pha)
        if len(fgrs) == 1:
            return MatteBatch(fgr=fgrs[0], pha=phas[0])
        return MatteBatch(fgr=torch.cat(fgrs), pha=torch.cat(phas))


@dataclass(frozen=True, slots=True, eq=False)
class _Features:
    """Frames after the stateless part of the network.

    Shape:
        src: ``[T, 3, H, W]``; src_sm: ``[T, 3, h, w]``; features: ``f1..f4`` per frame.
    """

    src: Tensor
    src_sm: Tensor
    features: list[list[Tensor]]


@dataclass(frozen=True, slots=True, eq=False)
class _Decoded:
    """Frames after the recurrent decoder.

    Shape:
        src: ``[T, 3, H, W]``; src_sm: ``[T, 3, h, w]``; decoded: ``(fgr_residual, pha, hid)``
        per frame at the downsampled size.
    """

    src: Tensor
    src_sm: Tensor
    decoded: list[tuple[Tensor, Tensor, Tensor]]


def open_matter(
    weights: str | os.PathLike[str] | None = None,
    options: EngineOptions | None = None,
    *,
    variant: str | None = None,
    refiner: str | None = None,
) -> Matter:
    """Find and read the weights, build the model, and put it on its device.

    Args:
        weights: Weights file or tfjs folder; None looks in the usual places
            (see :func:`~rvm_render.engine.weights.resolve_weights_path`).
        variant: Require this variant (``"mobilenetv3"`` or ``"resnet50"``).
        refiner: Refiner to use; None takes the one the weights carry.

    Raises:
        WeightsError: Missing, corrupt, or wrong-variant weights.
        ConfigError: Unusable device or precision.
    """
    options = options or EngineOptions()
    started = time.perf_counter()
    device = resolve_device(options.device)
    bring_up = _DeviceBringUp(device, _dtype(resolve_precision(options.precision, device)))
    loaded = read_weights(resolve_weights_path(weights))
    model = network_for_weights(loaded, variant=variant, refiner=refiner)
    log.info("weights '%s': RVM %s, %s, sha256 %s", loaded.path, loaded.variant, model.refiner_name, loaded.sha256[:12])
    built = time.perf_counter()
    bring_up.wait()
    matter = Matter(model, options, weights_sha256=loaded.sha256)
    log.info("engine ready on %s in %.2f s: weights read and network built in %.2f s%s", device,
             time.perf_counter() - started, built - started, bring_up.report())  # fmt: skip
    return matter


class _DeviceBringUp:
    """A CUDA device's slow first steps, run on a thread while the weights are read (module doc).

    Context creation, loading cuDNN and its kernels for a first convolution in the network's
    dtype, and the caching allocator's first blocks take seconds on a GPU node; none of them
    needs the weights. Off CUDA there is nothing to do.
    """

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype
        self.seconds: float | None = None
        self.error: Exception | None = None
        self._thread: threading.Thread | None = None
        if device.type == "cuda":
            self._thread = threading.Thread(target=self._run, name="rvm-cuda-bring-up", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                x = torch.zeros((1, 3, 32, 32), device=self.device, dtype=self.dtype)
                weight = torch.zeros((16, 3, 3, 3), device=self.device, dtype=self.dtype)
                torch.nn.functional.conv2d(x.contiguous(memory_format=torch.channels_last), weight, padding=1)
                torch.cuda.synchronize(self.device)
        except Exception as err:  # the Matter's own first use of the device fails too, and names the device
            self.error = err
        self.seconds = time.perf_counter() - started

    def wait(self) -> None:
        """Join the bring-up; a failure there is left for the engine's own first use of the device to raise."""
        if self._thread is not None:
            self._thread.join()
            if self.error is not None:
                log.debug("CUDA bring-up failed (%s); the engine's first use of the device reports it", self.error)

    def report(self) -> str:
        """``"; cuda context, cuDNN and allocator up in N s, alongside"`` on CUDA, else nothing."""
        if self.seconds is None:
            return ""
        return f"; {self.device} context, cuDNN and allocator up in {self.seconds:.2f} s, alongside"


class PlanningMatter(Matter):
    """What planning reads of an engine (weights digest and variant, options, downsample ratio), without a network.

    A process whose segments render elsewhere (the daemon over Ray, whose actors open their own
    Matter) plans with it and holds no model. Matting with it is a bug and raises.
    """

    def __init__(self, weights_sha256: str, variant: str, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self.device = resolve_device(self.options.device)
        self.precision = resolve_precision(self.options.precision, self.device)
        self.variant, self.refiner, self.weights_sha256 = variant, None, weights_sha256

    def steps(self) -> tuple[Callable[[Any], Any], ...]:
        raise RuntimeError("a PlanningMatter plans only; open_matter() gives an engine that mattes")

    def matte(self, src: Tensor) -> MatteBatch:
        raise RuntimeError("a PlanningMatter plans only; open_matter() gives an engine that mattes")


def open_planning_matter(weights: str | os.PathLike[str] | None = None, options: EngineOptions | None = None,
                         variant: str | None = None) -> PlanningMatter:  # fmt: skip
    """Find and read the weights for their digest and variant; build no network (see :class:`PlanningMatter`).

    Args:
        variant: Require this variant, as :func:`open_matter` does.

    Raises:
        WeightsError: Missing, corrupt, or wrong-variant weights.
        ConfigError: Unusable device or precision.
    """
    loaded = read_weights(resolve_weights_path(weights))
    check_variant(loaded, variant)
    log.info("weights '%s': RVM %s, sha256 %s (to plan with; no network here)", loaded.path, loaded.variant,
             loaded.sha256[:12])  # fmt: skip
    return PlanningMatter(loaded.sha256, loaded.variant, options)


def load_model(
    weights: str | os.PathLike[str] | None = None,
    variant: str | None = None,
    refiner: str | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> nn.Module:
    """The RVM MattingNetwork (official layout, eval mode) with weights, on its device.

    Same weight lookup and errors as :func:`open_matter`; call it as the official model:
    ``fgr, pha, *rec = model(src, *rec, downsample_ratio=0.25)``.
    """
    resolved = resolve_device(device)
    dtype = _dtype(resolve_precision(precision, resolved))
    model = network_for_weights(read_weights(resolve_weights_path(weights)), variant=variant, refiner=refiner)
    return model.to(device=resolved, dtype=dtype).eval()
