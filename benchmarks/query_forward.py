"""The forward pass of one query, variant by variant: what ONNX Runtime, OpenVINO and torch offer (issue 17).

all-MiniLM-L6-v2 (``minilm`` recipe) on SciFact's 300 test queries, each tokenised once as
:func:`simlm_haystack.encoding.tokenize` does for the query side. Two timings per variant and query:

* ``forward``: the model inputs (int64 arrays of one query) in, ``last_hidden_state`` out, nothing else;
* ``encode``: ``DualEncoder.encode("query", [text], batch_size=1)`` with the variant as its graph, which
  adds tokenising, padding and pooling (the package's own encoder where the variant is a package setting).

Every variant answers one input of every query length and the first ``--warmup`` queries untimed, then
all variants alternate query by query in one process, in a fresh random order for every query, so a burst
of load from the machine's other tenants hits them alike and no variant always follows the same one.
p50 / p99 / mean per variant, ratios to the package's current choices (also the median of the per-query
ratios), and the agreement with torch: the lowest cosine of a real token's hidden state and of a pooled
query vector.

Variants: torch (exact on the default threads and on one; the package's ``fast``: bf16 autocast where
native; ``torch.compile``), ONNX Runtime fp32 (the plain export and the package's fused graph; graph
optimisation BASIC / EXTENDED / ALL; 1 or 2 intra-op threads; 2 spinning threads), ONNX Runtime int8
(the package's ``INT8_SETTINGS`` on 1 and 2 threads and at BASIC; then :data:`INT8_VARIANTS`: which
weight MatMuls stay fp32; per tensor; uint8 weights; 7-bit weights; the fused graph quantised;
``MatMulNBits`` 8-bit blocks with int8 compute) and OpenVINO (fp32 on 1 or 2 threads, with the infer
request reused, bf16, the int8 ONNX).

``--parts ndcg``: SciFact test nDCG@10 of lossy variants (by default the package's int8 and every lossy
variant faster than it in the timing part: the median of the per-query ratios below 1). The variant
encodes the corpus (batches of 32) and the queries one at a time, as they are served; exact numpy search
gives the top 100, :func:`simlm_haystack.evaluation.scoring.calc_metrics` scores it. The queries are
also scored encoded in batches of 32, as the package's evaluator encodes them. ``--parts documents``:
documents/s of ``--document-variants``, alternating batch by batch.

    PYTHONPATH=. .venv/bin/python benchmarks/query_forward.py --parts timing ndcg
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from simlm_haystack.backends.onnx import (
    INT8_SETTINGS,
    _fed_by,
    cached_build,
    export_dir,
    min_token_cosine,
    session_options,
)
from simlm_haystack.backends.openvino import compile_config
from simlm_haystack.encoding import DualEncoder, tokenize
from simlm_haystack.evaluation import load_beir
from simlm_haystack.evaluation.retrieval import Run
from simlm_haystack.evaluation.scoring import calc_metrics
from simlm_haystack.fingerprint import cached_model_fingerprint
from simlm_haystack.models import LoadedModel, load_model, local_model_path
from simlm_haystack.recipes import get_recipe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_onnx_documents import machine

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
RESULTS = Path(__file__).resolve().parent / "results" / "query_forward.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: The package's current choices, the baselines of the ratios.
CURRENT_FP32, CURRENT_INT8, TORCH = "onnx-fused-all-1t", "int8", "torch"
#: The cosines are taken against torch fp32 on one thread (the same maths as on the default threads).
REFERENCE = "torch-1t"
#: torch on its default threads takes ~1 s a query on these shared cores (each OpenMP barrier waits for a
#: descheduled sibling; BENCHMARKS.md, "Tried and rejected"), and ONNX Runtime's spinning threads keep a core
#: busy after their run, slowing whichever variant comes next: both answer every 10th query only.
EVERY: dict[str, int] = {TORCH: 10, "onnx-fused-all-2t-spin": 10}
#: SciFact test nDCG@10 of the exact model (BENCHMARKS.md, issue 11); lossy variants must stay within 0.3.
EXACT_NDCG10, NDCG_BAND = 0.6451, 0.003


# --- the graphs: ONNX Runtime and OpenVINO sessions with one variant's settings ---------------------------


class OrtVariantGraph:
    """An ONNX file on ONNX Runtime with the package's :func:`session_options` but for the variant's
    graph optimisation level and spinning. One text runs on ``query_threads``, a batch on ``threads``."""

    def __init__(
        self, path: Path, input_names: list[str], *, level: str, query_threads: int, spinning: bool = False
    ) -> None:
        self.path, self.input_names, self.level = path, input_names, level
        self.query_threads, self.threads, self.spinning = query_threads, 2, spinning
        self.sessions: dict[int, Any] = {}

    def session(self, threads: int) -> Any:
        if threads not in self.sessions:
            import onnxruntime

            options = session_options(threads)
            options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, self.level)
            if self.spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "1")
            self.sessions[threads] = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        return self.sessions[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        session = self.session(self.query_threads if single_thread else self.threads)
        return session.run(["last_hidden_state"], {name: features[name] for name in self.input_names})[0]


class OpenVinoVariantGraph:
    """An ONNX file compiled by OpenVINO with the package's :func:`compile_config` plus the variant's
    overrides; ``reuse_request``: one infer request kept instead of one made per call."""

    def __init__(
        self,
        path: Path,
        input_names: list[str],
        *,
        query_threads: int,
        overrides: Mapping[str, Any] | None = None,
        reuse_request: bool = False,
    ) -> None:
        import openvino

        self.path, self.input_names, self.query_threads, self.threads = path, input_names, query_threads, 2
        self.overrides, self.reuse_request = dict(overrides or {}), reuse_request
        self._core = openvino.Core()
        self._model = self._core.read_model(str(path))
        self.compiled: dict[int, Any] = {}
        self.requests: dict[int, Any] = {}

    def request(self, threads: int) -> Any:
        if threads not in self.compiled:
            config = {**compile_config(threads), **self.overrides}
            self.compiled[threads] = self._core.compile_model(self._model, "CPU", config)
        if not self.reuse_request:
            return self.compiled[threads].create_infer_request()
        if threads not in self.requests:
            self.requests[threads] = self.compiled[threads].create_infer_request()
        return self.requests[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        request = self.request(self.query_threads if single_thread else self.threads)
        request.infer({name: features[name] for name in self.input_names})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchVariantGraph:
    """A torch module (eager or compiled) behind the graph protocol: what it costs with a thread count
    and an autocast, the numpy conversions being zero-copy."""

    def __init__(self, model: Callable[..., Any], input_names: list[str], *, threads: int | None, bf16: bool) -> None:
        self.model, self.input_names, self.threads_for_query, self.bf16 = model, input_names, threads, bf16
        self.path = Path("-")
        self.threads = torch.get_num_threads()

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with torch_threads(self.threads_for_query if single_thread else None), torch.inference_mode(), autocast:
            inputs = {name: torch.from_numpy(features[name]) for name in self.input_names}
            return self.model(**inputs, return_dict=True).last_hidden_state.float().numpy()


# --- building the variants' files ------------------------------------------------------------------------


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


@dataclass
class Variant:
    name: str
    family: str
    description: str
    lossy: bool
    graph: Any
    encoder: DualEncoder
    build_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def forward(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.graph(features, single_thread=True)

    def encode(self, text: str) -> np.ndarray:
        return self.encoder.encode("query", [text], batch_size=1)


def with_graph(loaded: LoadedModel, graph: Any) -> DualEncoder:
    """A minilm encoder whose forward is ``graph``: the package's tokenising, padding and pooling around it."""
    encoder = DualEncoder(loaded, get_recipe("minilm"))
    encoder.graph = graph
    return encoder


