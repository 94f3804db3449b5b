"""Read the published RVM TensorFlow.js graph model into the official PyTorch state_dict layout.

The tfjs files (``model.json`` + ``group*-shard*of*.bin``, format: TensorFlow.js converter
"graph-model") hold every graph constant in ``weightsManifest`` order. Float tensors may be
quantized: ``value = q * scale + min`` (uint8/uint16) or stored as float16.

Mapping rule (graph structure, then creation order):

1. Every convolution node of the graph (``Conv2D``, ``_FusedConv2D``, ``DepthwiseConv2dNative``,
   ``FusedDepthwiseConv2dNative``) names its filter tensor; its bias is the fused ``BiasAdd``
   argument (the folded BatchNorm offset, or a real bias). A BatchNorm the converter did not
   fold shows up as ``Mul(Scaled)`` -> ``Add(Offset)`` after the (dilated) conv.
2. Keras names layers ``conv2d_N`` / ``depthwise_conv2d_N`` in creation order, which is the
   module order of the official PyTorch model. Regular and depthwise convs, sorted by N, are
   paired with the PyTorch ``nn.Conv2d`` modules (``groups == 1`` and ``groups > 1``) in
   ``named_modules()`` order. Shapes and roles (bias / BatchNorm / neither) must agree.
3. Folded BatchNorms: the folded kernel goes into the conv and the BatchNorm becomes an exact
   identity plus bias (weight 1, bias = offset, running_mean 0, running_var = 1 - eps so that
   ``1 / sqrt(var + eps) == 1``).

Every tfjs tensor must be used: conv/BN parameters by the mapping, the rest are graph
plumbing (int32/bool shapes and axes) or fixed constants of the architecture (hard-swish 3
and 1/6, clip bounds, ImageNet mean and 1/std, guided-filter eps and box kernels), which are
checked. The tfjs model has no segmentation head: ``project_seg`` is filled with zeros.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rvm_render.engine.weights import tfjs_model_json
from rvm_render.errors import WeightsError
from rvm_render.model import MattingNetwork
from rvm_render.model.mobilenetv3 import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["tfjs_to_state_dict", "read_tfjs_tensors", "tfjs_model_json", "TfjsTensor"]

log = logging.getLogger(__name__)

_CONV_OPS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_DEPTHWISE_OPS = {"DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_PASS_THROUGH_OPS = {"BatchToSpaceND", "Identity"}
_KERAS_CONV_LAYER = re.compile(r"^(depthwise_)?conv2d(?:_(\d+))?$")
_ABSENT_FROM_TFJS = ("project_seg.",)
_GUIDED_FILTER_EPS = 1e-5
_CONSTANT_MAX_ELEMENTS = 12

_QUANTIZED_DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
_RAW_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


@dataclass(frozen=True, slots=True)
class TfjsTensor:
    """One ``weightsManifest`` entry, dequantized."""

    name: str
    dtype: str
    value: np.ndarray


@dataclass(frozen=True, slots=True)
class _GraphConv:
    """A convolution of the tfjs graph and the tensors that parameterise it."""

    node: str
    depthwise: bool
    order: int
    filter: str
    bias: str | None
    bn_scale: str | None
    bn_offset: str | None


def read_tfjs_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, TfjsTensor], list[dict]]:
    """Read and dequantize every weight of a tfjs graph model.

    Args:
        path: ``model.json`` or the folder holding it.

    Returns:
        The tensors by name (manifest order) and the graph nodes of ``modelTopology``.

    Raises:
        WeightsError: Missing or unreadable files, an unknown dtype, or a short shard.
    """
    model_json = tfjs_model_json(path)
    try:
        manifest = json.loads(model_json.read_text(encoding="utf-8"))
        groups = manifest["weightsManifest"]
        nodes = manifest["modelTopology"]["node"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise WeightsError(f"cannot load tfjs weights '{model_json}': not a TensorFlow.js graph model ({err})") from err

    tensors: dict[str, TfjsTensor] = {}
    for group in groups:
        try:
            data = b"".join((model_json.parent / shard).read_bytes() for shard in group["paths"])
        except OSError as err:
            raise WeightsError(f"cannot load tfjs weights '{model_json}': missing shard ({err})") from err
        offset = 0
        for entry in group["weights"]:
            tensor, offset = _decoded_entry(entry, data, offset, model_json)
            tensors[tensor.name] = tensor
        if offset != len(data):
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': shards hold {len(data)} bytes, manifest describes {offset}"
            )
    return tensors, nodes


def _decoded_entry(entry: dict, data: bytes, offset: int, model_json: Path) -> tuple[TfjsTensor, int]:
    name, dtype, shape = entry["name"], entry["dtype"], tuple(entry["shape"])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    quantization = entry.get("quantization")
    stored = quantization["dtype"] if quantization is not None else dtype
    itemsize = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4, "int32": 4, "bool": 1}.get(stored)
    if itemsize is None or (quantization is None and dtype not in _RAW_DTYPES):
        raise WeightsError(f"cannot load tfjs weights '{model_json}': {name}: unsupported dtype {stored!r}")
    size = itemsize * count
    if offset + size > len(data):
        raise WeightsError(f"cannot load tfjs weights '{model_json}': shard ends inside {name}; re-copy the model")
    if quantization is None:
        value = np.frombuffer(data, _RAW_DTYPES[dtype], count, offset).copy()
    elif stored == "float16":
        value = np.frombuffer(data, np.float16, count, offset).astype(np.float32)
    else:
        raw = np.frombuffer(data, _QUANTIZED_DTYPES[stored], count, offset)
        # As TensorFlow.js: computed in double precision, stored as float32.
        value = (raw * float(quantization["scale"]) + float(quantization["min"])).astype(np.float32)
    return TfjsTensor(name, dtype, value.reshape(shape)), offset + size


def _input_name(ref: str) -> str:
    """Graph input reference -> node name (drops the output index and control marker)."""
    return ref.lstrip("^").split(":")[0]


def _keras_layer_order(filter_name: str) -> tuple[bool, int]:
    """(is depthwise, N) from the Keras layer scope ``conv2d_N`` / ``depthwise_conv2d_N``."""
    for part in reversed(filter_name.split("/")):
        match = _KERAS_CONV_LAYER.match(part)
        if match:
            return match.group(1) is not None, int(match.group(2) or 0)
    raise WeightsError(f"cannot map tfjs tensor {filter_name!r}: no Keras conv layer scope in its name")


def _graph_convs(nodes: list[dict], tensors: dict[str, TfjsTensor]) -> list[_GraphConv]:
    """Every convolution of the graph with its filter, bias, and unfolded BatchNorm tensors."""
    consumers: dict[str, list[dict]] = {}
    for node in nodes:
        for ref in node.get("input", []):
            if not ref.startswith("^"):
                consumers.setdefault(_input_name(ref), []).append(node)

    def constant_operand(node: dict) -> str | None:
        names = [_input_name(ref) for ref in node.get("input", []) if not ref.startswith("^")]
        weights = [name for name in names if name in tensors]
        return weights[0] if len(weights) == 1 else None

    convs: list[_GraphConv] = []
    for node in nodes:
        if node["op"] not in _CONV_OPS:
            continue
        inputs = [_input_name(ref) for ref in node["input"] if not ref.startswith("^")]
        filter_name = inputs[1]
        if filter_name not in tensors:
            # A kernel computed or routed at run time (the guided filter's box kernels enter
            # its cond branch this way): not a learned parameter; the kernels are checked
            # with the other constants.
            continue
        bias = bn_scale = bn_offset = None
        if node["op"].startswith(("_Fused", "Fused")):
            fused = [base64.b64decode(op).decode() for op in node["attr"]["fused_ops"]["list"]["s"]]
            if not fused or fused[0] != "BiasAdd":
                raise WeightsError(f"cannot map tfjs conv {node['name']!r}: unsupported fused ops {fused}")
            bias = inputs[2]
        else:
            nxt = consumers.get(node["name"], [])
            while len(nxt) == 1 and nxt[0]["op"] in _PASS_THROUGH_OPS:
                nxt = consumers.get(nxt[0]["name"], [])
            if len(nxt) == 1 and nxt[0]["op"] == "Mul" and constant_operand(nxt[0]):
                after = consumers.get(nxt[0]["name"], [])
                if len(after) == 1 and after[0]["op"] in ("Add", "AddV2") and constant_operand(after[0]):
                    bn_scale, bn_offset = constant_operand(nxt[0]), constant_operand(after[0])
            elif len(nxt) == 1 and nxt[0]["op"] in ("BiasAdd", "Add", "AddV2") and constant_operand(nxt[0]):
                bias = constant_operand(nxt[0])
        depthwise, order = _keras_layer_order(filter_name)
        if depthwise != (node["op"] in _DEPTHWISE_OPS):
            raise WeightsError(f"cannot map tfjs conv {node['name']!r}: layer name and op disagree on depthwise")
        convs.append(_GraphConv(node["name"], depthwise, order, filter_name, bias, bn_scale, bn_offset))
    return convs


def _torch_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d, str | None]]:
    """(name, conv, name of the BatchNorm right after it in its Sequential) in module order."""
    following_bn: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    following_bn[f"{name}.{conv_name}"] = f"{name}.{bn_name}"
    return [
        (name, module, following_bn.get(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and not name.startswith(_ABSENT_FROM_TFJS)
    ]


def _torch_kernel(value: np.ndarray, depthwise: bool) -> Tensor:
    """HWIO -> OIHW; depthwise ``[kh, kw, C, M]`` -> ``[C*M, 1, kh, kw]``."""
    kernel = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if depthwise:
        kh, kw, channels, multiplier = kernel.shape
        return kernel.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw).contiguous()
    return kernel.permute(3, 2, 0, 1).contiguous()


def identity_running_var(eps: float, channels: int) -> Tensor:
    """A running variance ``v`` with ``1 / sqrt(v + eps) == 1`` exactly in float32."""
    var = torch.full((channels,), 1.0 - eps, dtype=torch.float32)
    while bool((torch.rsqrt(var + eps) != 1).any()):  # pragma: no cover - float32 rounding guard
        var = torch.nextafter(var, torch.zeros_like(var))
    return var


def _set_batchnorm(
    state: dict[str, Tensor], prefix: str, bn: nn.BatchNorm2d, scale: Tensor | None, offset: Tensor
) -> None:
    channels = bn.num_features
    state[f"{prefix}.weight"] = torch.ones(channels) if scale is None else scale
    state[f"{prefix}.bias"] = offset
    state[f"{prefix}.running_mean"] = torch.zeros(channels)
    state[f"{prefix}.running_var"] = identity_running_var(bn.eps, channels)
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)


def _check_constants(unused: dict[str, TfjsTensor], model_json: Path) -> None:
    """Leftover float tensors must be the architecture's fixed constants; checked where known."""
    step = 2e-3  # one uint8 quantization step of the normalisation constants, with margin
    references = {
        "ImageNet mean": np.array(IMAGENET_MEAN),
        "ImageNet 1/std": 1 / np.array(IMAGENET_STD),
    }
    for tensor in unused.values():
        if tensor.dtype != "float32":
            continue  # int32/bool: shapes, axes, paddings, switch predicates
        if tensor.value.size > _CONSTANT_MAX_ELEMENTS:
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': tensor {tensor.name!r} {list(tensor.value.shape)} "
                "is not used by the RVM MobileNetV3 layout; is this an RVM model?"
            )
        if tensor.value.size == 3 and not any(np.allclose(tensor.value, ref, atol=step) for ref in references.values()):
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': input normalisation {tensor.value.tolist()} "
                "is not ImageNet's; is this an RVM model?"
            )
        if tensor.value.ndim == 4 and not np.allclose(tensor.value, 1 / 3):
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': box filter kernel {tensor.name!r} is not a 3-tap mean"
            )
        if tensor.name.endswith("fast_guided_filter/add/y") and not np.isclose(
            float(tensor.value), _GUIDED_FILTER_EPS, rtol=1e-3
        ):
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': guided filter eps {float(tensor.value)} != 1e-5"
            )


