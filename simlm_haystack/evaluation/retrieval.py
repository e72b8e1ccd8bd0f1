"""Retrieval for evaluation and mining: queries encoded in batches, each searched through the store's retriever.

Two steps, as in Tevatron's encode and search drivers: :func:`encode_queries` runs the text
embedder's own encoder over all queries in batches (the vectors ``text_embedder.run`` gives one at a
time), and :func:`search` sends each vector through the store's Haystack retriever component, the
one :func:`~simlm_haystack.components.pipelines.embedding_retriever` picks for Qdrant or Qdrant Edge.
:func:`retrieve` is the two together. The store must have been filled by the matching document
embedder (see :func:`~simlm_haystack.evaluation.ensure_indexed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm.auto import tqdm

from simlm_haystack.components.pipelines import embedding_retriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.evaluation.inference import eval_mode
from simlm_haystack.stores import EmbeddingDocumentStore

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


def search(
    document_store: EmbeddingDocumentStore,
    query_embeddings: Mapping[str, Sequence[float]],
    *,
    top_k: int = 100,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query vector: ``{query id: {document id: score}}``, queries in order."""
    retriever = embedding_retriever(document_store, top_k=top_k)
    run: Run = {}
    for query_id, embedding in tqdm(
        query_embeddings.items(), total=len(query_embeddings), disable=not progress_bar, desc="Searching", unit="query"
    ):
        documents = retriever.run(query_embedding=list(embedding), top_k=top_k)["documents"]
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
