"""Query latency end to end (issue 11, benchmark 1): text in, top-10 documents out, one query at a time.

    .venv/bin/python benchmarks/query_latency.py --queries 300

SciFact's 5,183 documents with their all-MiniLM-L6-v2 vectors (encoded once and cached by
edge_scale.py's ``scifact_vectors``; the minilm recipe is the model's own reading) are written into
each configuration's embedded store. Then SciFact's 300 test queries run one at a time through a
Haystack ``Pipeline`` (text embedder -> retriever), the configurations alternating query by query in
one process, so that load bursts on a shared machine hit every configuration alike:

- ``peer``: ``SentenceTransformersTextEmbedder`` + ``QdrantEmbeddingRetriever`` on
  ``QdrantDocumentStore(path=...)`` (qdrant-client's local mode), what a Haystack user writes today;
  ``peer-1-thread``: the same with torch on one intra-op thread during the query (on a busy machine
  torch's second thread waits for a core at every operator);
- ``torch-fast+edge`` (one thread, [CLS]-only last layer), ``onnx+edge``, ``onnx-int8+edge``,
  ``openvino+edge``: ours through ``build_query_pipeline`` (``DualEncoderTextEmbedder`` on that
  backend, then the store's retriever); ``onnx-int8+edge, no Pipeline``: the same two components
  called one after the other, to show what Haystack's ``Pipeline.run`` itself costs (it deep-copies
  each component's inputs, the 384 floats of the query vector one by one).

Each configuration answers every query once before timing (warm-up; the graph backends export or
read their cached graph then). Reports p50, p99 and mean per configuration, ratios to the peer, and
how many of each configuration's top-10 ids equal the peer's (the same model: nearly all).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_scale import DATA, MODEL, scifact_vectors, test_queries
from speed_onnx_documents import machine

RESULTS = Path(__file__).resolve().parent / "results" / "query_latency.json"
#: name -> (backend, precision, engine); "peer" is sentence-transformers-haystack + qdrant-haystack.
CONFIGURATIONS: dict[str, tuple[str, str, str]] = {
    "peer": ("torch", "exact", "local"),
    "peer-1-thread": ("torch", "exact", "local"),
    "torch-fast+edge": ("torch", "fast", "edge"),
    "onnx+edge": ("onnx", "exact", "edge"),
    "onnx-int8+edge": ("onnx", "int8", "edge"),
    "openvino+edge": ("openvino", "exact", "edge"),
    "onnx-int8+edge, no Pipeline": ("onnx", "int8", "edge"),
}


def documents_with_vectors(cache: Path) -> list[Any]:
    from simlm_haystack.corpus import read_documents

    vectors = np.load(scifact_vectors(cache)["documents"])
    documents = list(read_documents(DATA / "corpus.jsonl"))
    return [replace(document, embedding=vector.tolist()) for document, vector in zip(documents, vectors, strict=True)]


class _Direct:
    """The query pipeline's two components called directly, answering as ``Pipeline.run`` does."""

    def __init__(self, embedder: Any, retriever: Any) -> None:
        self.embedder, self.retriever = embedder, retriever

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def run(self, data: dict[str, dict[str, str]]) -> dict[str, Any]:
        embedding = self.embedder.run(text=data["text_embedder"]["text"])["embedding"]
        return {"retriever": self.retriever.run(query_embedding=embedding)}


def build(name: str, model: str, directory: Path, documents: list[Any]) -> tuple[Pipeline, Any]:
    """The configuration's pipeline (run with ``{"text_embedder": {"text": query}}``) and its store."""
    from simlm_haystack import DualEncoderTextEmbedder, build_query_pipeline, qdrant_document_store
    from simlm_haystack.components.pipelines import embedding_retriever
    from simlm_haystack.stores import edge_document_store

    backend, precision, engine = CONFIGURATIONS[name]
    path = str(directory / name)
    if name.startswith("peer"):
        from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder
        from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
        from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

        store = QdrantDocumentStore(path=path, index="scifact", embedding_dim=384, similarity="cosine")
        pipeline = Pipeline()
        pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=model, progress_bar=False))
        pipeline.add_component("retriever", QdrantEmbeddingRetriever(document_store=store, top_k=10))
        pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    else:
        embedder = DualEncoderTextEmbedder(model=model, recipe="minilm", backend=backend, precision=precision)
        make_store = edge_document_store if engine == "edge" else qdrant_document_store
        store = make_store(embedder, path=path, index="scifact")
        pipeline = build_query_pipeline(embedder, store, top_k=10)
        if name.endswith("no Pipeline"):
            pipeline = _Direct(embedder, embedding_retriever(store, top_k=10))
    store.write_documents(documents)
    pipeline.warm_up()
    return pipeline, store


def summary(milliseconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
        "mean_ms": round(float(np.mean(milliseconds)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--configurations", nargs="+", choices=list(CONFIGURATIONS), default=list(CONFIGURATIONS))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/simlm-haystack-bench"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from simlm_haystack.models import local_model_path

    model = str(local_model_path(MODEL))
    queries = test_queries()[: args.queries]
    documents = documents_with_vectors(args.cache)
    names = args.configurations
    with tempfile.TemporaryDirectory() as directory:
        built = {name: build(name, model, Path(directory), documents) for name in names}
        top10: dict[str, list[list[str]]] = {name: [] for name in names}
        for name, (pipeline, _) in built.items():  # warm-up: every query once, untimed
            for query in queries:
                result = pipeline.run({"text_embedder": {"text": query}})
                top10[name].append([document.id for document in result["retriever"]["documents"]])
        milliseconds: dict[str, list[float]] = {name: [] for name in names}
        load_start = os.getloadavg()
        for number, query in enumerate(queries):
            order = names[number % len(names) :] + names[: number % len(names)]  # who goes first rotates
            for name in order:
                pipeline = built[name][0]
                threads = torch.get_num_threads()
                start = time.perf_counter()
                if name == "peer-1-thread":
                    torch.set_num_threads(1)
                result = pipeline.run({"text_embedder": {"text": query}})
                torch.set_num_threads(threads)
                milliseconds[name].append(1000 * (time.perf_counter() - start))
                assert len(result["retriever"]["documents"]) == 10
        for _, store in built.values():
            if hasattr(store, "close"):
                store.close()

    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M+00:00"),
        "command": "benchmarks/query_latency.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "queries": len(queries),
        "documents": len(documents),
        "configurations": {},
    }
    reference = summary(milliseconds[names[0]])
    for name in names:
        figures = summary(milliseconds[name])
        same = [len(set(ours) & set(peer)) / 10 for ours, peer in zip(top10[name], top10[names[0]], strict=True)]
        figures["p50_ratio_to_" + names[0]] = round(figures["p50_ms"] / reference["p50_ms"], 3)
        figures["top10_overlap_with_" + names[0]] = round(float(np.mean(same)), 4)
        results["configurations"][name] = figures
        print(f"{name:16s} {json.dumps(figures)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    flags = json.dumps(results["machine"]["cpuinfo_flags"])
    print(f"machine: {flags}; load {load_start} -> {results['load_average_end']}")


if __name__ == "__main__":
    main()
