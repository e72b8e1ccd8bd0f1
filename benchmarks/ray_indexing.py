"""Indexing with Ray Data vs ``index_documents``: documents per second on this machine, and what Ray costs.

MiniLM (recipe ``minilm``) encodes the first ``--documents`` SciFact passages (the whole corpus, 5,183 passages,
takes 10-15 minutes per configuration on two shared cores) into Qdrant Edge and into ``qdrant-client``'s local
mode, each run into a fresh collection:

- ``index_documents`` in this process (torch on every core: two threads here);
- ``index_with_ray`` with 1 and 2 workers (one CPU, so one thread, each), on a local Ray cluster of two CPUs
  started once (its start-up time is reported apart). Each Ray run's time includes starting its workers (each
  imports torch, transformers and Haystack and loads the model): ``first_report_seconds`` is when the first block
  came back, and ``steady_docs_per_s`` the rate from then to the last block.

Then the writes alone, with random vectors (no encoding): Edge and local mode written directly by this process,
and through the one writer actor that holds an embedded collection for the Ray workers (``--write-documents``,
default the whole corpus), to show how far writing is from being the bottleneck.

    .venv/bin/python -m benchmarks.ray_indexing               # torch; --backend onnx-int8 too
    .venv/bin/python -m benchmarks.ray_indexing --documents 5183   # the whole corpus (long)

Results go to ``benchmarks/results/ray_indexing.json``, one entry per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from haystack.document_stores.types import DuplicatePolicy

from benchmarks.collection import corpus_documents
from benchmarks.common import (
    MODEL,
    MODEL_DIMENSION,
    add_data_argument,
    command_line,
    load_average,
    machine,
    read_results,
    result_file,
    write_results,
)
from simlm_haystack import DualEncoderDocumentEmbedder, edge_document_store, index_documents, qdrant_document_store
from simlm_haystack.models import local_model_path

RESULTS = result_file("ray_indexing")
BACKENDS = {"torch": {"backend": "torch", "precision": "exact"}, "onnx-int8": {"backend": "onnx", "precision": "int8"}}


def make_store(engine: str, embedder: Any, directory: str) -> Any:
    if engine == "edge":
        return edge_document_store(embedder, path=directory, index="scifact")
    return qdrant_document_store(embedder, path=directory, index="scifact")


def write_corpus(documents: list, path: Path) -> None:
    with path.open("w", encoding="utf-8") as file:
        for document in documents:
            file.write(json.dumps({"_id": document.id, **document.meta, "text": document.content}) + "\n")


def run_index_documents(embedder: Any, documents: list, engine: str, chunk_size: int) -> dict[str, Any]:
    before = load_average()
    with tempfile.TemporaryDirectory() as directory:
        store = make_store(engine, embedder, directory)
        start = time.perf_counter()
        written = index_documents(documents, embedder, store, chunk_size=chunk_size, progress_bar=False)
        seconds = time.perf_counter() - start
        count = store.count_documents()
        store.close()
    assert written == count == len(documents)
    return {
        "documents": written,
        "seconds": round(seconds, 2),
        "docs_per_s": round(written / seconds, 2),
        "load_average_before": before,
        "load_average_after": load_average(),
    }


def run_ray(embedder: Any, corpus: Path, engine: str, workers: int, chunk_size: int, total: int) -> dict[str, Any]:
    from simlm_haystack.distributed import BatchReport, index_with_ray

    before = load_average()
    arrivals: list[tuple[float, int]] = []
    busy: dict[int, list[tuple[int, float]]] = {}  # worker pid: (documents, seconds) of each block it did

    def follow(batch: BatchReport) -> None:
        arrivals.append((time.perf_counter() - start, batch.documents))
        busy.setdefault(batch.worker_pid, []).append((batch.documents, batch.seconds))

    with tempfile.TemporaryDirectory() as directory:
        store = make_store(engine, embedder, directory)
        start = time.perf_counter()
        report = index_with_ray(
            corpus,
            embedder,
            store,
            workers=workers,
            chunk_size=chunk_size,
            progress_bar=False,
            on_batch=follow,
        )
        seconds = time.perf_counter() - start
        count = store.count_documents()
        store.close()
    assert report.written == count == total
    first, last = arrivals[0][0], arrivals[-1][0]
    after_first = sum(documents for _, documents in arrivals[1:])
    return {
        "workers": report.workers,
        "documents": report.written,
        "seconds": round(seconds, 2),
        "docs_per_s": round(report.written / seconds, 2),
        "first_report_seconds": round(first, 2),
        "steady_docs_per_s": round(after_first / (last - first), 2) if last > first else None,
        # Each worker's own rate over the blocks it did (the time inside the worker: read, check, encode, write).
        "per_worker_docs_per_s": sorted(
            round(sum(d for d, _ in blocks) / sum(s for _, s in blocks), 2) for blocks in busy.values()
        ),
        "blocks": len(arrivals),
        "load_average_before": before,
        "load_average_after": load_average(),
    }


def vector_for(document_id: str) -> list[float]:
    vector = np.random.default_rng(zlib.crc32(document_id.encode())).standard_normal(MODEL_DIMENSION).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def write_rates(embedder: Any, documents: list, batch: int) -> dict[str, Any]:
    """Documents/s written with random vectors: directly, and through the writer actor (Ray must be up)."""
    import ray

    from simlm_haystack.distributed.targets import WriteTarget, start_writer_actor, store_settings

    embedded = [replace(document, embedding=vector_for(document.id)) for document in documents]
    batches = [embedded[start : start + batch] for start in range(0, len(embedded), batch)]
    rates: dict[str, Any] = {"documents": len(embedded), "batch": batch}
    for engine in ("edge", "local"):
        for how in ("direct", "writer_actor"):
            with tempfile.TemporaryDirectory() as directory:
                store = make_store(engine, embedder, directory)
                start = time.perf_counter()
                if how == "direct":
                    for part in batches:
                        store.write_documents(part, policy=DuplicatePolicy.OVERWRITE)
                else:
                    store.close()
                    actor = start_writer_actor(WriteTarget(*store_settings(store), retries=0, backoff_seconds=0))
                    start = time.perf_counter()  # the actor is up and holds the collection
                    for part in batches:
                        ray.get(actor.write.remote(part))
                    ray.get(actor.close.remote())
                    ray.kill(actor)
                seconds = time.perf_counter() - start
                count = store.count_documents()
                store.close()
            assert count == len(embedded)
            rates[f"{engine}_{how}_docs_per_s"] = round(len(embedded) / seconds, 1)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--documents", type=int, default=500, help="the first N corpus passages (default 500)")
    parser.add_argument("--backend", choices=list(BACKENDS), default="torch")
    parser.add_argument("--chunk-size", type=int, default=50, help="documents per block / chunk (default 50)")
    parser.add_argument("--write-documents", type=int, default=None, help="documents for the write rates (all)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from simlm_haystack.distributed import ray_cluster

    documents = corpus_documents(args.data, args.documents)
    embedder = DualEncoderDocumentEmbedder(
        model=str(local_model_path(MODEL)),
        recipe="minilm",
        local_files_only=True,
        progress_bar=False,
        **BACKENDS[args.backend],
    )
    embedder.warm_up()  # loaded (and, for onnx, exported) once, outside every timing
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M+00:00"),
        "command": command_line(),
        "machine": machine(),
        "model": MODEL,
        "recipe": "minilm",
        **BACKENDS[args.backend],
        "documents": len(documents),
        "chunk_size": args.chunk_size,
        "load_average_start": load_average(),
        "index_documents": {},
        "ray": {},
    }
    started = time.perf_counter()
    for engine in ("edge", "local"):
        result["index_documents"][engine] = run_index_documents(embedder, documents, engine, args.chunk_size)
        print(engine, "index_documents", result["index_documents"][engine], flush=True)
    with tempfile.TemporaryDirectory() as directory:
        corpus = Path(directory) / "corpus.jsonl"
        write_corpus(documents, corpus)
        with ray_cluster(num_cpus=2, object_store_memory=300 * 2**20) as cluster:
            import ray

            result["ray_version"] = ray.__version__
            result["ray_startup_seconds"] = round(cluster.startup_seconds, 2)
            print("ray start-up", result["ray_startup_seconds"], flush=True)
            for engine, workers in (("edge", 1), ("edge", 2), ("local", 2)):
                key = f"{engine}_{workers}_workers"
                result["ray"][key] = run_ray(embedder, corpus, engine, workers, args.chunk_size, len(documents))
                print(key, result["ray"][key], flush=True)
            result["writes_without_encoding"] = write_rates(
                embedder, corpus_documents(args.data, args.write_documents), batch=args.chunk_size
            )
            print("writes", result["writes_without_encoding"], flush=True)
    result["load_average_end"] = load_average()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    baseline = result["index_documents"]["edge"]["docs_per_s"]
    result["ratios_to_index_documents_edge"] = {
        key: round(run["docs_per_s"] / baseline, 3) for key, run in result["ray"].items()
    }
    stored = read_results(RESULTS)
    stored[args.backend] = result
    write_results(RESULTS, stored)
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
