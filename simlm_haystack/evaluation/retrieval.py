"""Retrieval for evaluation and mining: queries encoded in batches, each searched through the store's retriever.

Two steps, as in Tevatron's encode and search drivers: :func:`encode_queries` runs the text
embedder's own encoder over all queries in batches (the vectors ``text_embedder.run`` gives one at a
time), and :func:`search` sends each vector through the store's Haystack retriever component, built
in one place (:func:`store_retriever`). :func:`retrieve` is the two together. The store must have
been filled by the matching document embedder (see :func:`~simlm_haystack.evaluation.ensure_indexed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from tqdm.auto import tqdm

from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.evaluation.inference import eval_mode

#: Query id -> {document id: score}, best first; the shape ir-measures reads.
Run = dict[str, dict[str, float]]


def store_retriever(document_store: QdrantDocumentStore, *, top_k: int) -> QdrantEmbeddingRetriever:
    """The Haystack component that searches ``document_store`` by embedding.

    Evaluation and mining build their retriever here and nowhere else: another store type plugs in
    by returning its own embedding retriever (``run(query_embedding=..., top_k=...)`` -> ``documents``).
    """
    return QdrantEmbeddingRetriever(document_store=document_store, top_k=top_k)


def encode_queries(
    text_embedder: DualEncoderTextEmbedder, queries: Sequence[str], *, progress_bar: bool = True
) -> list[list[float]]:
    """The text embedder's query vectors, encoded ``text_embedder.batch_size`` at a time, model in eval mode."""
    with eval_mode(text_embedder):
        encoder = text_embedder.encoder
        assert encoder is not None
        vectors = encoder.encode("query", list(queries), batch_size=text_embedder.batch_size, progress_bar=progress_bar)
    return vectors.tolist()


def search(
    document_store: QdrantDocumentStore,
    query_embeddings: Mapping[str, Sequence[float]],
    *,
    top_k: int = 100,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query vector: ``{query id: {document id: score}}``, queries in order."""
    retriever = store_retriever(document_store, top_k=top_k)
    run: Run = {}
    for query_id, embedding in tqdm(
        query_embeddings.items(), total=len(query_embeddings), disable=not progress_bar, desc="Searching", unit="query"
    ):
        documents = retriever.run(query_embedding=list(embedding), top_k=top_k)["documents"]
        run[query_id] = {document.id: float(document.score) for document in documents}
    return run


def retrieve(
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    queries: Mapping[str, str],
    *,
    top_k: int = 100,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query (id -> text): :func:`encode_queries`, then :func:`search`."""
    embeddings = encode_queries(text_embedder, list(queries.values()), progress_bar=progress_bar)
    return search(document_store, dict(zip(queries, embeddings, strict=True)), top_k=top_k, progress_bar=progress_bar)
