"""The command line of the scale benchmark (``python -m benchmarks.edge_scale``): the driver, or one worker."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import benchmarks.edge_scale
from benchmarks.collection_vectors import scifact_vectors
from benchmarks.common import add_data_argument, result_file, write_results
from benchmarks.edge_scale.driver import ENGINES, exact_neighbours, machine_with_engines, measure_size
from benchmarks.edge_scale.vectors import vectors_of
from benchmarks.edge_scale.workers import graph_settings, worker_query, worker_write

RESULTS = result_file("edge_scale")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.edge_scale", description=benchmarks.edge_scale.__doc__.splitlines()[0]
    )
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
    return parser


def describe_vectors(args: argparse.Namespace, base: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """How far a perturbed copy lies from its source, next to how far SciFact's nearest neighbours lie."""
    neighbour = base @ base.T
    np.fill_diagonal(neighbour, -1)
    copy_cosines = [
        float(vectors_of(base, row, row + 1, args.sigma, args.seed)[0] @ base[row % len(base)])
        for row in range(len(base), len(base) + 2000)
    ]
    return {
        "scifact_documents": len(base),
        "queries": len(queries),
        "sha256_documents": hashlib.sha256(base.tobytes()).hexdigest()[:16],
        "sigma": args.sigma,
        "median_cosine_copy_to_its_source": float(np.median(copy_cosines)),
        "median_cosine_scifact_nearest_neighbour": float(np.median(neighbour.max(axis=1))),
    }


def main() -> None:
    args = parser().parse_args()
    if args.worker:
        worker = worker_write if args.worker == "write" else worker_query
        print(json.dumps(worker(args)))
        return

    graph_flags = [f"--{key.replace('_', '-')}={value}" for key, value in graph_settings(args).items()]
    files = scifact_vectors(args.cache, args.data)
    base = np.load(files["documents"])
    queries = np.load(files["queries"])
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": machine_with_engines(),
        "load_average_start": os.getloadavg(),
        "data": str(args.data),
        "vectors": describe_vectors(args, base, queries),
        "local_limit_minutes": args.local_limit_minutes,
        "edge_graph": graph_settings(args) or "the store's defaults",
        "sizes": {},
    }
    local_stopped_at: int | None = None
    for position, size in enumerate(args.sizes):
        print(f"--- {size} points (load {os.getloadavg()[0]:.1f})", flush=True)
        exact_file = exact_neighbours(args, base, queries, size)
        engines = [
            e
            for e in (ENGINES if position % 2 == 0 else ENGINES[::-1])
            if e in args.engines and (e == "edge" or local_stopped_at is None)
        ]
        entry = measure_size(args, size, engines, files, exact_file, graph_flags)
        if any(entry[engine]["write"].get("stopped") for engine in engines):
            local_stopped_at = size
        results["sizes"][str(size)] = entry
        results["local_stopped_at"] = local_stopped_at
        results["load_average_end"] = os.getloadavg()
        write_results(args.out, results)  # after every size: partial results survive
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
