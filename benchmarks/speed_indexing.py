"""Writing into embedded Qdrant, encoding excluded: our ``index_documents`` vs Haystack's DocumentWriter.

Both write the full SciFact corpus (5,183 documents) with precomputed random 384-d vectors into a
fresh embedded Qdrant collection. Ours streams the corpus file through ``index_documents`` (chunks
of 1,024, the encoder identity and resumable checks included) with all-MiniLM-L6-v2's document embedder whose
``run`` attaches the vectors instead of encoding (the model is loaded, and its identity computed, before the
clock starts and the memory baseline is read); the peer is ``DocumentWriter(document_store=store)`` with
default settings, given the whole list as a pipeline would. Each run is a fresh child process, alternating,
so peak RSS (ru_maxrss) is per writer: compare the growth above ``rss_before_indexing``.

    .venv/bin/python -m benchmarks.speed_indexing --rounds 3   # --data DIR: another BEIR collection
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import tempfile
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component

from benchmarks.collection import iter_corpus
from benchmarks.common import (
    MODEL,
    MODEL_DIMENSION,
    add_data_argument,
    child_environment,
    command_line,
    machine,
    module_command,
    result_file,
    uptime,
    usable_cores,
    write_results,
)

RESULTS = result_file("speed_indexing")


def vector_for(document_id: str) -> list[float]:
    """A fixed random unit vector per document, made when needed (nothing precomputed stays in memory)."""
    vector = np.random.default_rng(zlib.crc32(document_id.encode())).standard_normal(MODEL_DIMENSION).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def with_vectors(documents: list[Document]) -> list[Document]:
    """The documents with their precomputed vectors."""
    return [replace(document, embedding=vector_for(document.id)) for document in documents]


def precomputed_embedder() -> Any:
    """all-MiniLM-L6-v2's document embedder (its identity is what the collection keeps), attaching each document's
    vector instead of encoding it, so that encoding costs nothing; loaded and fingerprinted here."""
    from simlm_haystack import DualEncoderDocumentEmbedder
    from simlm_haystack.models import local_model_path

    @component
    class PrecomputedEmbedder(DualEncoderDocumentEmbedder):
        @component.output_types(documents=list[Document])
        def run(self, documents: list[Document]) -> dict[str, list[Document]]:
            return {"documents": with_vectors(documents)}

    embedder = PrecomputedEmbedder(model=local_model_path(MODEL), progress_bar=False)
    embedder.warm_up()
    embedder.load_encoder().fingerprint()  # cached for the identity check
    return embedder


def child(writer: str, data: Path) -> None:
    from haystack.components.writers import DocumentWriter

    from simlm_haystack import index_documents, qdrant_document_store

    embedder = precomputed_embedder() if writer == "ours" else None
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as directory:
        store = qdrant_document_store("minilm", embedding_dim=MODEL_DIMENSION, path=directory, index="scifact")
        start = time.perf_counter()
        if embedder is not None:
            written = index_documents(iter_corpus(data), embedder, store, progress_bar=False)
        else:
            documents = with_vectors(list(iter_corpus(data)))
            written = DocumentWriter(document_store=store).run(documents)["documents_written"]
        seconds = time.perf_counter() - start
        assert store.count_documents() == written
        store.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"written": written, "seconds": seconds, "peak_rss_mib": peak_kib / 1024,
                      "rss_before_indexing_mib": baseline_kib / 1024}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "haystack"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "haystack": []}
    for _ in range(args.rounds):
        for writer in runs:
            output = subprocess.run(
                [*module_command("benchmarks.speed_indexing"), "--child", writer, "--data", str(args.data)],
                env=child_environment(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            runs[writer].append(json.loads(output.strip().splitlines()[-1]))
            print(writer, runs[writer][-1], flush=True)
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "command": command_line(),
        "machine": machine(),
        "usable_cores": usable_cores(),
        "data": str(args.data),
        "rounds": args.rounds,
        "writers": {
            writer: {
                "documents": values[0]["written"],
                "docs_per_s_median": statistics.median(v["written"] / v["seconds"] for v in values),
                "peak_rss_mib_median": statistics.median(v["peak_rss_mib"] for v in values),
                "rss_before_indexing_mib_median": statistics.median(v["rss_before_indexing_mib"] for v in values),
            }
            for writer, values in runs.items()
        },
        "uptime": uptime(),
    }
    ours, peer = results["writers"]["ours"], results["writers"]["haystack"]
    results["ratio_docs_per_s_ours_to_haystack"] = ours["docs_per_s_median"] / peer["docs_per_s_median"]
    write_results(RESULTS, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
