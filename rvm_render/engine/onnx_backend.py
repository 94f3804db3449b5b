"""The per-frame RVM network run by ONNX Runtime on the CPU, in two parts.

On a CPU, ONNX Runtime runs the exported network faster than eager PyTorch (measured in
``bench/matte_speed.py``): its NCHWc convolution kernels fuse the activations, and its thread
pool does not spin (spinning starves the decode and encode threads that share the cores).

The low-resolution network is exported as two graphs, so that a pipeline can overlap them:

* ``features`` (:meth:`MattingNetwork.features`: encoder and LR-ASPP) holds no state, so frame
  ``t + 1`` can run while the decoder is still on frame ``t``;
* ``recurrent`` (:meth:`MattingNetwork.recurrent`: ConvGRU decoder and projection) carries
  ``r1..r4`` and runs strictly in frame order.

The downsampling and the full-resolution refiner stay in PyTorch
(:meth:`MattingNetwork.full_res`). The guided filter divides by the local variance of the
guide, which amplifies rounding differences: run in ONNX Runtime, it moved the golden fgr by up
to 2.3e-3 (bound 2e-3); in PyTorch the whole path stays within 3.3e-4.

Each part is exported (TorchScript exporter, ``torch.onnx.export(dynamo=False)``) for one
downsampled size, then :func:`split_concat_convs` and :func:`route_resizes_through_nchwc`
rewrite it so that ONNX Runtime keeps the decoder in its fast NCHWc layout (see there). The
first frame's state is zeros of the right shapes, which is what the model's ConvGRUs use when
given None. Exports are cached in
``$XDG_CACHE_HOME/rvm_render/onnx/`` (``~/.cache/...``), named by the variant, a digest of the
network's parameters, the size, the part and :data:`EXPORT_VERSION`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rvm_render.errors import ConfigError

__all__ = [
    "EXPORT_VERSION",
    "FeaturesSession",
    "RecurrentSession",
    "onnx_cache_dir",
    "onnxruntime_available",
    "require_onnxruntime",
    "route_resizes_through_nchwc",
    "split_concat_convs",
]

log = logging.getLogger(__name__)

#: Bump when the exported graphs change for the same weights (invalidates cached exports).
EXPORT_VERSION = 3
OPSET = 17
#: Channel counts ONNX Runtime's NCHWc convolutions take whole (its SIMD block is 8 or 16).
NCHWC_CHANNEL_MULTIPLE = 8
_FEATURES = ("f1", "f2", "f3", "f4")
_STATE_IN = ("r1i", "r2i", "r3i", "r4i")
_RECURRENT_OUT = ("fgr_residual", "pha", "hid", "r1o", "r2o", "r3o", "r4o")


def onnxruntime_available() -> bool:
    """True when the ``onnxruntime`` package can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def require_onnxruntime() -> None:
    """Raises ConfigError naming the packages to install when ONNX Runtime is missing."""
    if not onnxruntime_available():
        raise ConfigError(
            "backend: 'onnxruntime' needs the onnxruntime and onnx packages; "
            "pip install onnxruntime onnx, or use backend 'torch' (--backend torch)"
        )


