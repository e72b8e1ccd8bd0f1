"""Retrieval quality through the real pipeline: index the corpus, retrieve every judged query, score the run.

:func:`evaluate` only orchestrates and records: the index is :mod:`~simlm_haystack.evaluation.index`'s
(fingerprinted, reused when nothing changed), the run :mod:`~simlm_haystack.evaluation.retrieval`'s,
the measures :mod:`~simlm_haystack.evaluation.scoring`'s (ir-measures), the versions and store
description :mod:`~simlm_haystack.evaluation.provenance`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.evaluation.data import BeirCollection, load_beir
from simlm_haystack.evaluation.index import ensure_indexed
from simlm_haystack.evaluation.provenance import describe_store, versions
from simlm_haystack.evaluation.retrieval import Run, encode_queries, encode_sparse_queries, search
from simlm_haystack.evaluation.scoring import DEFAULT_MEASURES, calc_metrics
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import HybridSearch, Retrieval, check_retrieval
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.support import store_support


@dataclass
class EvaluationResult:
    """Measures, counts, timings and provenance of one evaluation.

    ``run`` holds the retrieved ranking of every judged query (kept out of :meth:`to_dict`).
    """

    metrics: dict[str, float]
    counts: dict[str, int]
    timings: dict[str, float]
    model: str
    recipe: dict[str, Any]
    collection: str
    split: str
    top_k: int
    fingerprint: str
    reused_index: bool
    store: dict[str, Any]
    versions: dict[str, str]
    search: dict[str, Any] = field(default_factory=lambda: {"retrieval": "dense"})
    run: Run = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the run, as JSON-ready values."""
        return {
            "metrics": self.metrics,
            "model": self.model,
            "recipe": self.recipe,
            "collection": self.collection,
            "split": self.split,
            "top_k": self.top_k,
            "search": self.search,
            "counts": self.counts,
            "timings": self.timings,
            "reused_index": self.reused_index,
            "fingerprint": self.fingerprint,
            "store": self.store,
            "versions": self.versions,
        }


