"""Serving under load (issue 28): ``simlm-haystack serve`` on localhost, real HTTP clients, SciFact.

    .venv/bin/python -m benchmarks.serve_load [--data ../shared/data/scifact] [--queries 2000]

SciFact's 5,183 documents with their all-MiniLM-L6-v2 vectors (cached by
:func:`benchmarks.collection_vectors.scifact_vectors`) and BM25 vectors are written into a Qdrant Edge collection
(the encoder identity kept first, as ``index`` keeps it). For each kind of search (dense, hybrid) one server is
started as a subprocess (``--backend onnx --precision int8`` by default, the fastest measured query path), then:

- **what HTTP adds**: the in-process ``DualEncoderRetriever`` (same settings, on a copy of the collection, in this
  process) and one HTTP client alternate query by query; p50 of each and of the paired differences, and how many
  top-10 lists agree;
- **load**: 1, 4 and 16 concurrent clients (threads, one keep-alive connection each) send ``--queries`` queries in
  all (SciFact's 1,109 queries, cycled), top_k 10; throughput, p50, p99 and errors per run; then the in-process
  retriever from 1 and 2 threads, the same queries: how far two cores carry a search without HTTP;
- **writes while searching**: 4 clients search while a fifth adds documents (copies of corpus documents under new
  ids, 10 per request); every returned copy must equal what was sent (no half-written document), and afterwards
  every acknowledged copy must be found (none lost).

The machine is shared: the result file records the load before and after and the busiest other processes.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from benchmarks.collection import all_queries, corpus_documents
from benchmarks.common import (
    MODEL,
    add_data_argument,
    command_line,
    load_average,
    machine,
    median,
    percentiles,
    result_file,
    uptime,
    write_results,
)
from benchmarks.query_latency import documents_with_vectors

INDEX = "scifact"
RECIPE = "minilm"  # the cached vectors' reading of MiniLM


def busiest_processes(count: int = 5) -> list[str]:
    """The processes using the most CPU now (``ps``), to tell another tenant's load from this run's."""
    listing = subprocess.run(["ps", "-eo", "pcpu,pid,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines()[1 : count + 1]]


def build_collection(path: Path, model: str, data: Path, cache: Path) -> None:
    """SciFact with dense and BM25 vectors in an Edge collection; the identity is kept first, as ``index`` does."""
    from simlm_haystack import DualEncoderDocumentEmbedder
    from simlm_haystack.components.writing import write_setup
    from simlm_haystack.stores import edge_document_store

    embedder = DualEncoderDocumentEmbedder(model=model, recipe=RECIPE, progress_bar=False)
    store = edge_document_store(embedder, path=str(path), index=INDEX, use_sparse_embeddings=True)
    try:
        write_setup(embedder, store, retrieval="hybrid").check_collection()
        store.write_documents(documents_with_vectors(cache, data))
        store.optimize()
    finally:
        store.close()


class Client:
    """One HTTP client: a keep-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        payload = json.dumps(body).encode()
        self.connection.request("POST", f"/{route}/run", payload, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def search(self, query: str, top_k: int = 10) -> tuple[float, list[dict[str, Any]] | None]:
        """``(milliseconds, documents)``; documents None on an error."""
        start = time.perf_counter()
        try:
            status, answer = self.post("search", {"query": query, "top_k": top_k})
        except (OSError, http.client.HTTPException, ValueError):
            self.connection.close()  # reconnect on the next request
            return (time.perf_counter() - start) * 1000, None
        elapsed = (time.perf_counter() - start) * 1000
        return elapsed, answer["result"]["documents"] if status == 200 else None


def start_server(args: argparse.Namespace, path: Path, retrieval: str, port: int, log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("simlm-haystack")),
        "serve",
        "--model", args.model, "--recipe", RECIPE, "--backend", args.backend, "--precision", args.precision,
        "--qdrant-path", str(path), "--index", INDEX, "--retrieval", retrieval, "--port", str(port),
    ]  # fmt: skip
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/status")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start in 10 minutes")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_overhead(retriever: Any, port: int, queries: list[str], pairs: int) -> dict[str, Any]:
    """In-process and one HTTP client alternating query by query."""
    client = Client(port)
    local, remote, same = [], [], 0
    for query in itertools.islice(itertools.cycle(queries), pairs):
        start = time.perf_counter()
        expected = [document.id for document in retriever.run(query=query, top_k=10)["documents"]]
        local.append((time.perf_counter() - start) * 1000)
        elapsed, documents = client.search(query)
        remote.append(elapsed)
        same += documents is not None and [document["id"] for document in documents] == expected
    differences = [r - loc for r, loc in zip(remote, local, strict=True)]
    return {
        "pairs": pairs,
        "in_process": percentiles(local, 2),
        "http_one_client": percentiles(remote, 2),
        "http_minus_in_process_p50_ms": round(median(differences), 2),
        "p50_difference_ms": round(percentiles(remote, 2)["p50_ms"] - percentiles(local, 2)["p50_ms"], 2),
        "same_top10": same,
    }