def onnx_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rvm_render/onnx`` (``~/.cache/rvm_render/onnx`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rvm_render" / "onnx"


class _Features(nn.Module):
    """``model.features`` as an exportable module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src_sm: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.features(src_sm))


class _Recurrent(nn.Module):
    """``model.recurrent`` as an exportable module, the state as plain tensor inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src_sm: Tensor, *features_and_state: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.recurrent(src_sm, *features_and_state))


def _parameters_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def split_concat_convs(graph_model: object) -> int:
    """Rewrite ``Conv(Concat(x1..xn))`` as ``Conv1(x1) + .. + Convn(xn)`` where the channels misalign.

    RVM's decoder convolves ``[upsampled, skip, image]`` concatenations of 35, 59, 107 and 171
    channels. ONNX Runtime's NCHWc convolutions need input channels that are a multiple of its
    SIMD block or fewer than one block, so these fell back to a plain convolution about twice
    as slow. Split along the weight's input channels, each part qualifies (32 + 3, 40 + 16 + 3,
    ...) and ONNX Runtime fuses the sum and the activation into the convolutions. The result
    equals the original up to float rounding of the sum.

    Args:
        graph_model: An ``onnx.ModelProto``, rewritten in place.

    Returns:
        The number of convolutions split.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = graph_model.graph  # type: ignore[attr-defined]
    channels = _channels(onnx.shape_inference.infer_shapes(graph_model))
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    def splittable(conv: object) -> bool:
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}  # type: ignore[attr-defined]
        concat = producers.get(conv.input[0])  # type: ignore[attr-defined]
        weight = initializers.get(conv.input[1])  # type: ignore[attr-defined]
        return (
            attributes.get("group", 1) == 1
            and weight is not None
            and weight.dims[1] % NCHWC_CHANNEL_MULTIPLE != 0
            and concat is not None
            and concat.op_type == "Concat"
            and helper.get_attribute_value(concat.attribute[0]) in (1, -3)
            and uses[concat.output[0]] == 1
            and all(channels.get(name, 0) > 0 for name in concat.input)
        )

    nodes: list[object] = []
    removed: set[str] = set()
    for conv in graph.node:
        if conv.op_type != "Conv" or not splittable(conv):
            nodes.append(conv)
            continue
        concat = producers[conv.input[0]]
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        parts, start = [], 0
        for index, name in enumerate(concat.input):
            width = channels[name]
            part_weight = numpy_helper.from_array(
                np.ascontiguousarray(weight[:, start : start + width]), f"{conv.input[1]}/part{index}"
            )
            graph.initializer.append(part_weight)
            inputs = [name, part_weight.name] + (list(conv.input[2:]) if index == 0 else [])
            parts.append(f"{conv.output[0]}/part{index}")
            nodes.append(helper.make_node("Conv", inputs, [parts[-1]], name=f"{conv.name}/part{index}", **attributes))
            start += width
        total = parts[0]
        for index, part in enumerate(parts[1:], start=1):
            out = conv.output[0] if index == len(parts) - 1 else f"{conv.output[0]}/sum{index}"
            nodes.append(helper.make_node("Add", [total, part], [out], name=f"{conv.name}/sum{index}"))
            total = out
        removed.add(concat.name)
        uses[conv.input[1]] -= 1
    unused_weights = {name for name, count in uses.items() if count == 0}
    kept = [node for node in nodes if node.name not in removed]  # type: ignore[attr-defined]
    split = len(removed)
    if split:
        del graph.node[:]
        graph.node.extend(kept)
        remaining = [t for t in graph.initializer if t.name not in unused_weights]
        del graph.initializer[:]
        graph.initializer.extend(remaining)
    return split


def route_resizes_through_nchwc(graph_model: object) -> int:
    """Feed each bilinear ``Resize`` through an identity depthwise 1x1 ``Conv``, so it runs in NCHWc.

    ONNX Runtime upsamples in its fast NCHWc layout only when the input is already NCHWc, that
    is, produced by a convolution. The decoder upsamples concatenations of GRU outputs instead,
    so each 2x ``Resize`` ran in plain NCHW and its full-size output was then reordered for the
    next convolution. An identity depthwise convolution (weights 1, no bias: exact) moves the
    reorder to the small input and lets ONNX Runtime use its NCHWc upsampler; the decoder took
    10 % less time per frame (1280x720 at ratio 0.375, one thread). Inputs whose channel count
    is not a multiple of :data:`NCHWC_CHANNEL_MULTIPLE` are left alone.

    Args:
        graph_model: An ``onnx.ModelProto``, rewritten in place.

    Returns:
        The number of ``Resize`` nodes rerouted.
    """
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(graph_model)
    graph = graph_model.graph  # type: ignore[attr-defined]
    channels = _channels(inferred)
    producers = {output: node.op_type for node in graph.node for output in node.output}
    nodes: list[object] = []
    rerouted = 0
    for node in graph.node:
        mode = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "mode"), b"nearest")
        source = node.input[0] if node.op_type == "Resize" else ""
        count = channels.get(source, 0)
        if mode == b"linear" and count and count % NCHWC_CHANNEL_MULTIPLE == 0 and producers.get(source) != "Conv":
            weight = numpy_helper.from_array(np.ones((count, 1, 1, 1), np.float32), f"{node.name}/identity_weight")
            graph.initializer.append(weight)
            routed = f"{source}/nchwc"
            identity = helper.make_node(
                "Conv", [source, weight.name], [routed], name=f"{node.name}/identity", group=count, kernel_shape=[1, 1]
            )
            nodes.append(identity)
            node.input[0] = routed
            rerouted += 1
        nodes.append(node)
    if rerouted:
        del graph.node[:]
        graph.node.extend(nodes)
    return rerouted


def _channels(inferred: object) -> dict[str, int]:
    """Channel counts of the 4-D tensors of a shape-inferred ``onnx.ModelProto``, by name."""
    graph = inferred.graph  # type: ignore[attr-defined]
    return {
        info.name: info.type.tensor_type.shape.dim[1].dim_value
        for info in [*graph.value_info, *graph.input]
        if len(info.type.tensor_type.shape.dim) == 4
    }


def _export(module: nn.Module, example: tuple[Tensor, ...], path: Path, inputs: list[str], outputs: list[str]) -> None:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                module, example, temp_name, dynamo=False, opset_version=OPSET, input_names=inputs, output_names=outputs
            )
        graph_model = onnx.load(temp_name)
        split_concat_convs(graph_model)
        route_resizes_through_nchwc(graph_model)
        onnx.save(graph_model, temp_name)
        os.replace(temp_name, path)  # atomic: concurrent exporters each write a whole file
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class _Session(ABC):
    """One exported part of the network at one downsampled size, in an ONNX Runtime session."""

    part: str

    def __init__(self, model: nn.Module, height: int, width: int, *, threads: int) -> None:
        require_onnxruntime()
        import onnxruntime as ort

        self.height, self.width = height, width
        key = _parameters_digest(model)[:16]
        variant = getattr(model, "variant", "model")
        path = onnx_cache_dir() / f"rvm-{variant}-{key}-{width}x{height}-{self.part}-v{EXPORT_VERSION}.onnx"
        if not path.exists():
            log.info("exporting the network's %s for %dx%d (downsampled size) to '%s'", self.part, width, height, path)
            self._export(model, path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = self._session.get_outputs()
        self._output_names = [o.name for o in outputs]
        self._output_shapes = [tuple(int(d) for d in o.shape) for o in outputs]

    @abstractmethod
    def _export(self, model: nn.Module, path: Path) -> None:
        """Export this part of ``model`` for the session's size to ``path``."""

    def _run(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        binding = self._session.io_binding()
        for name, tensor in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(tensor.numpy(), dtype=np.float32))
        outputs = [torch.empty(shape) for shape in self._output_shapes]
        for name, tensor in zip(self._output_names, outputs):
            binding.bind_output(name, "cpu", 0, np.float32, list(tensor.shape), tensor.data_ptr())
        self._session.run_with_iobinding(binding)
        return outputs


class FeaturesSession(_Session):
    """``model.features`` (encoder, LR-ASPP) for one frame at one downsampled size.

    Args:
        model: A MattingNetwork in fp32 on the CPU (e.g. BatchNorm folded); not modified.
        height, width: The downsampled frame size the session is exported for.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ConfigError: onnxruntime is not installed.
    """

    part = "features"

    def _export(self, model: nn.Module, path: Path) -> None:
        example = (torch.rand(1, 3, self.height, self.width),)
        _export(_Features(model), example, path, ["src_sm"], list(_FEATURES))

    def run(self, src_sm: Tensor) -> list[Tensor]:
        """``f1..f4`` of one downsampled frame ``[1, 3, h, w]``, float32 RGB 0..1, contiguous."""
        return self._run({"src_sm": src_sm})


class RecurrentSession(_Session):
    """``model.recurrent`` (ConvGRU decoder, projection) for one frame at one downsampled size.

    Args: as :class:`FeaturesSession`.
    """

    part = "recurrent"

    def _export(self, model: nn.Module, path: Path) -> None:
        src_sm = torch.rand(1, 3, self.height, self.width)
        features = model.features(src_sm)
        *_, r1, r2, r3, r4 = model.recurrent(src_sm, *features, None, None, None, None)
        example = (src_sm, *features, *(torch.zeros(r.shape) for r in (r1, r2, r3, r4)))
        _export(_Recurrent(model), example, path, ["src_sm", *_FEATURES, *_STATE_IN], list(_RECURRENT_OUT))

    def run(
        self, src_sm: Tensor, features: list[Tensor], rec: list[Tensor | None]
    ) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """Run the decoder on one frame.

        Args:
            src_sm: The downsampled frame, float32 RGB 0..1, contiguous on the CPU.
            features: ``f1..f4`` from :meth:`FeaturesSession.run` on the same frame.
            rec: ``[r1, r2, r3, r4]`` from the previous frame, or all None for the first.

        Returns:
            ``fgr_residual``, ``pha`` (unclamped), ``hid`` and the next ``[r1, r2, r3, r4]``.

        Shape:
            src_sm: ``[1, 3, h, w]``; as :meth:`MattingNetwork.recurrent`.
        """
        state_shapes = self._output_shapes[-len(_STATE_IN) :]  # r1o..r4o, the last outputs
        state = [torch.zeros(shape) if r is None else r for r, shape in zip(rec, state_shapes)]
        inputs = dict(zip(["src_sm", *_FEATURES, *_STATE_IN], [src_sm, *features, *state]))
        fgr_residual, pha, hid, *next_state = self._run(inputs)
        return fgr_residual, pha, hid, next_state
