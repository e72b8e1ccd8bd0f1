"""Dense, BM25 and hybrid retrieval quality on a BEIR collection through the real pipeline (issue 18).

    .venv/bin/python -m benchmarks.hybrid_scifact [--data ../shared/data/scifact] \
        [--model sentence-transformers/all-MiniLM-L6-v2 --recipe minilm] --out benchmarks/results/hybrid_scifact.json

The corpus is indexed once, with the model's dense vectors and BM25 sparse vectors (fastembed's
``Qdrant/bm25`` scheme, Qdrant's IDF modifier), into one hybrid collection of the chosen engine (Qdrant
Edge by default: exact search below 10,000 points). Then every test query is searched through
``simlm_haystack.evaluation.evaluate`` (the store's own retrievers) as dense, as BM25, and as hybrid with
each fusion below; nDCG@10, MRR@10 and R@100 by ir-measures. ``--fusions`` picks among:

- ``rrf60``: RRF, k = 60, equal weights (what a user of RRF usually writes, the issue's try);
- ``rrf2``: RRF, k = 2 (Qdrant's own default k, which qdrant-haystack's hybrid retriever uses);
- ``rrf60-dense2``: RRF, k = 60, the dense list weighted 2 : 1 (``rrf_weights=[1, 2]``, [sparse, dense]);
- ``rrf60-sparse2``: the sparse list weighted 2 : 1;
- ``dbsf``: distribution-based score fusion;

each with ``--prefetch-limit`` candidates per side (default 100). The table reports each against the
better of its two inputs (the strongest baseline a user has for free).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from benchmarks.common import MODEL, add_data_argument, command_line, machine, read_results, result_file, write_results
from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder
from simlm_haystack.evaluation import evaluate, load_beir
from simlm_haystack.stores import edge_document_store, qdrant_document_store
from simlm_haystack.stores.fusion import HybridSearch

RESULTS = result_file("hybrid_scifact")
MEASURES = ("nDCG@10", "RR@10", "R@100")

#: name -> the fusion of a hybrid search (prefetch limit set from the command line).
FUSIONS: dict[str, dict[str, Any]] = {
    "rrf60": {"fusion": "rrf", "rrf_k": 60},
    "rrf2": {"fusion": "rrf", "rrf_k": 2},
    "rrf60-dense2": {"fusion": "rrf", "rrf_k": 60, "rrf_weights": (1.0, 2.0)},
    "rrf60-sparse2": {"fusion": "rrf", "rrf_k": 60, "rrf_weights": (2.0, 1.0)},
    "dbsf": {"fusion": "dbsf"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--recipe", default=None, help="the model's own when omitted")
    parser.add_argument("--label", default=None, help="the name of this model's rows (default: the model)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--engine", choices=["edge", "local"], default="edge")
    parser.add_argument("--fusions", nargs="+", choices=list(FUSIONS), default=list(FUSIONS))
    parser.add_argument("--prefetch-limit", type=int, default=HybridSearch.prefetch_limit)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--store", type=Path, default=None, help="folder to keep the collection in (reused)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    model = args.model  # a hub id (found offline where a package carries it) or a checkpoint folder
    collection = load_beir(args.data, splits=[args.split])
    document_embedder = DualEncoderDocumentEmbedder(
        model=model, recipe=args.recipe, batch_size=args.batch_size, progress_bar=False
    )
    text_embedder = DualEncoderTextEmbedder(model=model, recipe=args.recipe, batch_size=args.batch_size)
    folder = args.store or Path(tempfile.mkdtemp(prefix="hybrid-scifact-"))
    make_store = edge_document_store if args.engine == "edge" else qdrant_document_store
    store = make_store(document_embedder, path=str(folder), index="hybrid", use_sparse_embeddings=True)
    load_start = os.getloadavg()
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    try:
        searches: list[tuple[str, str, HybridSearch | None]] = [("dense", "dense", None), ("BM25", "sparse", None)]
        searches += [
            (f"hybrid {name}", "hybrid", HybridSearch(prefetch_limit=args.prefetch_limit, **FUSIONS[name]))
            for name in args.fusions
        ]
        for label, retrieval, hybrid in searches:
            result = evaluate(
                document_embedder,
                text_embedder,
                store,
                collection,
                args.split,
                top_k=100,
                measures=MEASURES,
                retrieval=retrieval,
                hybrid=hybrid,
                progress_bar=False,
            )
            rows[label] = {
                "metrics": {name: round(100 * value, 2) for name, value in result.metrics.items()},
                "search": result.search,
                "timings": result.timings,
            }
            print(label, rows[label]["metrics"], flush=True)
    finally:
        store.close()
    best_input = max(rows["dense"]["metrics"]["nDCG@10"], rows["BM25"]["metrics"]["nDCG@10"])
    for row in rows.values():
        row["nDCG@10_over_better_input"] = round(row["metrics"]["nDCG@10"] - best_input, 2)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command_line(),
        "machine": machine(),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
        "model": args.label or args.model,
        "recipe": document_embedder.recipe.name,
        "collection": str(args.data),
        "split": args.split,
        "engine": args.engine,
        "queries": len(collection.judged_queries(args.split)),
        "documents": len(collection.documents),
        "rows": rows,
    }
    results = read_results(args.out)
    results[report["model"]] = report
    write_results(args.out, results, indent=1)
    print(f"{'search':24s} {'nDCG@10':>8s} {'MRR@10':>8s} {'R@100':>8s} {'vs better input':>16s}")
    for label, row in rows.items():
        metrics = row["metrics"]
        print(
            f"{label:24s} {metrics['nDCG@10']:8.2f} {metrics['RR@10']:8.2f} {metrics['R@100']:8.2f} "
            f"{row['nDCG@10_over_better_input']:+16.2f}"
        )


if __name__ == "__main__":
    main()
