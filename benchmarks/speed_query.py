"""Query latency: one query at a time, end to end, through ``build_query_pipeline`` over SciFact.

The SciFact corpus (5,183 documents) is written to embedded Qdrant with random unit vectors of the
model's size (searching costs the same whatever the vectors are; encoding the corpus is measured in
benchmarks.speed_documents). Then each SciFact query runs alone: the text embedder (all-MiniLM-L6-v2,
minilm recipe) and a Qdrant top-10 search. The embedder alone is timed too, to split the cost.
The modes alternate query by query in one process (``exact`` and ``fast``: one intra-op thread
for a single text).

    .venv/bin/python -m benchmarks.speed_query --queries 300   # --data DIR: another BEIR collection
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import torch

from benchmarks.collection import all_queries, corpus_documents
from benchmarks.common import (
    MODEL,
    MODEL_DIMENSION,
    add_data_argument,
    percentiles,
    result_file,
    uptime,
    usable_cores,
    write_results,
)
from simlm_haystack import DualEncoderTextEmbedder, build_query_pipeline, qdrant_document_store
from simlm_haystack.models import local_model_path

RESULTS = result_file("speed_query")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--modes", nargs="+", default=["exact", "fast"])
    args = parser.parse_args()

    model = local_model_path(MODEL)
    queries = all_queries(args.data)[: args.queries]
    with tempfile.TemporaryDirectory() as directory:
        store = qdrant_document_store("minilm", embedding_dim=MODEL_DIMENSION, path=directory, index="scifact")
        rng = np.random.default_rng(0)
        documents = corpus_documents(args.data)
        vectors = rng.standard_normal((len(documents), MODEL_DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.write_documents(
            [replace(document, embedding=vector.tolist()) for document, vector in zip(documents, vectors, strict=True)]
        )

        embedders = {
            mode: DualEncoderTextEmbedder(model=model, recipe="minilm", precision=mode, progress_bar=False)
            for mode in args.modes
        }
        pipelines = {mode: build_query_pipeline(embedder, store, top_k=10) for mode, embedder in embedders.items()}
        for pipeline in pipelines.values():  # warm-up
            for query in queries[:5]:
                pipeline.run({"text_embedder": {"text": query}})
        end_to_end: dict[str, list[float]] = {mode: [] for mode in args.modes}
        embedding_only: dict[str, list[float]] = {mode: [] for mode in args.modes}
        for query in queries:
            for mode, pipeline in pipelines.items():
                start = time.perf_counter()
                found = pipeline.run({"text_embedder": {"text": query}})["retriever"]["documents"]
                end_to_end[mode].append((time.perf_counter() - start) * 1e3)
                assert len(found) == 10
                start = time.perf_counter()
                embedders[mode].run(query)
                embedding_only[mode].append((time.perf_counter() - start) * 1e3)
        count = store.count_documents()
        store.close()

    results = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "data": str(args.data),
        "corpus_documents": count,
        "corpus_vectors": "random unit vectors, 384-d (cosine)",
        "queries": len(queries),
        "modes": {
            mode: {"end_to_end": percentiles(end_to_end[mode]), "text_embedder_only": percentiles(embedding_only[mode])}
            for mode in args.modes
        },
        "uptime": uptime(),
    }
    write_results(RESULTS, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