def evaluate(
    document_embedder: DualEncoderDocumentEmbedder,
    text_embedder: DualEncoderTextEmbedder,
    document_store: EmbeddingDocumentStore,
    collection: BeirCollection | str | Path,
    split: str = "test",
    *,
    top_k: int = 1000,
    measures: Sequence[str] = DEFAULT_MEASURES,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    hybrid: HybridSearch | None = None,
    reindex: bool = False,
    chunk_size: int = 1024,
    progress_bar: bool = True,
    allow_other_encoder: bool = False,
) -> EvaluationResult:
    """Index the collection's corpus (or reuse it), search every judged query of ``split``, and score the run.

    :param document_embedder: Encodes the corpus; its model and recipe are recorded with the result.
    :param text_embedder: Encodes the queries (usually the same model and recipe), in batches.
    :param document_store: The Qdrant collection to fill; it belongs to the evaluation (see :func:`ensure_indexed`).
    :param collection: A :class:`BeirCollection`, or a BEIR folder to load.
    :param split: The qrels split whose queries are evaluated.
    :param top_k: Documents retrieved per query; recall is measured up to this depth.
    :param measures: ir-measures names; the defaults are nDCG@10, RR@10 (MRR@10), R@100 and R@1000.
    :param retrieval: ``"dense"``, ``"sparse"`` (BM25) or ``"hybrid"``; sparse and hybrid need a store that keeps
        sparse vectors (``use_sparse_embeddings=True``). Such a store is indexed with them whatever is searched,
        so that every kind of search is evaluated on one collection.
    :param bm25: The BM25 settings (defaults: fastembed's ``Qdrant/bm25``).
    :param hybrid: How hybrid search fuses (:class:`~simlm_haystack.stores.fusion.HybridSearch`; its defaults).
    :param reindex: Encode and write the corpus even if the collection already holds it.
    :param chunk_size: Documents encoded and written at a time.
    :param progress_bar: Show progress bars for indexing, query encoding and searching.
    :param allow_other_encoder: Search with a ``text_embedder`` whose model weights or recipe differ from
        the document embedder's (a warning); otherwise that is an :class:`~simlm_haystack.EncoderMismatchError`
        before any query is encoded (see :mod:`simlm_haystack.stores.identity`).
    """
    if not isinstance(collection, BeirCollection):
        collection = load_beir(collection, splits=[split])
    check_retrieval(retrieval)
    # The index follows the store: a store that keeps sparse vectors gets them whatever this search reads, so
    # that dense, BM25 and hybrid evaluations share one indexed collection.
    keeps_sparse = bool(getattr(document_store, "use_sparse_embeddings", False))
    if retrieval != "dense" and not keeps_sparse:
        raise CollectionMismatchError(
            f"retrieval={retrieval!r} searches BM25 sparse vectors, which collection {document_store.index!r} does "
            "not keep: make the store with use_sparse_embeddings=True"
        )
    bm25 = BM25Settings.of(bm25) if keeps_sparse else None
    hybrid = (hybrid or HybridSearch()) if retrieval == "hybrid" else None
    qrels = collection.split(split)
    queries = collection.judged_queries(split)
    index = ensure_indexed(
        document_embedder,
        document_store,
        collection.documents,
        retrieval="hybrid" if keeps_sparse else "dense",
        bm25=bm25,
        reindex=reindex,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
    )
    uses_dense = retrieval != "sparse"
    if uses_dense:
        text_embedder.warm_up()
    CollectionCheck(
        store_support(document_store).collection_identity(), writes=False, allow_other_encoder=allow_other_encoder
    ).run(
        EncoderIdentity.of(
            text_embedder.model if uses_dense else None,
            text_embedder.load_encoder() if uses_dense else None,
            sparse=bm25.to_dict() if retrieval != "dense" and bm25 is not None else None,
        )
    )
    start = time.perf_counter()
    dense = sparse = None
    if uses_dense:
        dense = dict(
            zip(queries, encode_queries(text_embedder, list(queries.values()), progress_bar=progress_bar), strict=True)
        )
    if retrieval != "dense" and bm25 is not None:
        sparse = dict(zip(queries, encode_sparse_queries(bm25, list(queries.values())), strict=True))
    encode_queries_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run = search(
        document_store,
        dense,
        query_sparse_embeddings=sparse,
        retrieval=retrieval,
        hybrid=hybrid,
        top_k=top_k,
        progress_bar=progress_bar,
    )
    search_seconds = time.perf_counter() - start
    metrics = calc_metrics(qrels, run, measures)
    assert document_embedder.encoder is not None
    return EvaluationResult(
        metrics=metrics,
        counts={
            "documents": len(collection.documents),
            "documents_written": index.written,
            "queries": len(queries),
            "judgements": sum(len(judged) for judged in qrels.values()),
            "judgements_of_missing_documents": collection.missing_documents.get(split, 0),
            "queries_without_results": sum(not ranking for ranking in run.values()),
            "retrieved": sum(len(ranking) for ranking in run.values()),
        },
        timings={
            "encode_documents_seconds": round(index.encode_seconds, 3),
            "write_documents_seconds": round(index.write_seconds, 3),
            "encode_queries_seconds": round(encode_queries_seconds, 3),
            "search_seconds": round(search_seconds, 3),
            "documents_per_second": round(index.documents / index.encode_seconds, 2) if index.encode_seconds else 0.0,
        },
        model=document_embedder.model,
        recipe=document_embedder.encoder.recipe.to_dict(),
        collection=str(collection.path),
        split=split,
        top_k=top_k,
        fingerprint=index.fingerprint,
        reused_index=index.reused,
        store=describe_store(document_store),
        versions=versions(),
        search={
            "retrieval": retrieval,
            **({"bm25": bm25.to_dict()} if retrieval != "dense" and bm25 is not None else {}),
            **(hybrid.to_dict() if hybrid is not None else {}),
        },
        run=run,
    )


def format_table(results: Sequence[EvaluationResult], labels: Sequence[str] | None = None) -> str:
    """A plain-text table: one row per result, measures in percent, then the timings in seconds."""
    labels = list(labels) if labels is not None else [result.recipe["name"] for result in results]
    measures = list(results[0].metrics) if results else []
    header = ["", *measures, "encode docs s", "search s", "reused"]
    rows = [
        [
            label,
            *(f"{100 * result.metrics[name]:.2f}" for name in measures),
            f"{result.timings['encode_documents_seconds']:.1f}",
            f"{result.timings['search_seconds']:.1f}",
            "yes" if result.reused_index else "no",
        ]
        for label, result in zip(labels, results, strict=True)
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(lines)
