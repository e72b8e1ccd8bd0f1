"""Retrieval for evaluation and mining: queries encoded in batches, each searched through the store's retriever.

Two steps, as in Tevatron's encode and search drivers: :func:`encode_queries` runs the text
embedder's own encoder over all queries in batches (the vectors ``text_embedder.run`` gives one at a
time; :func:`encode_sparse_queries` the BM25 ones), and :func:`search` sends each query's vectors through
the store's own Haystack retriever component for a dense, sparse or hybrid search.
:func:`retrieve` is the two together. The store must have been filled by the matching document
embedder (see :func:`~simlm_haystack.evaluation.ensure_indexed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from haystack.dataclasses import SparseEmbedding
from tqdm.auto import tqdm

from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.evaluation.inference import eval_mode
from simlm_haystack.sparse import BM25Encoder, BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import HybridSearch, Retrieval, check_retrieval
from simlm_haystack.stores.support import store_support

#: Query id -> {document id: score}, best first; the shape ir-measures reads.
Run = dict[str, dict[str, float]]


def encode_queries(
    text_embedder: DualEncoderTextEmbedder, queries: Sequence[str], *, progress_bar: bool = True
) -> list[list[float]]:
    """The text embedder's query vectors, encoded ``text_embedder.batch_size`` at a time, model in eval mode."""
    with eval_mode(text_embedder):
        encoder = text_embedder.encoder
        assert encoder is not None
        vectors = encoder.encode("query", list(queries), batch_size=text_embedder.batch_size, progress_bar=progress_bar)
    return vectors.tolist()


def encode_sparse_queries(bm25: BM25Settings, queries: Sequence[str]) -> list[SparseEmbedding]:
    """The queries' BM25 sparse vectors (what ``BM25SparseTextEmbedder`` gives one at a time)."""
    return [
        SparseEmbedding(indices=list(vector.indices), values=list(vector.values))
        for vector in BM25Encoder(bm25).encode_queries(list(queries))
    ]


def search(
    document_store: EmbeddingDocumentStore,
    query_embeddings: Mapping[str, Sequence[float]] | None,
    *,
    query_sparse_embeddings: Mapping[str, SparseEmbedding] | None = None,
    retrieval: Retrieval = "dense",
    hybrid: HybridSearch | None = None,
    top_k: int = 100,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query: ``{query id: {document id: score}}``, queries in order.

    ``retrieval`` says which vectors are searched (``query_embeddings`` for dense and hybrid,
    ``query_sparse_embeddings`` for sparse and hybrid, both keyed by query id), through the store's own
    retriever for that search; ``hybrid`` says how hybrid search fuses.
    """
    check_retrieval(retrieval)
    retriever = store_support(document_store).retriever(retrieval, top_k=top_k, search=hybrid)
    dense = query_embeddings if retrieval != "sparse" else None
    sparse = query_sparse_embeddings if retrieval != "dense" else None
    if (retrieval != "sparse" and dense is None) or (retrieval != "dense" and sparse is None):
        raise ValueError(f"retrieval={retrieval!r} needs the queries' {'dense' if dense is None else 'sparse'} vectors")
    query_ids = list(dense if dense is not None else sparse)  # type: ignore[arg-type]
    run: Run = {}
    for query_id in tqdm(query_ids, disable=not progress_bar, desc="Searching", unit="query"):
        vectors: dict[str, Any] = {}
        if dense is not None:
            vectors["query_embedding"] = list(dense[query_id])
        if sparse is not None:
            vectors["query_sparse_embedding"] = sparse[query_id]
        documents = retriever.run(**vectors, top_k=top_k)["documents"]
        run[query_id] = {document.id: float(document.score) for document in documents}
    return run


def retrieve(
    text_embedder: DualEncoderTextEmbedder,
    document_store: EmbeddingDocumentStore,
    queries: Mapping[str, str],
    *,
    top_k: int = 100,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query (id -> text): :func:`encode_queries`, then :func:`search`."""
    embeddings = encode_queries(text_embedder, list(queries.values()), progress_bar=progress_bar)
    return search(document_store, dict(zip(queries, embeddings, strict=True)), top_k=top_k, progress_bar=progress_bar)
