"""Graph backends (ONNX Runtime fp32 and int8, OpenVINO) vs SentenceTransformersDocumentEmbedder (issue 11, #3).

Three parts, each optional (``--parts``):

* ``documents``: docs/s on the first ``--docs`` SciFact documents, all-MiniLM-L6-v2 with its own recipe
  (mean pooling, 256 tokens, ``title + " " + text``). Ours: ``DualEncoderDocumentEmbedder`` around a
  ``DualEncoder(backend=...)``; the peer: sentence-transformers-haystack's
  ``SentenceTransformersDocumentEmbedder`` (torch) with ``meta_fields_to_embed=["title"]``,
  ``embedding_separator=" "`` (so both read the same text). Competitors alternate chunk by chunk
  (``--chunk`` documents, the order rotating), so a burst of load from the machine's other tenants hits
  them alike; a round is the whole set. Medians over rounds, ratios to the peer (also per chunk) and
  the lowest cosine to the peer's vectors are reported.
* ``queries``: one SciFact test query at a time through each text embedder (ours per backend, and
  sentence-transformers' ``SentenceTransformersTextEmbedder``), alternating query by query; p50 and p99.
* ``ndcg``: SciFact test nDCG@10 of each graph backend through ``simlm_haystack.evaluation.evaluate``
  (the whole corpus encoded by the backend into an in-memory Qdrant collection, queries by the same backend).

    .venv/bin/python -m benchmarks.speed_onnx_documents --docs 1000 --rounds 3 --parts documents queries ndcg

``--data DIR`` reads another BEIR collection (default ``../shared/data/scifact``).
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
from haystack import Document
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersTextEmbedder,
)

from benchmarks.collection import corpus_documents
from benchmarks.common import (
    MODEL,
    add_data_argument,
    command_line,
    machine,
    percentile,
    read_results,
    result_file,
    write_results,
)
from benchmarks.peers import peer_document_embedder, unit_vectors
from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.backends.onnx import INT8_SETTINGS
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.evaluation import evaluate, load_beir
from simlm_haystack.models import load_model, local_model_path
from simlm_haystack.recipes import get_recipe

RESULTS = result_file("speed_onnx_documents")
#: name -> (backend, precision) of our DualEncoder.
MODES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "exact"),
    "torch-fast": ("torch", "fast"),
    "onnx": ("onnx", "exact"),
    "onnx-int8": ("onnx", "int8"),
    "openvino": ("openvino", "exact"),
}


def document_embedder(encoder: DualEncoder, batch_size: int) -> DualEncoderDocumentEmbedder:
    # from_encoder takes model, recipe and precision from the encoder; the components' own precision check
    # predates int8 on ONNX (and refuses sentence-transformers' int8 *vector* quantisation), so the int8
    # encoder is put in after construction.
    embedder = DualEncoderDocumentEmbedder.from_encoder(
        DualEncoder(encoder.loaded, encoder.recipe), progress_bar=False, batch_size=batch_size
    )
    embedder.encoder = encoder
    return embedder


def text_embedder(encoder: DualEncoder) -> DualEncoderTextEmbedder:
    embedder = DualEncoderTextEmbedder.from_encoder(DualEncoder(encoder.loaded, encoder.recipe))
    embedder.encoder = encoder
    return embedder


def part_documents(args: argparse.Namespace, model: str, encoders: dict[str, DualEncoder]) -> dict[str, object]:
    documents = corpus_documents(args.data, args.docs)
    peer = peer_document_embedder(model, args.batch_size)
    competitors: dict[str, Callable[[list[Document]], list[Document]]] = {"peer": lambda d: peer.run(d)["documents"]}
    for name in args.document_modes:
        ours = document_embedder(encoders[name], args.batch_size)
        competitors[name] = lambda d, ours=ours: ours.run(d)["documents"]
    for run in competitors.values():  # first-call allocations, sessions, lazy imports
        run(documents[:8])
    names = list(competitors)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    chunk_ratios: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    load = [os.getloadavg()]
    chunks = [documents[start : start + args.chunk] for start in range(0, len(documents), args.chunk)]
    for round_number in range(args.rounds):
        spent = dict.fromkeys(names, 0.0)
        for number, chunk in enumerate(chunks):
            order = names[number % len(names) :] + names[: number % len(names)]
            took = {}
            for name in order:
                start = time.perf_counter()
                embedded = competitors[name](chunk)
                took[name] = time.perf_counter() - start
                if round_number == 0:
                    vectors[name].append(unit_vectors(embedded))
            for name in names:
                spent[name] += took[name]
                chunk_ratios[name].append(took["peer"] / took[name])
        for name in names:
            seconds[name].append(spent[name])
        load.append(os.getloadavg())
        print(f"round {round_number + 1}: " + ", ".join(f"{n} {s[-1]:.1f}s" for n, s in seconds.items()), flush=True)
    peer_rate = len(documents) / statistics.median(seconds["peer"])
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "docs": len(documents),
        "rounds": args.rounds,
        "chunk": args.chunk,
        "batch_size": args.batch_size,
        "load_average_per_round": load,
    }
    peer_vectors = np.concatenate(vectors["peer"])
    for name, times in seconds.items():
        rate = len(documents) / statistics.median(times)
        cosine = (np.concatenate(vectors[name]) * peer_vectors).sum(axis=1)
        faster = sum(t < p for t, p in zip(times, seconds["peer"], strict=True))
        results[name] = {
            "docs_per_s_median": round(rate, 2),
            "docs_per_s_per_round": [round(len(documents) / t, 2) for t in times],
            "ratio_to_peer": round(rate / peer_rate, 3),
            "rounds_faster_than_peer": faster,
            "ratio_to_peer_per_chunk_median": round(statistics.median(chunk_ratios[name]), 3),
            "min_cosine_to_peer": float(cosine.min()),
        }
    return results


def part_queries(args: argparse.Namespace, model: str, encoders: dict[str, DualEncoder]) -> dict[str, object]:
    collection = load_beir(args.data, splits=["test"])
    queries = list(collection.judged_queries("test").values())[: args.queries]
    peer = SentenceTransformersTextEmbedder(model=model, progress_bar=False)
    peer.warm_up()
    competitors: dict[str, Callable[[str], list[float]]] = {"peer": lambda q: peer.run(q)["embedding"]}
    for name in args.query_modes:
        ours = text_embedder(encoders[name])
        competitors[name] = lambda q, ours=ours: ours.run(q)["embedding"]
    for run in competitors.values():
        for query in queries[:5]:
            run(query)
    milliseconds: dict[str, list[float]] = {name: [] for name in competitors}
    load = [os.getloadavg()]
    for query in queries:
        for name, run in competitors.items():
            start = time.perf_counter()
            run(query)
            milliseconds[name].append(1000 * (time.perf_counter() - start))
    load.append(os.getloadavg())
    peer_p50 = statistics.median(milliseconds["peer"])
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "queries": len(queries),
        "load_average": load,
    }
    for name, values in milliseconds.items():
        results[name] = {
            "p50_ms": round(statistics.median(values), 2),
            "p99_ms": round(percentile(values, 99), 2),
            "mean_ms": round(statistics.fmean(values), 2),
            "p50_ratio_to_peer": round(statistics.median(values) / peer_p50, 3),
        }
    return results


def part_ndcg(args: argparse.Namespace, encoders: dict[str, DualEncoder]) -> dict[str, object]:
    collection = load_beir(args.data, splits=["test"])
    results: dict[str, object] = {"date": datetime.now(UTC).isoformat(timespec="minutes")}
    for name in args.ndcg_modes:
        start = time.perf_counter()
        documents, queries = document_embedder(encoders[name], args.batch_size), text_embedder(encoders[name])
        store = qdrant_document_store(documents, location=":memory:", index=f"scifact-{name}")
        result = evaluate(documents, queries, store, collection, "test", top_k=1000, progress_bar=False)
        results[name] = {
            **{measure: round(100 * value, 2) for measure, value in result.metrics.items()},
            "nDCG@10_exact": result.metrics["nDCG@10"],
            "timings": result.timings,
            "wall_seconds": round(time.perf_counter() - start, 1),
            "load_average_after": os.getloadavg(),
        }
        if encoders[name].precision == "int8":
            results[name]["int8_settings"] = INT8_SETTINGS  # type: ignore[index]
        print(f"{name}: nDCG@10 {100 * result.metrics['nDCG@10']:.2f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--parts", nargs="+", default=["documents", "queries", "ndcg"])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=100, help="documents per alternation")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--document-modes", nargs="+", default=["onnx", "onnx-int8", "openvino"], choices=MODES)
    parser.add_argument("--query-modes", nargs="+", default=["torch", "torch-fast", "onnx", "onnx-int8", "openvino"])
    parser.add_argument("--ndcg-modes", nargs="+", default=["onnx", "onnx-int8", "openvino"], choices=MODES)
    parser.add_argument("--out", type=Path, default=RESULTS, help="updated part by part if it exists")
    args = parser.parse_args()

    model = local_model_path(MODEL)
    loaded, recipe = load_model(model), get_recipe("minilm")
    wanted = set(args.document_modes) | set(args.query_modes) | set(args.ndcg_modes)
    encoders = {
        name: DualEncoder(loaded, recipe, backend=backend, precision=precision)  # type: ignore[arg-type]
        for name, (backend, precision) in MODES.items()
        if name in wanted
    }
    results: dict[str, object] = read_results(args.out)
    results.setdefault("commands", []).append(  # type: ignore[union-attr]
        {"command": command_line(), "parts": args.parts, "data": str(args.data)}
    )
    results["machine"] = machine()
    if "documents" in args.parts:
        results["documents"] = part_documents(args, model, encoders)
    if "queries" in args.parts:
        results["queries"] = part_queries(args, model, encoders)
    if "ndcg" in args.parts:  # mode by mode: a mode measured again replaces only its own entry
        results["ndcg"] = {**results.get("ndcg", {}), **part_ndcg(args, encoders)}  # type: ignore[dict-item]
    write_results(args.out, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
