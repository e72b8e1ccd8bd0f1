"""Every variant of the query forward pass, built: torch, ONNX Runtime fp32 and int8, OpenVINO; the package's
current choices among them are the baselines of the ratios."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.query_forward.graphs import OpenVinoVariantGraph, OrtVariantGraph, TorchVariantGraph
from benchmarks.query_forward.quantized import INT8_VARIANTS, op_counts, quantized_file_builder, session_op_counts
from simlm_haystack.backends.onnx import cached_build, export_dir
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.fingerprint import cached_model_fingerprint
from simlm_haystack.models import LoadedModel
from simlm_haystack.recipes import get_recipe

#: The package's current choices, the baselines of the ratios.
CURRENT_FP32, CURRENT_INT8, TORCH = "onnx-fused-all-1t", "int8", "torch"
#: The cosines are taken against torch fp32 on one thread (the same maths as on the default threads).
REFERENCE = "torch-1t"
#: torch on its default threads takes ~1 s a query on these shared cores (each OpenMP barrier waits for a
#: descheduled sibling; BENCHMARKS.md, "Tried and rejected"), and ONNX Runtime's spinning threads keep a core
#: busy after their run, slowing whichever variant comes next: both answer every 10th query only.
EVERY: dict[str, int] = {TORCH: 10, "onnx-fused-all-2t-spin": 10}


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
