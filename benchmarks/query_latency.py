"""Query latency end to end: text in, top-10 documents out, one query at a time (issues 11, 17, 18).

    .venv/bin/python -m benchmarks.query_latency --queries 300 [--data ../shared/data/scifact]

The collection's documents with their all-MiniLM-L6-v2 vectors (encoded once and cached by
:func:`benchmarks.collection_vectors.scifact_vectors`; the minilm recipe is the model's own reading) are written into
each configuration's embedded store. Then the collection's test queries run one at a time, the
configurations alternating query by query in one process, so that load bursts on a shared machine hit
every configuration alike:

- ``peer``: ``SentenceTransformersTextEmbedder`` + ``QdrantEmbeddingRetriever`` on
  ``QdrantDocumentStore(path=...)`` (qdrant-client's local mode) in a Haystack ``Pipeline``, what a
  Haystack user writes today;
- ``retriever <backend>+edge``: ours, the drop-in ``DualEncoderRetriever`` (query text -> documents) on
  each backend (torch ``fast`` on one thread, ONNX Runtime fp32 and int8, OpenVINO) over Qdrant Edge;
- ``retriever onnx-int8+edge hybrid``: the same retriever with ``retrieval="hybrid"`` (the query's BM25
  vector too, two prefetches of 100 fused by the default fusion) over a hybrid collection of the same
  documents with their BM25 vectors: what hybrid adds to a query;
- ``build_query_pipeline onnx-int8+edge``: the same retriever as the one component of
  ``build_query_pipeline``, run through ``Pipeline.run``;
- ``hand-wired pipeline onnx-int8+edge``: ``DualEncoderTextEmbedder -> EdgeEmbeddingRetriever`` wired by
  hand in a ``Pipeline``, which deep-copies the query vector between the two (what that copy costs).

Each configuration answers every query once before timing (warm-up; the graph backends export or
read their cached graph then). Reports p50, p99 and mean per configuration, ratios to the peer, and
how many of each configuration's top-10 ids equal the peer's (the same model: nearly all).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Haystack's telemetry (on by default, for the peer and ours alike) only retries DNS lookups offline.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import numpy as np
import torch
from haystack import Pipeline

from benchmarks.collection import test_queries
from benchmarks.collection_vectors import scifact_vectors
from benchmarks.common import (
    MODEL,
    MODEL_DIMENSION,
    add_data_argument,
    command_line,
    latency_summary,
    machine,
    result_file,
    write_results,
)

RESULTS = result_file("query_latency")


@dataclass(frozen=True)
class Configuration:
    """``kind``: ``peer`` (sentence-transformers-haystack + qdrant-haystack), ``retriever`` (our drop-in
    retriever called directly), ``pipeline`` (our ``build_query_pipeline``), ``wired`` (our text embedder and
    the store's retriever wired by hand in a ``Pipeline``)."""

    kind: str
    backend: str = "torch"
    precision: str = "exact"
    retrieval: str = "dense"


CONFIGURATIONS: dict[str, Configuration] = {
    "peer": Configuration("peer"),
    "retriever torch-fast+edge": Configuration("retriever", "torch", "fast"),
    "retriever onnx+edge": Configuration("retriever", "onnx", "exact"),
    "retriever onnx-int8+edge": Configuration("retriever", "onnx", "int8"),
    "retriever openvino+edge": Configuration("retriever", "openvino", "exact"),
    "retriever onnx-int8+edge hybrid": Configuration("retriever", "onnx", "int8", "hybrid"),
    "build_query_pipeline onnx-int8+edge": Configuration("pipeline", "onnx", "int8"),
    "hand-wired pipeline onnx-int8+edge": Configuration("wired", "onnx", "int8"),
}


def documents_with_vectors(cache: Path, data: Path) -> list[Any]:
    """The corpus with its MiniLM vectors and its BM25 sparse vectors (read as the BM25 document embedder reads
    a Document: title, then text)."""
    from haystack.dataclasses import SparseEmbedding

    from simlm_haystack.corpus import read_documents
    from simlm_haystack.sparse import BM25Encoder

    vectors = np.load(scifact_vectors(cache, data)["documents"])
    documents = list(read_documents(data / "corpus.jsonl"))
    sparse = BM25Encoder().encode_documents(
        [d.content or "" for d in documents], [d.meta.get("title") for d in documents]
    )
    return [
        replace(
            document,
            embedding=vector.tolist(),
            sparse_embedding=SparseEmbedding(indices=list(bm25.indices), values=list(bm25.values)),
        )
        for document, vector, bm25 in zip(documents, vectors, sparse, strict=True)
    ]


def build(
    name: str, model: str, directory: Path, documents: list[Any]
) -> tuple[Callable[[str], list[Any]], Any, Any]:
    """The configuration's search (query text -> documents), its store, and our encoder (None for the peer)."""
    from simlm_haystack import DualEncoderRetriever, DualEncoderTextEmbedder, build_query_pipeline
    from simlm_haystack.stores import edge_document_store
    from simlm_haystack.stores.edge import EdgeEmbeddingRetriever

    configuration = CONFIGURATIONS[name]
    path = str(directory / name.replace(" ", "_"))
    if configuration.kind == "peer":
        from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder
        from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
        from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

        store = QdrantDocumentStore(path=path, index="scifact", embedding_dim=MODEL_DIMENSION, similarity="cosine")
        store.write_documents([replace(document, sparse_embedding=None) for document in documents])
        pipeline = Pipeline()
        pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=model, progress_bar=False))
        pipeline.add_component("retriever", QdrantEmbeddingRetriever(document_store=store, top_k=10))
        pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
        pipeline.warm_up()
        return lambda query: pipeline.run({"text_embedder": {"text": query}})["retriever"]["documents"], store, None

    embedder = DualEncoderTextEmbedder(
        model=model, recipe="minilm", backend=configuration.backend, precision=configuration.precision
    )
    hybrid = configuration.retrieval != "dense"
    store = edge_document_store(embedder, path=path, index="scifact", use_sparse_embeddings=hybrid)
    store.write_documents(documents if hybrid else [replace(document, sparse_embedding=None) for document in documents])
    store.optimize()
    if configuration.kind == "retriever":
        retriever = DualEncoderRetriever.from_embedder(embedder, store, top_k=10, retrieval=configuration.retrieval)
        retriever.warm_up()
        return lambda query: retriever.run(query=query)["documents"], store, embedder.encoder
    if configuration.kind == "pipeline":
        pipeline = build_query_pipeline(embedder, store, top_k=10)
        pipeline.warm_up()
        return lambda query: pipeline.run({"retriever": {"query": query}})["retriever"]["documents"], store, None
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", embedder)
    pipeline.add_component("retriever", EdgeEmbeddingRetriever(document_store=store, top_k=10))
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    pipeline.warm_up()
    return lambda query: pipeline.run({"text_embedder": {"text": query}})["retriever"]["documents"], store, None


