"""Pseudo-relevance feedback against plain hybrid search on SciFact, chosen on train, reported on test (issue 27).

    .venv/bin/python -m benchmarks.feedback_scifact [--data ../shared/data/scifact] \
        [--out benchmarks/results/feedback_scifact.json]

No labels: the first pass is the default hybrid search (DBSF, 100 candidates a side, as users search); its
``m`` best documents are taken as relevant, and the second pass searches hybrid again with

- **dense Rocchio**: the query vector moved towards their mean, ``q + beta * mean(d)``, normalised;
- **BM25 RM3-style expansion**: the query's terms (weight 1 each) plus the ``t`` terms of highest summed
  BM25 weight in those documents, each weighted ``lam * w / max(w)``;
- both.

Each variant's nDCG@10, MRR@10 and R@100 on train and test, its latency (both passes, ms a query, p50 and p99)
and its paired-bootstrap 95% interval against plain hybrid per split. The variant best on train is reported on
test; a feedback default needs a train interval above 0 and at most 2 ms more a query (p50).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


from benchmarks.common import add_data_argument, command_line, machine, result_file, write_results
from benchmarks.scifact_splits import SPLITS, Split, load_scifact, paired_bootstrap, scored, with_store
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.feedback import PseudoRelevanceFeedback
from simlm_haystack.stores.fusion import HybridSearch

RESULTS = result_file("feedback_scifact")
#: name -> (m documents, dense beta (0: none), expansion terms t (0: none), lam).
VARIANTS: dict[str, tuple[int, float, int, float]] = {
    "rocchio m3 b0.5": (3, 0.5, 0, 0.0),
    "rocchio m5 b0.5": (5, 0.5, 0, 0.0),
    "rocchio m3 b1": (3, 1.0, 0, 0.0),
    "rm3 m3 t10 l0.5": (3, 0.0, 10, 0.5),
    "rm3 m5 t20 l0.3": (5, 0.0, 20, 0.3),
    "both m3 b0.5 t10 l0.5": (3, 0.5, 10, 0.5),
}


def feedback_run(store: EdgeDocumentStore, split: Split, variant: tuple[int, float, int, float]) -> tuple[dict, list]:
    m, beta, terms, lam = variant
    feedback = PseudoRelevanceFeedback(documents=m, beta=beta, terms=terms, lam=lam)
    sparse = split.sparse_vectors(BM25Settings())
    run: dict[str, dict[str, float]] = {}
    milliseconds = []
    for index, query_id in enumerate(split.ids):
        dense = split.dense[index].tolist()
        start = time.perf_counter()
        first = store.hybrid_retrieval(dense, sparse[index], top_k=feedback.documents, return_embedding=True)
        moved = feedback.moved({"query_embedding": dense, "query_sparse_embedding": sparse[index]}, first)
        documents = store.hybrid_retrieval(**moved, top_k=100, search=HybridSearch())
        milliseconds.append(1000 * (time.perf_counter() - start))
        run[query_id] = {d.id: float(d.score) for d in documents}
    return run, milliseconds


def plain_run(store: EdgeDocumentStore, split: Split) -> tuple[dict, list]:
    sparse = split.sparse_vectors(BM25Settings())
    run, milliseconds = {}, []
    for index, query_id in enumerate(split.ids):
        start = time.perf_counter()
        documents = store.hybrid_retrieval(split.dense[index].tolist(), sparse[index], top_k=100)
        milliseconds.append(1000 * (time.perf_counter() - start))
        run[query_id] = {d.id: float(d.score) for d in documents}
    return run, milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_start = os.getloadavg()
    started = time.perf_counter()
    scifact = load_scifact(args.data)

    def work(store: EdgeDocumentStore) -> dict[str, Any]:
        rows: dict[str, Any] = {
            "hybrid dbsf": {s: scored(scifact.splits[s], *plain_run(store, scifact.splits[s])) for s in SPLITS}
        }
        print("hybrid dbsf", {s: rows["hybrid dbsf"][s]["metrics"] for s in SPLITS}, flush=True)
        for name, variant in VARIANTS.items():
            rows[name] = {
                s: scored(scifact.splits[s], *feedback_run(store, scifact.splits[s], variant)) for s in SPLITS
            }
            for split in SPLITS:
                rows[name][split]["vs_hybrid"] = paired_bootstrap(
                    rows["hybrid dbsf"][split]["ndcg10_per_query"], rows[name][split]["ndcg10_per_query"]
                )
            print(name, {s: (rows[name][s]["metrics"], rows[name][s]["vs_hybrid"]) for s in SPLITS}, flush=True)
        return rows

    rows = with_store(scifact, BM25Settings(), work)
    best = max(VARIANTS, key=lambda name: rows[name]["train"]["metrics"]["nDCG@10"])
    extra_ms = rows[best]["train"]["latency_ms"]["p50_ms"] - rows["hybrid dbsf"]["train"]["latency_ms"]["p50_ms"]
    wins = rows[best]["train"]["vs_hybrid"]["low"] > 0 and extra_ms <= 2.0
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command_line(),
        "machine": machine(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
        "variants": {name: dict(zip(("m", "beta", "terms", "lam"), v, strict=True)) for name, v in VARIANTS.items()},
        "rows": rows,
        "best_on_train": best,
        "extra_p50_ms_on_train": round(extra_ms, 3),
        "default_on": wins,
    }
    write_results(args.out, report, indent=1)
    print(f"{'search':24s} {'train nDCG':>10s} {'test nDCG':>10s} {'test vs hybrid [95%]':>24s} {'p50 ms':>7s}")
    for name, row in rows.items():
        test = row["test"]
        interval = test.get("vs_hybrid", {"mean": 0.0, "low": 0.0, "high": 0.0})
        print(
            f"{name:24s} {row['train']['metrics']['nDCG@10']:10.2f} {test['metrics']['nDCG@10']:10.2f} "
            f"{interval['mean']:+8.2f} [{interval['low']:+.2f}, {interval['high']:+.2f}] "
            f"{test['latency_ms']['p50_ms']:7.2f}"
        )
    print(f"best on train: {best}; +{extra_ms:.2f} ms p50; default on: {wins}")


if __name__ == "__main__":
    main()
