"""The per-frame RVM network run by ONNX Runtime on the CPU.

On a CPU, ONNX Runtime runs the exported MattingNetwork several times faster than eager
PyTorch (measured in ``bench/matte_speed.py``): its NCHWc convolution kernels fuse the
activations, and its thread pool does not spin (spinning starves the decode and encode
threads that share the cores).

ONNX Runtime runs the low-resolution network (:meth:`MattingNetwork.low_res`: encoder,
LR-ASPP, ConvGRU decoder, projection; nearly all the arithmetic); the downsampling and the
full-resolution refiner stay in PyTorch (:meth:`MattingNetwork.full_res`). The guided filter
divides by the local variance of the guide, which amplifies rounding differences: run in ONNX
Runtime, it moved the golden fgr by up to 2.3e-3 (bound 2e-3); in PyTorch the whole path stays
within 3.3e-4.

The low-res network is exported (TorchScript exporter, ``torch.onnx.export(dynamo=False)``) for
one downsampled size: inputs ``src_sm [1, 3, h, w]`` and ``r1i..r4i``, outputs ``fgr_residual``,
``pha``, ``hid`` and ``r1o..r4o``. The first frame's state is zeros of the right shapes, which is
what the model's ConvGRUs use when given None. Exports are cached in
``$XDG_CACHE_HOME/rvm_render/onnx/`` (``~/.cache/...``), named by the variant, a digest of the
network's parameters, the size and :data:`EXPORT_VERSION`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rvm_render.errors import ConfigError

__all__ = ["EXPORT_VERSION", "LowResSession", "onnx_cache_dir", "onnxruntime_available", "require_onnxruntime"]

log = logging.getLogger(__name__)

#: Bump when the exported graph changes for the same weights (invalidates cached exports).
EXPORT_VERSION = 1
OPSET = 17
_INPUTS = ("src_sm", "r1i", "r2i", "r3i", "r4i")
_OUTPUTS = ("fgr_residual", "pha", "hid", "r1o", "r2o", "r3o", "r4o")


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


class _LowResStep(nn.Module):
    """``model.low_res`` as a module with the state as plain tensor inputs (for export)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src_sm: Tensor, r1: Tensor, r2: Tensor, r3: Tensor, r4: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.low_res(src_sm, r1, r2, r3, r4))


def _parameters_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _export(model: nn.Module, path: Path, height: int, width: int) -> None:
    with torch.inference_mode():
        *_, r1, r2, r3, r4 = model.low_res(torch.zeros(1, 3, height, width), None, None, None, None)
    example = (torch.rand(1, 3, height, width), *(torch.zeros(r.shape) for r in (r1, r2, r3, r4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                _LowResStep(model),
                example,
                temp_name,
                dynamo=False,
                opset_version=OPSET,
                input_names=list(_INPUTS),
                output_names=list(_OUTPUTS),
            )
        os.replace(temp_name, path)  # atomic: concurrent exporters each write a whole file
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class LowResSession:
    """An ONNX Runtime session running ``model.low_res`` frame by frame at one downsampled size.

    Args:
        model: A MattingNetwork in fp32 on the CPU (e.g. BatchNorm folded); not modified.
        height, width: The downsampled frame size the session is exported for.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ConfigError: onnxruntime is not installed.
    """

    def __init__(self, model: nn.Module, height: int, width: int, *, threads: int) -> None:
        require_onnxruntime()
        import onnxruntime as ort

        self.height, self.width = height, width
        key = _parameters_digest(model)[:16]
        variant = getattr(model, "variant", "model")
        path = onnx_cache_dir() / f"rvm-{variant}-{key}-{width}x{height}-v{EXPORT_VERSION}.onnx"
        if not path.exists():
            log.info("exporting the network for %dx%d (downsampled size) to '%s'", width, height, path)
            _export(model, path, height, width)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._output_shapes = [tuple(int(d) for d in o.shape) for o in self._session.get_outputs()]
        self._state_shapes = self._output_shapes[3:]

    def run(self, src_sm: Tensor, rec: list[Tensor | None]) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """Run the low-res network on one frame.

        Args:
            src_sm: The downsampled frame, float32 RGB 0..1, contiguous on the CPU.
            rec: ``[r1, r2, r3, r4]`` from the previous frame, or all None for the first.

        Returns:
            ``fgr_residual``, ``pha`` (unclamped), ``hid`` and the next ``[r1, r2, r3, r4]``.

        Shape:
            src_sm: ``[1, 3, h, w]``; as :meth:`MattingNetwork.low_res`.
        """
        binding = self._session.io_binding()
        binding.bind_cpu_input("src_sm", np.ascontiguousarray(src_sm.numpy(), dtype=np.float32))
        state = [
            np.zeros(shape, np.float32) if r is None else np.ascontiguousarray(r.numpy(), dtype=np.float32)
            for r, shape in zip(rec, self._state_shapes)
        ]
        for name, array in zip(_INPUTS[1:], state):
            binding.bind_cpu_input(name, array)
        outputs = [torch.empty(shape) for shape in self._output_shapes]
        for name, tensor in zip(_OUTPUTS, outputs):
            binding.bind_output(name, "cpu", 0, np.float32, list(tensor.shape), tensor.data_ptr())
        self._session.run_with_iobinding(binding)
        fgr_residual, pha, hid, *next_state = outputs
        return fgr_residual, pha, hid, next_state
