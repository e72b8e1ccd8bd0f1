"""Document encoding speed: our embedder per precision mode vs SentenceTransformersDocumentEmbedder.

Same offline all-MiniLM-L6-v2 checkpoint, same recipe (mean pooling, 256 tokens, title + " " + text),
same SciFact documents, progress bars off. Competitors alternate in one process, so the load the
other tenants of this machine put on it hits all of them alike; medians and ratios are reported.

    .venv/bin/python -m benchmarks.speed_documents --docs 2000 --rounds 3   # --data DIR: another BEIR collection
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from haystack import Document

from benchmarks.collection import corpus_documents
from benchmarks.common import (
    MODEL,
    add_data_argument,
    cpu_model,
    result_file,
    uptime,
    usable_cores,
    write_results,
)
from benchmarks.peers import peer_document_embedder, unit_vectors
from simlm_haystack import DualEncoderDocumentEmbedder
from simlm_haystack.fast import native_bf16
from simlm_haystack.models import local_model_path

RESULTS = result_file("speed_documents")


def machine_with_torch() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["exact", "fast"], help="our precision modes to alternate")
    parser.add_argument("--bf16-docs", type=int, default=64, help="bf16 measured once on this many (0: skip)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    model = local_model_path(MODEL)
    documents = corpus_documents(args.data, args.docs)
    peer = peer_document_embedder(model, args.batch_size)
    competitors: dict[str, Callable[[list[Document]], list[Document]]] = {"peer": lambda d: peer.run(d)["documents"]}
    for mode in args.modes:
        ours = DualEncoderDocumentEmbedder(
            model=model, recipe="minilm", precision=mode, progress_bar=False, batch_size=args.batch_size
        )
        ours.warm_up()
        competitors[mode] = lambda d, ours=ours: ours.run(d)["documents"]

    for run in competitors.values():  # warm-up: first-call allocations, lazy imports
        run(documents[:8])
    seconds: dict[str, list[float]] = {name: [] for name in competitors}
    outputs: dict[str, np.ndarray] = {}
    for round_number in range(args.rounds):
        for name, run in competitors.items():
            start = time.perf_counter()
            embedded = run(documents)
            seconds[name].append(time.perf_counter() - start)
            outputs[name] = unit_vectors(embedded)
        print(f"round {round_number + 1}: " + ", ".join(f"{n} {s[-1]:.1f}s" for n, s in seconds.items()), flush=True)

    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": machine_with_torch(),
        "data": str(args.data),
        "docs": len(documents),
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "load_average": os.getloadavg(),
        "modes": {},
    }
    peer_rate = len(documents) / statistics.median(seconds["peer"])
    for name, times in seconds.items():
        rate = len(documents) / statistics.median(times)
        cosine = (outputs[name] * outputs["peer"]).sum(axis=1)
        results["modes"][name] = {
            "docs_per_s_median": rate,
            "docs_per_s_all": [len(documents) / t for t in times],
            "ratio_to_peer": rate / peer_rate,
            "min_cosine_to_peer": float(cosine.min()),
        }
    if args.bf16_docs:
        # Measured alone on a few documents: where bf16 is emulated it is too slow to alternate in full.
        subset = documents[: args.bf16_docs]
        bf16 = DualEncoderDocumentEmbedder(
            model=model, recipe="minilm", precision="bf16", progress_bar=False, batch_size=args.batch_size
        )
        bf16.warm_up()
        bf16.run(subset[:8])
        rates: dict[str, list[float]] = {"bf16": [], "exact": []}
        for _ in range(args.rounds):
            for name, run in (("bf16", lambda d: bf16.run(d)["documents"]), ("exact", competitors["exact"])):
                start = time.perf_counter()
                embedded = run(subset)
                rates[name].append(len(subset) / (time.perf_counter() - start))
                outputs[name + "_subset"] = unit_vectors(embedded)
        cosine = (outputs["bf16_subset"] * outputs["exact_subset"]).sum(axis=1)
        results["bf16_subset"] = {
            "docs": len(subset),
            "bf16_docs_per_s_median": statistics.median(rates["bf16"]),
            "exact_docs_per_s_median": statistics.median(rates["exact"]),
            "ratio_bf16_to_exact": statistics.median(rates["bf16"]) / statistics.median(rates["exact"]),
            "min_cosine_bf16_to_exact": float(cosine.min()),
        }
    results["uptime"] = uptime()
    write_results(args.out, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
