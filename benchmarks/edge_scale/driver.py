"""One size of the scale benchmark: each engine's write process, then the query processes in alternating rounds,
their medians, the Edge ``hnsw_ef`` sweep and the ratios of Edge to local mode."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    FLAGS,
    child_environment,
    cpu_flags,
    cpu_model,
    memory_gb,
    module_command,
    package_versions,
    usable_cores,
)
from benchmarks.edge_scale.vectors import vectors_of

ENGINES = ("edge", "local")
#: The query figures whose median over the rounds is reported.
QUERY_FIGURES = (
    "reopen_seconds",
    "first_query_ms",
    "p50_ms",
    "p99_ms",
    "recall_at_10",
    "rss_store_open_mb",
    "rss_store_after_queries_mb",
)


def machine_with_engines() -> dict[str, Any]:
    """The machine record of ``edge_scale.json`` (the CPU flags as a list, the memory, the engines' versions)."""
    present = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in FLAGS if flag in present],
        "usable_cores": usable_cores(),
        "memory_gb": memory_gb(),
        "python": platform.python_version(),
        "versions": package_versions(("qdrant-edge-py", "qdrant-client", "qdrant-haystack", "haystack-ai")),
    }


def run_worker(kind: str, arguments: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run a ``--worker kind`` process and return the JSON it printed last."""
    command = [*module_command("benchmarks.edge_scale"), "--worker", kind, *arguments]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=child_environment()
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return float(np.median([r[key] for r in rounds]))


def exact_neighbours(args: argparse.Namespace, base: np.ndarray, queries: np.ndarray, size: int) -> Path:
    """Each query's exact top 10 among the first ``size`` points, saved for the query workers' recall."""
    vectors = vectors_of(base, 0, size, args.sigma, args.seed)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    del vectors
    exact_file = args.workdir / f"exact-{size}.npy"
    args.workdir.mkdir(parents=True, exist_ok=True)
    np.save(exact_file, exact)
    return exact_file


def measure_size(
    args: argparse.Namespace,
    size: int,
    engines: list[str],
    files: dict[str, Path],
    exact_file: Path,
    graph_flags: list[str],
) -> dict[str, Any]:
    """Write, then query, ``size`` points in each of ``engines`` (in that order); the size's entry."""
    entry: dict[str, Any] = {"engines_order": engines, "load_average": os.getloadavg()}
    paths = {engine: args.workdir / f"{engine}-{size}" for engine in engines}

    def common(engine: str) -> list[str]:
        return [*graph_flags, "--engine", engine, "--size", str(size), "--path", str(paths[engine])]

    for engine in engines:
        shutil.rmtree(paths[engine], ignore_errors=True)
        limit = args.local_limit_minutes * 60 if engine == "local" else float("inf")
        data = ["--data", str(args.data), "--documents", str(files["documents"])]
        noise = ["--sigma", str(args.sigma), "--seed", str(args.seed), "--limit-seconds", str(limit)]
        entry[engine] = {"write": run_worker("write", [*common(engine), *data, *noise])}
        print(engine, "write", entry[engine]["write"], flush=True)
    queried = [engine for engine in engines if not entry[engine]["write"].get("stopped")]
    query_files = ["--queries", str(files["queries"]), "--exact", str(exact_file)]
    rounds: dict[str, list[dict[str, Any]]] = {engine: [] for engine in queried}
    for _ in range(args.rounds):
        for engine in queried:
            rounds[engine].append(run_worker("query", [*common(engine), *query_files]))
            print(engine, "query", rounds[engine][-1], flush=True)
    for engine in queried:
        entry[engine]["query_rounds"] = rounds[engine]
        entry[engine]["query"] = {key: median_of(rounds[engine], key) for key in QUERY_FIGURES}
    if "edge" in queried and args.ef_sweep:
        entry["edge"]["hnsw_ef_sweep"] = {
            ef: run_worker("query", [*common("edge"), *query_files, "--hnsw-ef", str(ef)]) for ef in args.ef_sweep
        }
    if set(queried) == set(ENGINES):
        entry["ratios_edge_over_local"] = ratios(entry["edge"], entry["local"])
    entry["disk_mb"] = {
        engine: sum(f.stat().st_blocks * 512 for f in paths[engine].rglob("*") if f.is_file()) / 2**20
        for engine in engines
    }
    for engine in engines:
        shutil.rmtree(paths[engine], ignore_errors=True)
    return entry


def ratios(edge: dict[str, Any], local: dict[str, Any]) -> dict[str, float]:
    """Edge's figures over local mode's at one size."""
    return {
        "writes_per_second": edge["write"]["writes_per_second"] / local["write"]["writes_per_second"],
        "writes_per_second_with_index_build": edge["write"]["writes_per_second_with_index_build"]
        / local["write"]["writes_per_second"],
        "p50_ms": edge["query"]["p50_ms"] / local["query"]["p50_ms"],
        "rss_store_after_queries_mb": edge["query"]["rss_store_after_queries_mb"]
        / local["query"]["rss_store_after_queries_mb"],
        "reopen_seconds": edge["query"]["reopen_seconds"] / local["query"]["reopen_seconds"],
    }