def tfjs_to_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Convert the published RVM MobileNetV3 tfjs model into an official-layout state_dict.

    The result loads with ``strict=True`` into ``MattingNetwork("mobilenetv3", "fast_guided_filter")``
    (or ``"deep_guided_filter"`` minus its ``refiner.*`` keys). ``project_seg`` is zero.

    Args:
        path: ``model.json`` or the folder holding it.

    Returns:
        float32 CPU tensors by official key.

    Raises:
        WeightsError: Unreadable files, or a graph that does not map one to one onto RVM.
    """
    model_json = tfjs_model_json(path)
    tensors, nodes = read_tfjs_tensors(model_json)
    convs = _graph_convs(nodes, tensors)
    target = MattingNetwork("mobilenetv3", "fast_guided_filter")
    torch_convs = _torch_convs(target)

    state: dict[str, Tensor] = {}
    consumed: set[str] = set()
    for depthwise in (False, True):
        graph_side = sorted((c for c in convs if c.depthwise == depthwise), key=lambda c: c.order)
        torch_side = [t for t in torch_convs if (t[1].groups > 1) == depthwise]
        kind = "depthwise" if depthwise else "regular"
        if len(graph_side) != len(torch_side):
            raise WeightsError(
                f"cannot load tfjs weights '{model_json}': {len(graph_side)} {kind} convolutions, "
                f"RVM MobileNetV3 has {len(torch_side)}; is this an RVM model?"
            )
        for graph_conv, (name, conv, bn_name) in zip(graph_side, torch_side):
            _map_conv(graph_conv, name, conv, bn_name, tensors, target, state, model_json)
            consumed.update(
                n for n in (graph_conv.filter, graph_conv.bias, graph_conv.bn_scale, graph_conv.bn_offset) if n
            )

    for key, value in target.state_dict().items():
        if key.startswith(_ABSENT_FROM_TFJS):
            state[key] = torch.zeros_like(value)
    missing = sorted(set(target.state_dict()) - set(state))
    if missing:
        raise WeightsError(
            f"cannot load tfjs weights '{model_json}': no tfjs tensor for {missing[:3]} ({len(missing)} keys)"
        )
    _check_constants({n: t for n, t in tensors.items() if n not in consumed}, model_json)
    log.debug("tfjs weights '%s': %d tensors mapped onto %d keys", model_json, len(consumed), len(state))
    return {key: state[key] for key in target.state_dict()}


def _map_conv(
    graph_conv: _GraphConv,
    name: str,
    conv: nn.Conv2d,
    bn_name: str | None,
    tensors: dict[str, TfjsTensor],
    target: nn.Module,
    state: dict[str, Tensor],
    model_json: Path,
) -> None:
    def fail(problem: str) -> WeightsError:
        return WeightsError(f"cannot load tfjs weights '{model_json}': {graph_conv.node} -> {name}: {problem}")

    def vector(tensor_name: str, size: int) -> Tensor:
        value = torch.from_numpy(np.ascontiguousarray(tensors[tensor_name].value, dtype=np.float32))
        if tuple(value.shape) != (size,):
            raise fail(f"{tensor_name} has shape {list(value.shape)}, expected [{size}]")
        return value

    kernel = _torch_kernel(tensors[graph_conv.filter].value, graph_conv.depthwise)
    if kernel.shape != conv.weight.shape:
        raise fail(f"kernel shape {list(kernel.shape)} != {list(conv.weight.shape)}")
    state[f"{name}.weight"] = kernel
    out_channels = conv.out_channels
    has_bn_terms = graph_conv.bn_scale is not None
    if bn_name is not None:
        bn = target.get_submodule(bn_name)
        assert isinstance(bn, nn.BatchNorm2d)
        if has_bn_terms:
            scale = vector(graph_conv.bn_scale, out_channels)  # type: ignore[arg-type]
            _set_batchnorm(state, bn_name, bn, scale, vector(graph_conv.bn_offset, out_channels))  # type: ignore[arg-type]
        elif graph_conv.bias is not None:
            _set_batchnorm(state, bn_name, bn, None, vector(graph_conv.bias, out_channels))
        else:
            raise fail("the BatchNorm has neither a folded offset nor Scaled/Offset tensors")
    elif conv.bias is not None:
        if graph_conv.bias is None or has_bn_terms:
            raise fail("expected a plain bias")
        state[f"{name}.bias"] = vector(graph_conv.bias, out_channels)
    elif graph_conv.bias is not None or has_bn_terms:
        raise fail("tfjs has a bias where RVM has none")
