"""Read a Piper voice's `.onnx` file into named weights and per-module conv attributes.

Piper exports VITS with `torch.onnx.export`: most parameters keep their PyTorch names
(`enc_p.proj.weight`), but weights that were still under weight-norm at export time are folded
into constants with generated names (`onnx::Conv_8168`), and a few parameters are folded into
the value that uses them (`dp.flows.0.logs` becomes `/dp/flows.0/Exp_output_0` = exp(-logs)).
Generated names are mapped through the node that consumes them: node names carry the module
path (`/flow/flows.6/enc/in_layers.0/Conv` -> `flow.flows.6.enc.in_layers.0.weight`).

This module needs only `onnx` and `numpy` (no torch).

Thread: any (pure function of a file). RT-safe: no.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autovoice.errors import VoiceError

__all__ = ["ConvAttrs", "OnnxWeights", "read_onnx_weights"]

PIPER_INPUTS = ("input", "input_lengths", "scales")
"""Graph inputs every Piper voice has (multi-speaker voices add `sid`)."""

_PARAM_NAME = re.compile(r"^[A-Za-z_]\w*(\.\w+)+$")
_CONV_OPS = ("Conv", "ConvTranspose")


@dataclass(frozen=True)
class ConvAttrs:
    """Attributes of one Conv/ConvTranspose node, as the graph runs it.

    Attributes:
        stride: Stride in frames.
        dilation: Dilation in frames.
        pads: (left, right) zero padding in frames.
        groups: Number of groups (channels for a depthwise conv).
    """

    stride: int
    dilation: int
    pads: tuple[int, int]
    groups: int


@dataclass
class OnnxWeights:
    """The parameters of a Piper voice, keyed by PyTorch module path.

    Attributes:
        tensors: Parameter name (`enc_p.proj.weight`) -> float32 array.
        sources: Parameter name -> the ONNX initializer it came from (for error messages).
        convs: Module path (`dec.ups.0`) -> attributes of the node that runs it.
        graph_inputs: Names of the graph's inputs.
    """

    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    convs: dict[str, ConvAttrs] = field(default_factory=dict)
    graph_inputs: tuple[str, ...] = ()


def _module_path(node_name: str) -> str:
    """`/flow/flows.6/enc/in_layers.0/Conv` -> `flow.flows.6.enc.in_layers.0` ("" if none)."""
    parts = [p for p in node_name.split("/") if p]
    return ".".join(parts[:-1])


def _conv_attrs(node) -> ConvAttrs:
    import onnx

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    pads = list(attrs.get("pads", [0, 0]))
    if len(pads) != 2:
        raise ValueError(f"node {node.name}: expected 1-D conv pads, got {pads}")
    strides = list(attrs.get("strides", [1]))
    dilations = list(attrs.get("dilations", [1]))
    return ConvAttrs(
        stride=int(strides[0]),
        dilation=int(dilations[0]),
        pads=(int(pads[0]), int(pads[1])),
        groups=int(attrs.get("group", 1)),
    )


def _slot_name(node, input_index: int, array: np.ndarray) -> tuple[str, str] | None:
    """Parameter name an initializer takes when used as input `input_index` of `node`.

    Returns (name, transform) or None when this use is not a parameter slot.
    """
    path = _module_path(node.name)
    if node.op_type in _CONV_OPS and input_index in (1, 2):
        return (path + (".weight" if input_index == 1 else ".bias"), "")
    if node.op_type == "Gather" and input_index == 0 and array.ndim == 2:
        return (path + ".weight", "")  # nn.Embedding
    if path == "dp.flows.0" and array.size == 2:
        # ElementwiseAffine in reverse: (x - m) * exp(-logs), folded to exp(-logs) or -logs.
        if node.op_type == "Mul":
            return (path + ".logs", "neg_log")
        if node.op_type == "Exp":
            return (path + ".logs", "neg")
    return None


def read_onnx_weights(model_path: Path) -> OnnxWeights:
    """Load a Piper `.onnx` voice and name its weights by module path.

    Args:
        model_path: The voice's `.onnx` file.

    Returns:
        The weights, their sources and the conv attributes.

    Raises:
        VoiceError: The file is missing, not ONNX, not a Piper voice, or a weight cannot be
            given a module path (the message names the initializer).
    """
    import onnx
    from onnx import numpy_helper

    voice = str(model_path)
    if not Path(model_path).is_file():
        raise VoiceError(voice, "model file not found")
    try:
        model = onnx.load(str(model_path))
    except Exception as e:  # protobuf DecodeError, truncated file, ...
        raise VoiceError(voice, f"not a readable ONNX file ({type(e).__name__}: {e})") from e
    graph = model.graph
    inputs = tuple(i.name for i in graph.input)
    missing = [n for n in PIPER_INPUTS if n not in inputs]
    if missing or "output" not in [o.name for o in graph.output]:
        raise VoiceError(
            voice,
            f"not a Piper VITS voice: graph inputs {list(inputs)}, outputs "
            f"{[o.name for o in graph.output]} (expected inputs {list(PIPER_INPUTS)} "
            "[+ sid] and output 'output')",
        )

    consumers: dict[str, list[tuple[object, int]]] = defaultdict(list)
    out = OnnxWeights(graph_inputs=inputs)
    for node in graph.node:
        for idx, name in enumerate(node.input):
            consumers[name].append((node, idx))
        if node.op_type in _CONV_OPS:
            path = _module_path(node.name)
            if path:
                try:
                    out.convs[path] = _conv_attrs(node)
                except ValueError as e:
                    raise VoiceError(voice, str(e)) from e

    weight_g: dict[str, np.ndarray] = {}
    weight_v: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        try:
            array = numpy_helper.to_array(init)
        except Exception as e:
            raise VoiceError(voice, f"initializer {init.name!r} cannot be read: {e}") from e
        if not np.issubdtype(array.dtype, np.floating):
            continue  # shapes, indices, axes: graph constants
        name = init.name
        if _PARAM_NAME.match(name):
            if name.endswith(".weight_g"):
                weight_g[name[: -len("_g")]] = array
                continue
            if name.endswith(".weight_v"):
                weight_v[name[: -len("_v")]] = array
                continue
            _add(out, voice, name, array.astype(np.float32), name)
            continue
        slots = set()
        for node, idx in consumers.get(name, []):
            slot = _slot_name(node, idx, array)
            if slot is not None:
                slots.add(slot)
        if not slots:
            continue  # a folded graph constant (scalars, masks), not a weight
        if len(slots) > 1:
            raise VoiceError(voice, f"weight {name!r} feeds several modules: {sorted(slots)}")
        ((param, transform),) = slots
        if param.startswith("."):
            raise VoiceError(
                voice, f"weight {name!r} cannot be mapped: its node has no module path"
            )
        if transform == "neg_log":
            if np.any(array <= 0):
                raise VoiceError(voice, f"weight {name!r} ({param}): exp(-logs) must be > 0")
            array = -np.log(array.astype(np.float64))
        elif transform == "neg":
            array = -array
        _add(out, voice, param, array.astype(np.float32), name)

    for name, v in weight_v.items():
        g = weight_g.pop(name, None)
        if g is None:
            raise VoiceError(voice, f"weight {name}_v has no matching {name}_g")
        norm = np.sqrt(
            np.sum(v.astype(np.float64) ** 2, axis=tuple(range(1, v.ndim)), keepdims=True)
        )
        _add(out, voice, name, (g * v / norm).astype(np.float32), name + "_v")
    if weight_g:
        raise VoiceError(voice, f"weight {next(iter(weight_g))}_g has no matching _v")
    if not out.tensors:
        raise VoiceError(voice, "not a Piper VITS voice: no named weights found")
    return out


def _add(out: OnnxWeights, voice: str, name: str, array: np.ndarray, source: str) -> None:
    if name in out.tensors:
        raise VoiceError(
            voice, f"weight {name} appears twice (from {out.sources[name]!r} and {source!r})"
        )
    out.tensors[name] = array
    out.sources[name] = source
