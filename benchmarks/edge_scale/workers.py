"""The child processes of the scale benchmark: one writes a collection into an engine, one reopens it and
times the queries. Each is a fresh process (``python -m benchmarks.edge_scale --worker write|query``), so its
memory and its reopening are its own."""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.collection import corpus_documents
from benchmarks.common import MODEL_DIMENSION, percentile
from benchmarks.edge_scale.vectors import vectors_of

#: Documents per ``write_documents`` call, as ``index_documents`` writes.
WRITE_BATCH = 1000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_store(engine: str, path: str, graph: dict[str, int] | None = None) -> Any:
    if engine == "edge":
        from simlm_haystack.stores import EdgeDocumentStore

        # As edge_document_store("minilm", embedding_dim=384, ...) makes it, with the HNSW graph settings given.
        store = EdgeDocumentStore(
            path=path, index="scale", embedding_dim=MODEL_DIMENSION, similarity="cosine", **(graph or {})
        )
        store.open()
        return store
    from simlm_haystack.stores import qdrant_document_store

    return qdrant_document_store("minilm", embedding_dim=MODEL_DIMENSION, path=path, index="scale")


def graph_settings(args: argparse.Namespace) -> dict[str, int]:
    """The Edge store's HNSW graph settings given on the command line (the store's defaults otherwise)."""
    given = {"hnsw_m": args.hnsw_m, "hnsw_ef_construct": args.hnsw_ef_construct}
    return {key: value for key, value in given.items() if value is not None}


def retriever_for(store: Any) -> Any:
    from simlm_haystack.components.pipelines import embedding_retriever

    return embedding_retriever(store, top_k=10)


def worker_write(args: argparse.Namespace) -> dict[str, Any]:
    from haystack import Document
    from haystack.document_stores.types import DuplicatePolicy

    base = np.load(args.documents)
    corpus = corpus_documents(args.data)
    store = open_store(args.engine, args.path, graph_settings(args))
    written, write_seconds = 0, 0.0  # only the write_documents calls are timed, not making the documents
    for batch_start in range(0, args.size, WRITE_BATCH):
        batch_stop = min(args.size, batch_start + WRITE_BATCH)
        vectors = vectors_of(base, batch_start, batch_stop, args.sigma, args.seed)
        documents = [
            Document(
                id=str(row),
                content=corpus[row % len(corpus)].content,
                meta=dict(corpus[row % len(corpus)].meta),
                embedding=vector.tolist(),
            )
            for row, vector in zip(range(batch_start, batch_stop), vectors, strict=True)
        ]
        start = time.perf_counter()
        written += store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
        write_seconds += time.perf_counter() - start
        if write_seconds > args.limit_seconds:
            store.close()
            return {
                "stopped": True,
                "written": written,
                "write_seconds": write_seconds,
                "writes_per_second": written / write_seconds,
            }
    result: dict[str, Any] = {"written": written, "write_seconds": write_seconds}
    if args.engine == "edge":
        start = time.perf_counter()
        store.optimize()
        result["index_build_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    store.close()
    result["close_seconds"] = time.perf_counter() - start
    result["writes_per_second"] = written / write_seconds
    result["writes_per_second_with_index_build"] = written / (write_seconds + result.get("index_build_seconds", 0.0))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def worker_query(args: argparse.Namespace) -> dict[str, Any]:
    queries = np.load(args.queries)
    exact = np.load(args.exact)
    import haystack  # noqa: F401  (libraries in memory before the baseline)
    import qdrant_client  # noqa: F401

    import simlm_haystack.stores  # noqa: F401

    baseline = rss_mb()
    start = time.perf_counter()
    store = open_store(args.engine, args.path, graph_settings(args))
    count = store.count_documents()
    reopen_seconds = time.perf_counter() - start
    after_open = rss_mb()
    retriever = retriever_for(store)
    if args.hnsw_ef is not None:
        retriever.hnsw_ef = args.hnsw_ef
    latencies, recalls = [], []
    first_ms = None
    for row, query in enumerate(queries):
        embedding = query.tolist()
        started = time.perf_counter()
        documents = retriever.run(query_embedding=embedding)["documents"]
        elapsed = (time.perf_counter() - started) * 1e3
        first_ms = elapsed if first_ms is None else first_ms
        latencies.append(elapsed)
        recalls.append(len({int(d.id) for d in documents} & set(exact[row].tolist())) / 10)
    after_queries = rss_mb()
    store.close()
    return {
        "points": count,
        "reopen_seconds": reopen_seconds,
        "first_query_ms": first_ms,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "recall_at_10": float(np.mean(recalls)),
        "rss_baseline_mb": baseline,
        "rss_store_open_mb": after_open - baseline,
        "rss_store_after_queries_mb": after_queries - baseline,
    }
