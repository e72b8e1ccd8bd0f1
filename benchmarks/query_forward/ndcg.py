"""The nDCG part: SciFact test nDCG@10 of lossy variants, the queries encoded one at a time as they are served
(and in batches of 32, as the package's evaluator encodes them), exact search over the variant's corpus vectors."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.query_forward.variants import CURRENT_INT8, Variant
from simlm_haystack.evaluation import load_beir
from simlm_haystack.evaluation.retrieval import Run
from simlm_haystack.evaluation.scoring import calc_metrics

#: SciFact test nDCG@10 of the exact model (BENCHMARKS.md, issue 11); lossy variants must stay within 0.3.
EXACT_NDCG10, NDCG_BAND = 0.6451, 0.003


def exact_top100(queries: np.ndarray, corpus: np.ndarray, ids: list[str], query_ids: list[str]) -> Run:
    """Exact inner-product search (the vectors are normalised: cosine), the top 100 of each query."""
    scores = queries @ corpus.T
    top = np.argpartition(-scores, 100, axis=1)[:, :100]
    return {query_id: {ids[j]: float(scores[i, j]) for j in top[i]} for i, query_id in enumerate(query_ids)}


def part_ndcg(variants: list[Variant], names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    collection = load_beir(args.data, splits=["test"])
    qrels = collection.split("test")
    queries = collection.judged_queries("test")
    documents = collection.documents
    texts = [document.content or "" for document in documents]
    titles = [document.meta.get("title") for document in documents]
    ids = [document.id for document in documents]
    by_name = {variant.name: variant for variant in variants}
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="minutes")}
    for name in names:
        variant = by_name[name]
        began = time.perf_counter()
        corpus = variant.encoder.encode("document", texts, titles, batch_size=32)
        corpus_seconds = time.perf_counter() - began
        served = np.concatenate([variant.encode(text) for text in queries.values()])
        metrics = calc_metrics(qrels, exact_top100(served, corpus, ids, list(queries)), ["nDCG@10", "RR@10", "R@100"])
        # The package's evaluator encodes queries in batches of 32 (padded): int8's activation scales then
        # span the batch, so its vectors differ from the ones served one at a time.
        batched = variant.encoder.encode("query", list(queries.values()), batch_size=32)
        batched_ndcg = calc_metrics(qrels, exact_top100(batched, corpus, ids, list(queries)), ["nDCG@10"])["nDCG@10"]
        results[name] = {
            **{measure: round(100 * value, 2) for measure, value in metrics.items()},
            "nDCG@10_minus_exact": round(100 * (metrics["nDCG@10"] - EXACT_NDCG10), 2),
            "within_band": abs(metrics["nDCG@10"] - EXACT_NDCG10) <= NDCG_BAND + 1e-9,
            "nDCG@10_queries_in_batches_of_32": round(100 * batched_ndcg, 2),
            "corpus_docs_per_s": round(len(texts) / corpus_seconds, 1),
            "date": datetime.now(UTC).isoformat(timespec="minutes"),
            "load_average_after": os.getloadavg(),
        }
        print(f"{name}: nDCG@10 {100 * metrics['nDCG@10']:.2f} ({corpus_seconds:.0f} s for the corpus)", flush=True)
    return results


def ndcg_candidates(timing: Mapping[str, Any]) -> list[str]:
    """The package's int8 and every lossy variant faster than it (median of the per-query ratios < 1)."""
    return [CURRENT_INT8] + [
        name
        for name, entry in timing["variants"].items()
        if entry["lossy"] and name != CURRENT_INT8 and entry["forward_paired_ratio_p50"][CURRENT_INT8] < 1
    ]