def build_variants(loaded: LoadedModel, args: argparse.Namespace) -> list[Variant]:
    recipe = get_recipe("minilm")
    variants: list[Variant] = []
    started = time.perf_counter()

    def add(name: str, family: str, description: str, lossy: bool, graph: Any, encoder: DualEncoder | None = None):
        if args.variants and name not in args.variants:
            return
        variants.append(Variant(name, family, description, lossy, graph, encoder or with_graph(loaded, graph)))
        print(f"built {name}", flush=True)

    # torch
    torch_exact = DualEncoder(loaded, recipe)
    input_names = torch_exact.input_names
    model = loaded.model
    add(
        TORCH,
        "torch",
        "torch fp32, default threads (the reference)",
        False,
        TorchVariantGraph(model, input_names, threads=None, bf16=False),
        torch_exact,
    )
    add(
        "torch-1t", "torch", "torch fp32, 1 thread", False, TorchVariantGraph(model, input_names, threads=1, bf16=False)
    )
    add(
        "torch-fast-1t",
        "torch",
        'the package\'s precision="fast": bf16 autocast (native here), 1 thread',
        True,
        TorchVariantGraph(model, input_names, threads=1, bf16=True),
        DualEncoder(loaded, recipe, precision="fast"),
    )
    if args.compile:
        compiled = torch.compile(model, dynamic=True)
        add(
            "torch-compile-1t",
            "torch",
            "torch.compile (inductor, dynamic shapes), 1 thread",
            False,
            TorchVariantGraph(compiled, input_names, threads=1, bf16=False),
        )

    # ONNX Runtime fp32: the package's encoder (fused graph, ALL, 1 thread for one text) and the grid around it
    package_fp32 = DualEncoder(loaded, recipe, backend="onnx")
    fused = package_fp32.graph.path
    export = export_dir(loaded, input_names) / "model.onnx"
    for source_name, source in (("plain", export), ("fused", fused)):
        for level in ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
            for threads in (1, 2):
                short = level.removeprefix("ORT_ENABLE_").lower()
                name = f"onnx-{source_name}-{short}-{threads}t"
                graph = OrtVariantGraph(source, input_names, level=level, query_threads=threads)
                what = "the export" if source_name == "plain" else "the export + optimize_model fusions"
                if name == CURRENT_FP32:
                    add(
                        name,
                        "onnx fp32",
                        f"{what}, {short}, {threads} thread (the package's)",
                        False,
                        package_fp32.graph,
                        package_fp32,
                    )
                else:
                    add(name, "onnx fp32", f"{what}, {short}, {threads} thread(s)", False, graph)
    add(
        "onnx-fused-all-2t-spin",
        "onnx fp32",
        "fused, all, 2 spinning threads",
        False,
        OrtVariantGraph(fused, input_names, level="ORT_ENABLE_ALL", query_threads=2, spinning=True),
    )

    # ONNX Runtime int8: the package's, then the benchmark's own files
    package_int8 = DualEncoder(loaded, recipe, backend="onnx", precision="int8")
    int8_path = package_int8.graph.path
    add(
        CURRENT_INT8,
        "onnx int8",
        "the package's INT8_SETTINGS, 1 thread",
        True,
        package_int8.graph,
        package_int8,
    )
    add(
        "int8-2t",
        "onnx int8",
        "the package's int8, 2 threads",
        True,
        OrtVariantGraph(int8_path, input_names, level="ORT_ENABLE_ALL", query_threads=2),
    )
    add(
        "int8-basic",
        "onnx int8",
        "the package's int8, basic graph optimisation",
        True,
        OrtVariantGraph(int8_path, input_names, level="ORT_ENABLE_BASIC", query_threads=1),
    )
    root = args.work_dir / cached_model_fingerprint(loaded.model, loaded.tokenizer)
    for name, (description, settings) in INT8_VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        source = export if settings["source"] == "export" else fused
        digest = hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=8).hexdigest()
        began = time.perf_counter()
        path = cached_build(root / f"{name}-{digest}", quantized_file_builder(source, settings))
        add(
            name,
            "onnx int8",
            description,
            True,
            OrtVariantGraph(path, input_names, level="ORT_ENABLE_ALL", query_threads=1),
        )
        variants[-1].build_seconds = time.perf_counter() - began
        variants[-1].details["settings"] = settings

    # OpenVINO: the package's (fp32, a request per call, 1 thread for one text) and around it
    package_openvino = DualEncoder(loaded, recipe, backend="openvino")
    add(
        "openvino-1t",
        "openvino",
        "the package's: fp32, 1 thread, a new infer request per call",
        False,
        package_openvino.graph,
        package_openvino,
    )
    add("openvino-2t", "openvino", "fp32, 2 threads", False, OpenVinoVariantGraph(export, input_names, query_threads=2))
    add(
        "openvino-1t-reuse",
        "openvino",
        "fp32, 1 thread, one infer request reused",
        False,
        OpenVinoVariantGraph(export, input_names, query_threads=1, reuse_request=True),
    )
    add(
        "openvino-bf16-1t",
        "openvino",
        "INFERENCE_PRECISION_HINT bf16 (AMX), 1 thread, request reused",
        True,
        OpenVinoVariantGraph(
            export, input_names, query_threads=1, overrides={"INFERENCE_PRECISION_HINT": "bf16"}, reuse_request=True
        ),
    )
    add(
        "openvino-int8onnx-1t",
        "openvino",
        "the package's int8 ONNX read by OpenVINO, 1 thread, request reused",
        True,
        OpenVinoVariantGraph(int8_path, input_names, query_threads=1, reuse_request=True),
    )

    for variant in variants:
        path = getattr(variant.graph, "path", Path("-"))
        if path.suffix == ".onnx":
            variant.details["file_mb"] = round(path.stat().st_size / 1e6, 1)
            variant.details["ops_in_file"] = op_counts(path)
            if isinstance(variant.graph, OrtVariantGraph) or variant.name in (CURRENT_FP32, CURRENT_INT8):
                level = getattr(variant.graph, "level", "ORT_ENABLE_ALL")
                variant.details["ops_after_ort_optimisation"] = session_op_counts(path, input_names, level)
    print(f"variants built in {time.perf_counter() - started:.0f} s", flush=True)
    return variants


