"""The documents part: what a variant's setting does to indexing, documents/s alternating batch by batch."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.query_forward.variants import Variant
from simlm_haystack.evaluation import load_beir


def part_documents(variants: list[Variant], names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Documents/s of ``names`` on the first ``--docs`` SciFact documents, batches of 32 (the document
    embedder's default), the variants alternating batch by batch in a fresh random order."""
    collection = load_beir(args.data, splits=["test"])
    documents = collection.documents[: args.docs]
    texts = [document.content or "" for document in documents]
    titles = [document.meta.get("title") for document in documents]
    by_name = {variant.name: variant for variant in variants}
    batches = [slice(start, start + 32) for start in range(0, len(texts), 32)]
    for name in names:  # first-call allocations
        by_name[name].encoder.encode("document", texts[:32], titles[:32], batch_size=32)
    seconds: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    shuffle = np.random.default_rng(11)
    load = [os.getloadavg()]
    for round_number in range(args.document_rounds):
        for number, batch in enumerate(batches):
            for index in shuffle.permutation(len(names)):
                began = time.perf_counter()
                by_name[names[index]].encoder.encode("document", texts[batch], titles[batch], batch_size=32)
                seconds[names[index]][round_number, number] = time.perf_counter() - began
        load.append(os.getloadavg())
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "docs": len(texts),
        "rounds": args.document_rounds,
        "load_average_before_after_each_round": load,
    }
    for name in names:
        per_round = [
            len(texts) / sum(value for (r, _), value in seconds[name].items() if r == round_number)
            for round_number in range(args.document_rounds)
        ]
        results[name] = {
            "docs_per_s_median": round(statistics.median(per_round), 2),
            "docs_per_s_per_round": [round(rate, 2) for rate in per_round],
            "time_ratio_to_first_per_batch_p50": round(
                statistics.median(value / seconds[names[0]][key] for key, value in seconds[name].items()), 3
            ),
        }
        print(f"{name}: {results[name]['docs_per_s_median']} documents/s", flush=True)
    return results
