"""The benchmark's own quantised ONNX files (which weight MatMuls stay fp32, per tensor or per channel, int8 or
uint8 weights, ``MatMulNBits`` blocks) and what is in a file: its operators, before and after ONNX Runtime's own
graph optimisation."""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import onnx

from simlm_haystack.backends.onnx import _fed_by


def kept_in_fp32(source: Path, chains: list[list[str]]) -> list[str]:
    """The weight MatMuls whose input comes out of one of ``chains`` (as the package's ``quantize_onnx``)."""
    graph = onnx.load(str(source), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and any(_fed_by(node, c, producers) for c in chains)
    ]


def nbits_quantize(source: Path | onnx.ModelProto, path: Path, settings: Mapping[str, Any], **nodes: Any) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(
        source if isinstance(source, onnx.ModelProto) else onnx.load(str(source)),
        bits=settings["bits"],
        block_size=settings["block_size"],
        is_symmetric=True,
        accuracy_level=settings["accuracy_level"],
        **nodes,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(path), False)


def quantize_variant(source: Path, path: Path, settings: Mapping[str, Any]) -> None:
    """Dynamic int8 (``quantize_dynamic``) or ``MatMulNBits`` weights, as ``settings`` says; with
    ``kept_as_nbits`` the MatMuls dynamic int8 leaves in fp32 get ``MatMulNBits`` weights instead."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = kept_in_fp32(source, settings["keep_fp32_fed_by"])
    if settings.get("format") == "MatMulNBits":
        nbits_quantize(source, path, settings, nodes_to_exclude=keep)
        return
    quantize_dynamic(
        source,
        path,
        op_types_to_quantize=["MatMul"],
        per_channel=settings["per_channel"],
        reduce_range=settings.get("reduce_range", False),
        weight_type=QuantType[settings["weight_type"]],
        nodes_to_exclude=keep,
    )
    if settings.get("kept_as_nbits"):
        nbits_quantize(onnx.load(str(path)), path, settings["kept_as_nbits"], nodes_to_include=keep)


def quantized_file_builder(source: Path, settings: Mapping[str, Any]) -> Callable[[Path], dict[str, Any]]:
    def build(path: Path) -> dict[str, Any]:
        quantize_variant(source, path, settings)
        return {"from": str(source), "settings": dict(settings)}

    return build


def op_counts(path: Path) -> dict[str, int]:
    wanted = ("MatMul", "MatMulInteger", "MatMulNBits", "DynamicQuantizeLinear", "SkipLayerNormalization", "BiasGelu")
    counts = collections.Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)
    return {name: counts[name] for name in wanted if counts[name]}


def session_op_counts(path: Path, input_names: list[str], level: str) -> dict[str, int]:
    """The operators ONNX Runtime runs after its own graph optimisation at ``level`` (written out once)."""
    import onnxruntime

    optimized = path.parent / f"session-{level}.onnx"
    if not optimized.is_file():
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
        options.optimized_model_filepath = str(optimized)
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    counts = collections.Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)
    return dict(counts.most_common(8))


#: The inputs of the two kinds of weight MatMul with the widest input range: the feed-forward output
#: (fed by GELU) and the attention output projection (fed by the attention context).
FFN_OUT, ATTENTION_OUT = ["Gelu"], ["Reshape", "Transpose", "MatMul"]
#: Dynamic int8 as ``quantize_dynamic`` makes it: weights per output channel, int8.
DYNAMIC = {"per_channel": True, "weight_type": "QInt8", "op_types": ["MatMul"]}
#: ``MatMulNBits`` 8-bit weights in blocks along the input, int8 compute (accuracy level 4: activations
#: quantised per block too; the VNNI / AMX path).
NBITS8 = {"format": "MatMulNBits", "bits": 8, "accuracy_level": 4}
#: name -> (what it is, settings) of the benchmark's own quantised files; the package's own file is the
#: variant "int8". ``keep_fp32_fed_by`` as in the package's ``INT8_SETTINGS``; ``source``: the plain export,
#: or the package's fused graph (where GELU is BiasGelu).
INT8_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "int8-keep-both": (
        "24 of 36 weight MatMuls: FFN output and attention output fp32 (issue 11's choice)",
        {**DYNAMIC, "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT], "source": "export"},
    ),
    "int8-keep-ffn-out": (
        "30 of 36: only the FFN output fp32 (issue 11's first variant)",
        {**DYNAMIC, "keep_fp32_fed_by": [FFN_OUT], "source": "export"},
    ),
    "int8-keep-attention-out": (
        "30 of 36: only the attention output fp32",
        {**DYNAMIC, "keep_fp32_fed_by": [ATTENTION_OUT], "source": "export"},
    ),
    "int8-all36": ("all 36 weight MatMuls", {**DYNAMIC, "keep_fp32_fed_by": [], "source": "export"}),
    "int8-keep-both-per-tensor": (
        "keep-both, weights per tensor",
        {**DYNAMIC, "per_channel": False, "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT], "source": "export"},
    ),
    "int8-keep-both-quint8-weights": (
        "keep-both, uint8 weights",
        {**DYNAMIC, "weight_type": "QUInt8", "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT], "source": "export"},
    ),
    "int8-keep-both-reduce-range": (
        "keep-both, 7-bit weights (reduce_range)",
        {**DYNAMIC, "reduce_range": True, "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT], "source": "export"},
    ),
    "int8-keep-both-fused": (
        "keep-both, quantised after optimize_model's fusions",
        {**DYNAMIC, "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT, ["BiasGelu"]], "source": "fused"},
    ),
    "int8-all36-fused": (
        "all 36, quantised after optimize_model's fusions",
        {**DYNAMIC, "keep_fp32_fed_by": [], "source": "fused"},
    ),
    "int8-keep-both+nbits8": (
        "keep-both, the 12 kept MatMuls as MatMulNBits 8-bit blocks of 32 instead of fp32",
        {
            **DYNAMIC,
            "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT],
            "kept_as_nbits": {"bits": 8, "block_size": 32, "accuracy_level": 4},
            "source": "export",
        },
    ),
    "nbits8-b32-keep-both": (
        "MatMulNBits 8-bit, blocks of 32, int8 compute; FFN and attention output fp32",
        {**NBITS8, "block_size": 32, "keep_fp32_fed_by": [FFN_OUT, ATTENTION_OUT], "source": "export"},
    ),
    "nbits8-b32-all36": (
        "MatMulNBits 8-bit, blocks of 32, int8 compute; all 36",
        {**NBITS8, "block_size": 32, "keep_fp32_fed_by": [], "source": "export"},
    ),
    "nbits8-b128-all36": (
        "MatMulNBits 8-bit, blocks of 128, int8 compute; all 36",
        {**NBITS8, "block_size": 128, "keep_fp32_fed_by": [], "source": "export"},
    ),
}
