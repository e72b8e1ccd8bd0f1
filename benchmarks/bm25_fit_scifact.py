"""BM25's k, b and avg_len (fixed 256 or measured on the corpus) on SciFact, chosen on train (issue 27).

    .venv/bin/python -m benchmarks.bm25_fit_scifact [--data ../shared/data/scifact] \
        [--out benchmarks/results/bm25_fit_scifact.json]

Every combination of ``k`` and ``b`` (fastembed's 1.2 / 0.75, Anserini's BEIR 0.9 / 0.4, and the two crossed)
with ``avg_len`` fixed at fastembed's 256 or measured on the corpus (mean Bm25 tokens a document, title and
text, as indexing measures it) gets its own hybrid Edge collection (the document side's length normalisation is
in the stored vectors). Each is searched with SciFact's train and test queries as BM25 alone and as hybrid
(DBSF, RRF k=60, RRF k=2), as users search (``benchmarks.scifact_splits``); dense is searched once. The choice
is made on train: hybrid DBSF first (the default search of a hybrid collection), BM25 alone second; test is
reported beside it, never used.
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
from benchmarks.scifact_splits import SPLITS, SciFact, load_scifact, scored, timed_search, with_store
from simlm_haystack.sparse import BM25Encoder, BM25Settings
from simlm_haystack.stores.fusion import HybridSearch

RESULTS = result_file("bm25_fit_scifact")
K_B = ((1.2, 0.75), (0.9, 0.4), (1.2, 0.4), (0.9, 0.75))
FUSIONS = {
    "hybrid dbsf": HybridSearch(),
    "hybrid rrf60": HybridSearch(fusion="rrf"),
    "hybrid rrf2": HybridSearch(fusion="rrf", rrf_k=2),
}


def corpus_avg_len(scifact: SciFact) -> float:
    """The corpus's mean document length in Bm25's own tokens (the settings' stopwords and stemming)."""
    lengths = BM25Encoder().document_lengths(
        [d.content or "" for d in scifact.documents], [d.meta.get("title") for d in scifact.documents]
    )
    return sum(lengths) / len(lengths)


def evaluate_setting(scifact: SciFact, settings: BM25Settings) -> dict[str, Any]:
    def work(store: Any) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        for split in SPLITS:
            searches: dict[str, tuple[str, HybridSearch | None]] = {"BM25": ("sparse", None)}
            searches.update({name: ("hybrid", search) for name, search in FUSIONS.items()})
            for label, (retrieval, search) in searches.items():
                run, ms = timed_search(store, scifact.splits[split], settings, retrieval, search)
                rows.setdefault(label, {})[split] = scored(scifact.splits[split], run, ms)
        return rows

    return with_store(scifact, settings, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_start = os.getloadavg()
    started = time.perf_counter()
    scifact = load_scifact(args.data)
    fitted = round(corpus_avg_len(scifact), 2)
    print(f"corpus avg_len (Bm25 tokens): {fitted}", flush=True)
    settings_rows: dict[str, Any] = {}
    dense: dict[str, Any] = {}

    def dense_work(store: Any) -> None:
        for split in SPLITS:
            run, ms = timed_search(store, scifact.splits[split], BM25Settings(), "dense")
            dense[split] = scored(scifact.splits[split], run, ms)

    with_store(scifact, BM25Settings(), dense_work)
    print("dense", {split: dense[split]["metrics"] for split in SPLITS}, flush=True)
    for k, b in K_B:
        for avg_len in (256.0, fitted):
            label = f"k={k} b={b} avg_len={'fitted' if avg_len == fitted else 256}"
            settings_rows[label] = {
                "settings": {"k": k, "b": b, "avg_len": avg_len},
                "rows": evaluate_setting(scifact, BM25Settings(k=k, b=b, avg_len=avg_len)),
            }
            summary = {
                name: {split: row[split]["metrics"]["nDCG@10"] for split in SPLITS}
                for name, row in settings_rows[label]["rows"].items()
            }
            print(label, summary, flush=True)
    choice = {
        purpose: max(settings_rows, key=lambda s: settings_rows[s]["rows"][row]["train"]["metrics"]["nDCG@10"])
        for purpose, row in (("hybrid", "hybrid dbsf"), ("bm25", "BM25"))
    }
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command_line(),
        "machine": machine(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
        "documents": len(scifact.documents),
        "queries": {split: len(scifact.splits[split].ids) for split in SPLITS},
        "corpus_avg_len": fitted,
        "dense": dense,
        "settings": settings_rows,
        "chosen_on_train": choice,
    }
    write_results(args.out, report, indent=1)
    print(f"{'setting':34s} {'search':14s} {'train nDCG':>10s} {'test nDCG':>10s} {'test MRR':>9s} {'test R@100':>10s}")
    train, test = dense["train"]["metrics"], dense["test"]["metrics"]
    print(f"{'-':34s} {'dense':14s} {train['nDCG@10']:10.2f} {test['nDCG@10']:10.2f} {test['RR@10']:9.2f}")
    for label, row in settings_rows.items():
        for name, result in row["rows"].items():
            test = result["test"]["metrics"]
            print(
                f"{label:34s} {name:14s} {result['train']['metrics']['nDCG@10']:10.2f} {test['nDCG@10']:10.2f} "
                f"{test['RR@10']:9.2f} {test['R@100']:10.2f}"
            )
    print("chosen on train:", choice)


if __name__ == "__main__":
    main()