def run_all(threads: list[threading.Thread]) -> float:
    """Start ``threads`` together and wait for them all; the seconds it took."""
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def load_run(port: int, queries: list[str], clients: int, total: int) -> dict[str, Any]:
    """``total`` queries over ``clients`` concurrent clients; throughput, p50, p99, errors."""
    run = threaded_run(lambda: Client(port).search, queries, clients, total)
    return {"clients": clients, **run}


def in_process_run(retriever: Any, queries: list[str], threads: int, total: int) -> dict[str, Any]:
    """The same on the in-process retriever, from ``threads`` threads: what the cores give without HTTP."""

    def search(query: str) -> tuple[float, list[Any]]:
        start = time.perf_counter()
        documents = retriever.run(query=query, top_k=10)["documents"]
        return (time.perf_counter() - start) * 1000, documents

    return {"threads": threads, **threaded_run(lambda: search, queries, threads, total)}


def threaded_run(searcher: Any, queries: list[str], threads: int, total: int) -> dict[str, Any]:
    """``total`` queries from ``threads`` threads, each calling its own ``searcher()`` (-> ``(ms, documents or
    None)``); throughput, p50, p99, errors."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]

    def work() -> None:
        search = searcher()
        while True:
            with lock:
                position = next(counter)
            if position >= total:
                return
            elapsed, documents = search(queries[position % len(queries)])
            with lock:
                latencies.append(elapsed)
                errors[0] += documents is None

    wall = run_all([threading.Thread(target=work) for _ in range(threads)])
    return {
        "queries": total,
        "seconds": round(wall, 2),
        "throughput_qps": round(total / wall, 1),
        **percentiles(latencies, 2),
        "errors": errors[0],
    }


def writes_while_searching(port: int, queries: list[str], data: Path, batches: int, searchers: int = 4) -> dict:
    """Searches by ``searchers`` clients while one more adds ``batches`` x 10 copies of corpus documents."""
    originals = corpus_documents(data, limit=batches * 10)
    sent = {
        f"copy-{n}": {"content": document.content, "meta": {**document.meta, "copy_of": document.id}}
        for n, document in enumerate(originals)
    }
    acknowledged: list[str] = []
    wrong: list[str] = []
    latencies: list[float] = []
    errors = [0]
    done = threading.Event()
    lock = threading.Lock()

    def write() -> None:
        client, ids = Client(port), list(sent)
        try:
            for start in range(0, len(ids), 10):
                status, answer = client.post(
                    "index", {"documents": [{"id": i, **sent[i]} for i in ids[start : start + 10]]}
                )
                if status == 200:
                    acknowledged.extend(answer["result"]["ids"])
        finally:
            done.set()

    def search(offset: int) -> None:
        client = Client(port)
        for query in itertools.islice(itertools.cycle(queries), offset, None):
            if done.is_set():
                return
            elapsed, documents = client.search(query, top_k=20)
            with lock:
                latencies.append(elapsed)
                errors[0] += documents is None
                for document in documents or ():
                    expected = sent.get(document["id"])
                    if expected is not None and expected != {"content": document["content"], "meta": document["meta"]}:
                        wrong.append(document["id"])

    wall = run_all(
        [threading.Thread(target=write), *(threading.Thread(target=search, args=(n * 97,)) for n in range(searchers))]
    )
    # Every acknowledged copy, found by a filtered search over them all.
    status, answer = Client(port).post(
        "search",
        {
            "query": "copy",
            "top_k": 1000,
            "filters": {"field": "meta.copy_of", "operator": "in", "value": [d.id for d in originals]},
        },
    )
    stored = {document["id"] for document in answer["result"]["documents"]} if status == 200 else set()
    return {
        "documents_sent": len(sent),
        "acknowledged": len(acknowledged),
        "lost": len(set(acknowledged) - stored),
        "half_written_returned": len(wrong),
        "searches": len(latencies),
        "search_errors": errors[0],
        "seconds": round(wall, 2),
        **percentiles(latencies, 2),
    }


def measure(args: argparse.Namespace, root: Path, retrieval: str, queries: list[str]) -> dict[str, Any]:
    from simlm_haystack import DualEncoderRetriever, DualEncoderTextEmbedder
    from simlm_haystack.stores import edge_document_store

    served, local = root / f"served-{retrieval}", root / f"local-{retrieval}"
    for copy in (served, local):
        shutil.copytree(root / "collection", copy)
    port = free_port()
    server = start_server(args, served, retrieval, port, root / f"server-{retrieval}.log")
    embedder = DualEncoderTextEmbedder(model=args.model, recipe=RECIPE, backend=args.backend, precision=args.precision)
    store = edge_document_store(embedder, path=str(local), index=INDEX, use_sparse_embeddings=True)
    try:
        retriever = DualEncoderRetriever.from_embedder(embedder, store, top_k=10, retrieval=retrieval)
        retriever.warm_up()
        warm = Client(port)
        for query in queries[:50]:
            retriever.run(query=query)
            warm.search(query)
        result: dict[str, Any] = {"overhead": http_overhead(retriever, port, queries, args.pairs)}
        result["load"] = [load_run(port, queries, clients, args.queries) for clients in args.clients]
        by_clients = {run["clients"]: run for run in result["load"]}
        if 1 in by_clients and 4 in by_clients:
            result["throughput_4_over_1"] = round(by_clients[4]["throughput_qps"] / by_clients[1]["throughput_qps"], 2)
        # What the two cores give the retriever alone, right after: the ceiling of the ratio above.
        result["in_process_load"] = [in_process_run(retriever, queries, threads, args.queries) for threads in (1, 2)]
        alone, pair = (run["throughput_qps"] for run in result["in_process_load"])
        result["in_process_2_threads_over_1"] = round(pair / alone, 2)
        result["writes_while_searching"] = writes_while_searching(port, queries, args.data, args.write_batches)
        print(json.dumps({retrieval: result}, indent=1), flush=True)
        return result
    finally:
        store.close()
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--model", help="checkpoint (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--queries", type=int, default=2000, help="queries per load run")
    parser.add_argument("--workers", type=int, help="the server's --workers (default: its own, the cores)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--pairs", type=int, default=500, help="in-process / HTTP query pairs")
    parser.add_argument("--write-batches", type=int, default=20, help="requests of 10 documents added while searching")
    parser.add_argument("--retrievals", nargs="+", default=["dense", "hybrid"], choices=["dense", "sparse", "hybrid"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/simlm-haystack-bench"))
    parser.add_argument("--out", type=Path, default=result_file("serve_load"))
    args = parser.parse_args()
    if args.model is None:
        from simlm_haystack.models import local_model_path

        args.model = local_model_path(MODEL)
    started = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "uptime": uptime(), "load": load_average()}
    before = busiest_processes()
    queries = all_queries(args.data)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="serve-load-") as directory:
        root = Path(directory)
        build_collection(root / "collection", args.model, args.data, args.cache)
        for retrieval in args.retrievals:
            results[retrieval] = measure(args, root, retrieval, queries)
    write_results(
        args.out,
        {
            "command": command_line(),
            "machine": machine(),
            "started": started,
            "busiest_processes_before": before,
            "finished": {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "uptime": uptime(),
                "load": load_average(),
            },
            "busiest_processes_after": busiest_processes(),
            "settings": {
                "model": MODEL,
                "recipe": RECIPE,
                "backend": args.backend,
                "precision": args.precision,
                "documents": len(corpus_documents(args.data)),
                "queries_per_run": args.queries,
                "top_k": 10,
            },
            "results": results,
        },
    )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