def stage_profiles(built: dict[str, Any], queries: list[str]) -> dict[str, dict[str, float]]:
    """Each dense drop-in retriever configuration's queries once more, one configuration after the other, with
    its stages timed (:class:`benchmarks.query_stages.StageTimer`): the median of each and of the whole call."""
    from benchmarks.query_stages import StageTimer

    profiles = {}
    for name, (search, store, encoder) in built.items():
        configuration = CONFIGURATIONS[name]
        if configuration.kind != "retriever" or configuration.retrieval != "dense":
            continue
        timer, totals = StageTimer(), []
        with timer.active(encoder, store):
            for query in queries:
                start = time.perf_counter()
                search(query)
                totals.append(1000 * (time.perf_counter() - start))
        profiles[name] = timer.summary(totals)
    return profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--configurations", nargs="+", choices=list(CONFIGURATIONS), default=list(CONFIGURATIONS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/simlm-haystack-bench"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--stages",
        action="store_true",
        help="then time each stage of the drop-in retriever's dense configurations (benchmarks.query_stages)",
    )
    add_data_argument(parser)
    args = parser.parse_args()

    from simlm_haystack.models import local_model_path

    model = str(local_model_path(MODEL))
    queries = test_queries(args.data)[: args.queries]
    documents = documents_with_vectors(args.cache, args.data)
    names = args.configurations
    with tempfile.TemporaryDirectory() as directory:
        built = {name: build(name, model, Path(directory), documents) for name in names}
        top10: dict[str, list[list[str]]] = {name: [] for name in names}
        for name, (search, _, _) in built.items():  # warm-up: every query once, untimed
            for query in queries:
                top10[name].append([document.id for document in search(query)])
        milliseconds: dict[str, list[float]] = {name: [] for name in names}
        load_start = os.getloadavg()
        for number, query in enumerate(queries):
            order = names[number % len(names) :] + names[: number % len(names)]  # who goes first rotates
            for name in order:
                search = built[name][0]
                start = time.perf_counter()
                found = search(query)
                milliseconds[name].append(1000 * (time.perf_counter() - start))
                assert len(found) == 10
        stages = stage_profiles(built, queries) if args.stages else {}
        for _, store, _ in built.values():
            store.close()

    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M+00:00"),
        "command": command_line(),
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "collection": str(args.data),
        "queries": len(queries),
        "documents": len(documents),
        "configurations": {},
    }
    reference = latency_summary(milliseconds[names[0]], digits=2)
    for name in names:
        figures = latency_summary(milliseconds[name], digits=2)
        same = [len(set(ours) & set(peer)) / 10 for ours, peer in zip(top10[name], top10[names[0]], strict=True)]
        figures["p50_ratio_to_" + names[0]] = round(figures["p50_ms"] / reference["p50_ms"], 3)
        figures["top10_overlap_with_" + names[0]] = round(float(np.mean(same)), 4)
        if name in stages:
            figures["stages_ms"] = stages[name]
        results["configurations"][name] = figures
        print(f"{name:40s} {json.dumps(figures)}")
    write_results(args.out, results, indent=1)
    flags = json.dumps(results["machine"]["cpuinfo_flags"])
    print(f"machine: {flags}; load {load_start} -> {results['load_average_end']}")


if __name__ == "__main__":
    main()
