"""Embedded scale: EdgeDocumentStore (Qdrant Edge) vs QdrantDocumentStore(path=...) (qdrant-client local mode).

Vectors: the 5,183 SciFact documents encoded once with all-MiniLM-L6-v2 (minilm recipe; cached as .npy
under --cache), then perturbed copies up to each size: copy j of document i is
``normalise(v_i + sigma * g_j)`` with ``g_j ~ N(0, I_384)`` drawn from a seeded generator, so a copy is
another document on the same topic, not a random point (random Gaussian vectors are the worst case for
any graph index and not what users store). Each document carries its SciFact title and text as payload.
Queries: the 300 SciFact test queries, encoded with the same model.

For each size, each engine runs in fresh subprocesses: one writes (``write_documents`` in batches of
1,000 with ``DuplicatePolicy.OVERWRITE``, as ``index_documents`` writes; then Edge builds its HNSW graph,
timed apart); then query processes reopen the store and run the 300 queries one at a time through the
engine's retriever component, in --rounds rounds that alternate the engines (the medians of the rounds
are reported). The write phases alternate their order from size to size. Local mode is stopped at the
first size whose write phase passes --local-limit-minutes, and not run at larger sizes.

    .venv/bin/python benchmarks/edge_scale.py --sizes 10000 50000 200000   # --data DIR: another BEIR collection
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from collection import DEFAULT_DATA, add_data_argument, corpus_documents, test_queries

RESULTS = Path(__file__).resolve().parent / "results" / "edge_scale.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENGINES = ("edge", "local")
WRITE_BATCH = 1000


# --- the vectors --------------------------------------------------------------------------------------------------


def scifact_vectors(cache: Path, data: Path = DEFAULT_DATA) -> dict[str, Path]:
    """Encode the collection's corpus and test queries with MiniLM once; later runs read the cached files.

    The files are named after the collection's folder (``scifact_minilm_documents.npy`` for SciFact).
    """
    files = {name: cache / f"{Path(data).name}_minilm_{name}.npy" for name in ("documents", "queries")}
    if all(path.is_file() for path in files.values()):
        return files
    from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder
    from simlm_haystack.models import local_model_path

    cache.mkdir(parents=True, exist_ok=True)
    documents = corpus_documents(data)
    embedder = DualEncoderDocumentEmbedder(model=local_model_path(MODEL), recipe="minilm", progress_bar=True)
    embedder.warm_up()
    embedded = embedder.run(documents)["documents"]
    np.save(files["documents"], np.array([d.embedding for d in embedded], dtype=np.float32))
    queries = test_queries(data)
    text_embedder = DualEncoderTextEmbedder(model=local_model_path(MODEL), recipe="minilm")
    text_embedder.warm_up()
    assert text_embedder.encoder is not None
    np.save(files["queries"], text_embedder.encoder.encode("query", queries).astype(np.float32))
    return files


def vectors_of(base: np.ndarray, start: int, stop: int, sigma: float, seed: int) -> np.ndarray:
    """Rows ``start:stop`` of the collection: the SciFact vectors, then their perturbed copies.

    Row r >= len(base) is ``normalise(base[r % len(base)] + sigma * g)``, g drawn from a generator seeded
    with (seed, r), so any slice is the same whichever process makes it.
    """
    rows = []
    for row in range(start, stop):
        if row < len(base):
            rows.append(base[row])
            continue
        noise = np.random.default_rng([seed, row]).standard_normal(base.shape[1]).astype(np.float32)
        vector = base[row % len(base)] + sigma * noise
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)


# --- the worker processes -----------------------------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_store(engine: str, path: str, graph: dict[str, int] | None = None) -> Any:
    if engine == "edge":
        from simlm_haystack.stores import EdgeDocumentStore

        # As edge_document_store("minilm", embedding_dim=384, ...) makes it, with the HNSW graph settings given.
        store = EdgeDocumentStore(path=path, index="scale", embedding_dim=384, similarity="cosine", **(graph or {}))
        store.open()
        return store
    from simlm_haystack.stores import qdrant_document_store

    return qdrant_document_store("minilm", embedding_dim=384, path=path, index="scale")


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
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "recall_at_10": float(np.mean(recalls)),
        "rss_baseline_mb": baseline,
        "rss_store_open_mb": after_open - baseline,
        "rss_store_after_queries_mb": after_queries - baseline,
    }


# --- the driver ---------------------------------------------------------------------------------------------------


def run_worker(kind: str, arguments: list[str], timeout: float | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", kind, *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    versions = {name: version(name) for name in ("qdrant-edge-py", "qdrant-client", "qdrant-haystack", "haystack-ai")}
    return {
        "cpu": model,
        "cpu_flags": [flag for flag in wanted if flag in flags],
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "versions": versions,
    }


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return float(np.median([r[key] for r in rounds]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--sigma", type=float, default=0.04, help="noise per dimension of a perturbed copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="query rounds per engine and size, alternating")
    parser.add_argument("--ef-sweep", type=int, nargs="*", default=[32, 64, 128, 256], help="Edge hnsw_ef values")
    parser.add_argument("--local-limit-minutes", type=float, default=10.0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/simlm-haystack-bench"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/simlm-haystack-bench/stores"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--hnsw-m", type=int, help="Edge graph: edges per node (default: the store's)")
    parser.add_argument("--hnsw-ef-construct", type=int, help="Edge graph: build candidates (default: the store's)")
    # worker arguments
    parser.add_argument("--worker", choices=["write", "query"])
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--size", type=int)
    parser.add_argument("--path")
    parser.add_argument("--documents")
    parser.add_argument("--queries")
    parser.add_argument("--exact")
    parser.add_argument("--limit-seconds", type=float, default=float("inf"))
    parser.add_argument("--hnsw-ef", type=int)
    args = parser.parse_args()
    if args.worker:
        worker = worker_write if args.worker == "write" else worker_query
        print(json.dumps(worker(args)))
        return

    graph_flags = [f"--{key.replace('_', '-')}={value}" for key, value in graph_settings(args).items()]
    files = scifact_vectors(args.cache, args.data)
    base = np.load(files["documents"])
    queries = np.load(files["queries"])
    neighbour = base @ base.T
    np.fill_diagonal(neighbour, -1)
    copy_cosines = [
        float(vectors_of(base, row, row + 1, args.sigma, args.seed)[0] @ base[row % len(base)])
        for row in range(len(base), len(base) + 2000)
    ]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": machine(),
        "load_average_start": os.getloadavg(),
        "data": str(args.data),
        "vectors": {
            "scifact_documents": len(base),
            "queries": len(queries),
            "sha256_documents": hashlib.sha256(base.tobytes()).hexdigest()[:16],
            "sigma": args.sigma,
            "median_cosine_copy_to_its_source": float(np.median(copy_cosines)),
            "median_cosine_scifact_nearest_neighbour": float(np.median(neighbour.max(axis=1))),
        },
        "local_limit_minutes": args.local_limit_minutes,
        "edge_graph": graph_settings(args) or "the store's defaults",
        "sizes": {},
    }
    del neighbour
    local_stopped_at: int | None = None
    for position, size in enumerate(args.sizes):
        print(f"--- {size} points (load {os.getloadavg()[0]:.1f})", flush=True)
        vectors = vectors_of(base, 0, size, args.sigma, args.seed)
        exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
        del vectors
        exact_file = args.workdir / f"exact-{size}.npy"
        args.workdir.mkdir(parents=True, exist_ok=True)
        np.save(exact_file, exact)
        engines = [
            e
            for e in (ENGINES if position % 2 == 0 else ENGINES[::-1])
            if e in args.engines and (e == "edge" or local_stopped_at is None)
        ]
        entry: dict[str, Any] = {"engines_order": engines, "load_average": os.getloadavg()}
        paths = {engine: args.workdir / f"{engine}-{size}" for engine in engines}
        for engine in engines:
            shutil.rmtree(paths[engine], ignore_errors=True)
            limit = args.local_limit_minutes * 60 if engine == "local" else float("inf")
            common = [*graph_flags, "--engine", engine, "--size", str(size), "--path", str(paths[engine])]
            entry[engine] = {
                "write": run_worker(
                    "write",
                    [
                        *common,
                        "--data",
                        str(args.data),
                        "--documents",
                        str(files["documents"]),
                        "--sigma",
                        str(args.sigma),
                        "--seed",
                        str(args.seed),
                        "--limit-seconds",
                        str(limit),
                    ],
                )
            }
            print(engine, "write", entry[engine]["write"], flush=True)
            if entry[engine]["write"].get("stopped"):
                local_stopped_at = size
        queried = [engine for engine in engines if not entry[engine]["write"].get("stopped")]
        rounds: dict[str, list[dict[str, Any]]] = {engine: [] for engine in queried}
        for _ in range(args.rounds):
            for engine in queried:
                common = [*graph_flags, "--engine", engine, "--size", str(size), "--path", str(paths[engine])]
                rounds[engine].append(
                    run_worker("query", [*common, "--queries", str(files["queries"]), "--exact", str(exact_file)])
                )
                print(engine, "query", rounds[engine][-1], flush=True)
        for engine in queried:
            entry[engine]["query_rounds"] = rounds[engine]
            entry[engine]["query"] = {
                key: median_of(rounds[engine], key)
                for key in (
                    "reopen_seconds",
                    "first_query_ms",
                    "p50_ms",
                    "p99_ms",
                    "recall_at_10",
                    "rss_store_open_mb",
                    "rss_store_after_queries_mb",
                )
            }
        if "edge" in queried and args.ef_sweep:
            common = [*graph_flags, "--engine", "edge", "--size", str(size), "--path", str(paths["edge"])]
            entry["edge"]["hnsw_ef_sweep"] = {
                ef: run_worker(
                    "query",
                    [*common, "--queries", str(files["queries"]), "--exact", str(exact_file), "--hnsw-ef", str(ef)],
                )
                for ef in args.ef_sweep
            }
        if set(queried) == set(ENGINES):
            edge, local = entry["edge"], entry["local"]
            entry["ratios_edge_over_local"] = {
                "writes_per_second": edge["write"]["writes_per_second"] / local["write"]["writes_per_second"],
                "writes_per_second_with_index_build": edge["write"]["writes_per_second_with_index_build"]
                / local["write"]["writes_per_second"],
                "p50_ms": edge["query"]["p50_ms"] / local["query"]["p50_ms"],
                "rss_store_after_queries_mb": edge["query"]["rss_store_after_queries_mb"]
                / local["query"]["rss_store_after_queries_mb"],
                "reopen_seconds": edge["query"]["reopen_seconds"] / local["query"]["reopen_seconds"],
            }
        entry["disk_mb"] = {
            engine: sum(f.stat().st_blocks * 512 for f in paths[engine].rglob("*") if f.is_file()) / 2**20
            for engine in engines
        }
        results["sizes"][str(size)] = entry
        for engine in engines:
            shutil.rmtree(paths[engine], ignore_errors=True)
        results["local_stopped_at"] = local_stopped_at
        results["load_average_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(results, indent=2) + "\n", encoding="utf-8"
        )  # after every size: partial results survive
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