# --- timing -----------------------------------------------------------------------------------------------


def test_queries(data: Path) -> list[str]:
    collection = load_beir(data, splits=["test"])
    return list(collection.judged_queries("test").values())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


def part_timing(variants: list[Variant], loaded: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    recipe = get_recipe("minilm")
    texts = test_queries(args.data)[: args.queries]
    input_names = variants[0].encoder.input_names
    features = []
    for text in texts:
        encoding = tokenize(loaded.tokenizer, recipe, "query", [text], return_tensors="np")
        features.append({name: np.asarray(encoding[name], dtype=np.int64) for name in input_names})
    by_name = {variant.name: variant for variant in variants}

    # Warm-up, untimed: one input of every query length (so that runtimes which prepare kernels per shape,
    # OpenVINO and torch.compile, have seen them all, as a server soon would), then the first queries.
    # torch.compile compiles on its first call, which is timed apart.
    lengths = [int(feature["attention_mask"].sum()) for feature in features]
    longest = features[int(np.argmax(lengths))]
    every_length = [
        {name: np.ascontiguousarray(value[:, :length]) for name, value in longest.items()}
        for length in range(min(lengths), max(lengths) + 1)
    ]
    for variant in variants:
        began = time.perf_counter()
        variant.forward(features[0])
        first_call = time.perf_counter() - began
        for feature in every_length if variant.name not in EVERY else []:
            variant.forward(feature)
        for text, feature in zip(texts[: args.warmup], features[: args.warmup], strict=True):
            variant.forward(feature)
            variant.encode(text)
        variant.details["first_call_s"] = round(first_call, 2)
        print(f"warmed up {variant.name} (first call {first_call:.2f} s)", flush=True)

    names = [variant.name for variant in variants]
    # (round, query) -> milliseconds, so that two variants can be compared query by query
    forward_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    encode_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    # CPU time of the whole process during the call (every thread, spinning included): what the variant
    # costs the machine, and how much of its wall time it actually ran on these shared cores.
    forward_cpu_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    token_cosine = dict.fromkeys(names, 1.0)
    query_cosine = dict.fromkeys(names, 1.0)
    load = [os.getloadavg()]
    started = time.perf_counter()
    # A fresh random order for every query: with a rotation each variant would nearly always follow the same
    # one, and inherit what that one leaves behind (spinning threads, evicted caches).
    shuffle = np.random.default_rng(17)
    for rounds in range(args.rounds):
        for number, (text, feature) in enumerate(zip(texts, features, strict=True)):
            order = [names[i] for i in shuffle.permutation(len(names)) if number % EVERY.get(names[i], 1) == 0]
            hidden, vectors = {}, {}
            for name in order:
                began, began_cpu = time.perf_counter(), time.process_time()
                hidden[name] = by_name[name].forward(feature)
                forward_ms[name][rounds, number] = 1000 * (time.perf_counter() - began)
                forward_cpu_ms[name][rounds, number] = 1000 * (time.process_time() - began_cpu)
            for name in order:
                began = time.perf_counter()
                vectors[name] = by_name[name].encode(text)
                encode_ms[name][rounds, number] = 1000 * (time.perf_counter() - began)
            if REFERENCE in hidden:
                mask = feature["attention_mask"]
                for name in order:
                    cosine = min_token_cosine(hidden[REFERENCE], hidden[name], mask)
                    token_cosine[name] = min(token_cosine[name], cosine)
                    a, b = vectors[name].ravel().astype(np.float64), vectors[REFERENCE].ravel().astype(np.float64)
                    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                    query_cosine[name] = min(query_cosine[name], cosine)
            if (number + 1) % 50 == 0:
                print(
                    f"round {rounds + 1}: {number + 1} queries, {time.perf_counter() - started:.0f} s, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        load.append(os.getloadavg())
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "queries": len(texts),
        "rounds": args.rounds,
        "warmup_queries": args.warmup,
        "query_tokens": {"p50": statistics.median(lengths), "min": min(lengths), "max": max(lengths)},
        "load_average_before_after_each_round": load,
        "timed_seconds": round(time.perf_counter() - started, 1),
        "variants": {},
    }
    baselines = [key for key in (TORCH, CURRENT_FP32, CURRENT_INT8) if key in names]
    for variant in variants:
        timed = forward_ms[variant.name]
        forward = summary(list(timed.values()))
        entry: dict[str, Any] = {
            "family": variant.family,
            "description": variant.description,
            "lossy": variant.lossy,
            "forward": forward,
            "forward_cpu": summary(list(forward_cpu_ms[variant.name].values())),
            "encode": summary(list(encode_ms[variant.name].values())),
            "forward_p50_ratio": {
                key: round(forward["p50_ms"] / statistics.median(forward_ms[key].values()), 3) for key in baselines
            },
            # The median of this variant's time over the baseline's on the same query: a burst of load
            # that hits one query hits both sides of its ratio.
            "forward_paired_ratio_p50": {
                key: round(statistics.median(ms / forward_ms[key][query] for query, ms in timed.items()), 3)
                for key in baselines
                if key not in EVERY
            },
            "timed_queries": len(forward_ms[variant.name]),
            "min_token_cosine_to_torch": token_cosine[variant.name],
            "min_query_cosine_to_torch": query_cosine[variant.name],
            "build_seconds": round(variant.build_seconds, 1),
            **variant.details,
        }
        results["variants"][variant.name] = entry
    return results


# --- documents: what an int8 setting does to indexing ----------------------------------------------------


def part_documents(variants: list[Variant], names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Documents/s of ``names`` on the first ``--docs`` SciFact documents, batches of 32 (the document
    embedder's default), the variants alternating batch by batch in a fresh random order."""
    collection = load_beir(args.data, splits=["test"])
    documents = collection.documents[: args.docs]
    texts = [document.content or "" for document in documents]
    titles = [document.meta.get("title") for document in documents]
    by_name = {variant.name: variant for variant in variants}
    batches = [slice(start, start + 32) for start in range(0, len(texts), 32)]
    for name in names:  # first-call allocations
        by_name[name].encoder.encode("document", texts[:32], titles[:32], batch_size=32)
    seconds: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    shuffle = np.random.default_rng(11)
    load = [os.getloadavg()]
    for round_number in range(args.document_rounds):
        for number, batch in enumerate(batches):
            for index in shuffle.permutation(len(names)):
                began = time.perf_counter()
                by_name[names[index]].encoder.encode("document", texts[batch], titles[batch], batch_size=32)
                seconds[names[index]][round_number, number] = time.perf_counter() - began
        load.append(os.getloadavg())
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "docs": len(texts),
        "rounds": args.document_rounds,
        "load_average_before_after_each_round": load,
    }
    for name in names:
        per_round = [
            len(texts) / sum(value for (r, _), value in seconds[name].items() if r == round_number)
            for round_number in range(args.document_rounds)
        ]
        results[name] = {
            "docs_per_s_median": round(statistics.median(per_round), 2),
            "docs_per_s_per_round": [round(rate, 2) for rate in per_round],
            "time_ratio_to_first_per_batch_p50": round(
                statistics.median(value / seconds[names[0]][key] for key, value in seconds[name].items()), 3
            ),
        }
        print(f"{name}: {results[name]['docs_per_s_median']} documents/s", flush=True)
    return results


# --- retrieval quality ------------------------------------------------------------------------------------


def exact_top100(queries: np.ndarray, corpus: np.ndarray, ids: list[str], query_ids: list[str]) -> Run:
    """Exact inner-product search (the vectors are normalised: cosine), the top 100 of each query."""
    scores = queries @ corpus.T
    top = np.argpartition(-scores, 100, axis=1)[:, :100]
    return {query_id: {ids[j]: float(scores[i, j]) for j in top[i]} for i, query_id in enumerate(query_ids)}


def part_ndcg(variants: list[Variant], names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    collection = load_beir(args.data, splits=["test"])
    qrels = collection.split("test")
    queries = collection.judged_queries("test")
    documents = collection.documents
    texts = [document.content or "" for document in documents]
    titles = [document.meta.get("title") for document in documents]
    ids = [document.id for document in documents]
    by_name = {variant.name: variant for variant in variants}
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="minutes")}
    for name in names:
        variant = by_name[name]
        began = time.perf_counter()
        corpus = variant.encoder.encode("document", texts, titles, batch_size=32)
        corpus_seconds = time.perf_counter() - began
        served = np.concatenate([variant.encode(text) for text in queries.values()])
        metrics = calc_metrics(qrels, exact_top100(served, corpus, ids, list(queries)), ["nDCG@10", "RR@10", "R@100"])
        # The package's evaluator encodes queries in batches of 32 (padded): int8's activation scales then
        # span the batch, so its vectors differ from the ones served one at a time.
        batched = variant.encoder.encode("query", list(queries.values()), batch_size=32)
        batched_ndcg = calc_metrics(qrels, exact_top100(batched, corpus, ids, list(queries)), ["nDCG@10"])["nDCG@10"]
        results[name] = {
            **{measure: round(100 * value, 2) for measure, value in metrics.items()},
            "nDCG@10_minus_exact": round(100 * (metrics["nDCG@10"] - EXACT_NDCG10), 2),
            "within_band": abs(metrics["nDCG@10"] - EXACT_NDCG10) <= NDCG_BAND + 1e-9,
            "nDCG@10_queries_in_batches_of_32": round(100 * batched_ndcg, 2),
            "corpus_docs_per_s": round(len(texts) / corpus_seconds, 1),
            "date": datetime.now(UTC).isoformat(timespec="minutes"),
            "load_average_after": os.getloadavg(),
        }
        print(f"{name}: nDCG@10 {100 * metrics['nDCG@10']:.2f} ({corpus_seconds:.0f} s for the corpus)", flush=True)
    return results


def table(timing: Mapping[str, Any], ndcg: Mapping[str, Any]) -> str:
    rows = [
        "| variant | forward p50 | p99 | mean | CPU p50 | encode p50 | p99 | forward vs package fp32 | vs package int8 "
        "| min token cos | nDCG@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in sorted(timing["variants"].items(), key=lambda item: item[1]["forward"]["p50_ms"]):
        ratio = entry["forward_paired_ratio_p50"]
        quality = ndcg.get(name, {}).get("nDCG@10", "")
        rows.append(
            f"| {name} | {entry['forward']['p50_ms']:.2f} | {entry['forward']['p99_ms']:.2f} | "
            f"{entry['forward']['mean_ms']:.2f} | {entry['forward_cpu']['p50_ms']:.2f} | "
            f"{entry['encode']['p50_ms']:.2f} | {entry['encode']['p99_ms']:.2f} | "
            f"{ratio.get(CURRENT_FP32, '')} | {ratio.get(CURRENT_INT8, '')} | "
            f"{entry['min_token_cosine_to_torch']:.6f} | {quality} |"
        )
    return "\n".join(rows)


def ndcg_candidates(timing: Mapping[str, Any]) -> list[str]:
    """The package's int8 and every lossy variant faster than it (median of the per-query ratios < 1)."""
    return [CURRENT_INT8] + [
        name
        for name, entry in timing["variants"].items()
        if entry["lossy"] and name != CURRENT_INT8 and entry["forward_paired_ratio_p50"][CURRENT_INT8] < 1
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the SciFact BEIR folder")
    parser.add_argument("--parts", nargs="+", default=["timing"], choices=["timing", "ndcg", "documents"])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the queries")
    parser.add_argument("--warmup", type=int, default=20, help="queries every variant answers untimed first")
    parser.add_argument("--variants", nargs="*", default=None, help="only these (default: all)")
    parser.add_argument(
        "--ndcg-variants",
        nargs="*",
        default=None,
        help="default: the package's int8 and every lossy variant faster than it in the timing part",
    )
    parser.add_argument(
        "--document-variants", nargs="*", default=[CURRENT_INT8, "int8-keep-both"], help="for --parts documents"
    )
    parser.add_argument("--docs", type=int, default=320, help="documents for --parts documents")
    parser.add_argument("--document-rounds", type=int, default=3)
    parser.add_argument("--timing-key", default="timing", help="where the timing part goes in --out")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.home() / ".cache" / "simlm_haystack" / "query_forward",
        help="where the benchmark's own quantised files are kept",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="updated part by part if it exists")
    args = parser.parse_args()
    logging.getLogger("onnxruntime").setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)

    loaded = load_model(local_model_path(MODEL))
    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    results.setdefault("commands", []).append(
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "parts": args.parts,
            "date": datetime.now(UTC).isoformat(timespec="minutes"),
            "load_average": os.getloadavg(),
        }
    )
    results["machine"] = machine()
    results["torch_threads"] = torch.get_num_threads()
    results["package_int8_settings"] = INT8_SETTINGS
    if "ndcg" in args.parts and args.ndcg_variants is None and "timing" not in args.parts:
        args.ndcg_variants = ndcg_candidates(results["timing"])
    if "timing" not in args.parts and args.variants is None:
        wanted = set(args.ndcg_variants or []) if "ndcg" in args.parts else set()
        if "documents" in args.parts:
            wanted |= set(args.document_variants)
        args.variants = sorted(wanted | {TORCH})
    variants = build_variants(loaded, args)
    if "timing" in args.parts:
        results[args.timing_key] = part_timing(variants, loaded, args)
    if "documents" in args.parts:
        results["documents"] = part_documents(variants, args.document_variants, args)
    if "ndcg" in args.parts:
        names = args.ndcg_variants if args.ndcg_variants is not None else ndcg_candidates(results["timing"])
        results["ndcg"] = {**results.get("ndcg", {}), **part_ndcg(variants, names, args)}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.timing_key in results:
        print(table(results[args.timing_key], results.get("ndcg", {})))


if __name__ == "__main__":
    main()
