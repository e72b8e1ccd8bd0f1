"""Retrieval quality on BEIR SciFact (test split) through the real Haystack + Qdrant pipeline (issue 3).

Reproduces the published MTEB nDCG@10 of all-MiniLM-L6-v2 on SciFact (64.51) with its own recipe
(mean pooling, 256 tokens, ``title + " " + text``, cosine), then reads the same checkpoint with the
SimLM recipe (CLS, (title, text) pair, 32/144 tokens) and the TAS-B recipe (CLS, raw dot product,
30/200 tokens): what wrong pooling and lengths cost, and the trainer's starting point.

    .venv/bin/python -m benchmarks.scifact_eval [COLLECTION] --out benchmarks/results/scifact_eval.json

``COLLECTION`` is a BEIR folder, ``../shared/data/scifact`` (beside the repository root) unless given.

Each recipe is indexed into its own embedded-Qdrant collection, reused on a re-run (``--reindex`` forces
encoding again).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import MODEL, add_data_argument, command_line, cpu_model, result_file, usable_cores
from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.evaluation import evaluate, format_table, load_beir

#: MTEB leaderboard, all-MiniLM-L6-v2, SciFact (BEIR test split), nDCG@10.
PUBLISHED_NDCG_AT_10 = 64.51
TOLERANCE = 0.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser, positional=True)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--recipes", nargs="+", default=["minilm", "simlm", "tas-b"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--qdrant-path", default=str(Path(tempfile.gettempdir()) / "simlm-haystack-scifact-qdrant"))
    parser.add_argument("--out", default=str(result_file("scifact_eval")))
    parser.add_argument("--reindex", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    collection = load_beir(args.data, splits=[args.split])
    report: dict = {
        "what": "BEIR SciFact retrieval quality through index_documents + QdrantEmbeddingRetriever (embedded Qdrant)",
        "command": command_line(),
        "machine": {"cpu": cpu_model(), "cores_available": usable_cores()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "published_mteb_ndcg_at_10": PUBLISHED_NDCG_AT_10,
        "results": {},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for recipe in args.recipes:
        document_embedder = DualEncoderDocumentEmbedder(
            model=args.model, recipe=recipe, batch_size=args.batch_size, progress_bar=False
        )
        text_embedder = DualEncoderTextEmbedder(model=args.model, recipe=recipe, batch_size=args.batch_size)
        store = qdrant_document_store(document_embedder, path=args.qdrant_path, index=f"scifact-{recipe}")
        start = time.perf_counter()
        result = evaluate(
            document_embedder, text_embedder, store, collection, args.split, top_k=args.top_k, reindex=args.reindex
        )
        result.timings["total_seconds"] = round(time.perf_counter() - start, 1)
        store.close()
        results.append(result)
        report["results"][recipe] = result.to_dict()
        # Written after every recipe, so an interrupted run keeps what it measured.
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(format_table([result], [recipe]), flush=True)

    print(f"\n{args.model} on {args.data} ({args.split}, {len(collection.judged_queries(args.split))} queries)")
    print(format_table(results, args.recipes))
    print(f"results: {out}")
    if "minilm" in report["results"]:
        ndcg = 100 * report["results"]["minilm"]["metrics"]["nDCG@10"]
        verdict = "reproduced" if abs(ndcg - PUBLISHED_NDCG_AT_10) <= TOLERANCE else "NOT reproduced"
        print(f"minilm nDCG@10 {ndcg:.2f} vs published {PUBLISHED_NDCG_AT_10} (±{TOLERANCE}): {verdict}")
        return 0 if verdict == "reproduced" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
