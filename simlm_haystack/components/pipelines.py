"""The indexing and query pipelines: our embedders wired to a document store's writer and retriever.

:func:`embedding_retriever` is the one place that picks the retriever for a store: the pipelines, the
drop-in retriever and the evaluation search through it, so each works with Qdrant (server, cluster or
``qdrant-client``'s local mode) and with Qdrant Edge alike. Writing needs no choice: Haystack's
``DocumentWriter`` writes to any document store.
"""

from __future__ import annotations

from typing import Any

from haystack import Pipeline
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.edge_retriever import EdgeEmbeddingRetriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.identity import guard_collection


def embedding_retriever(
    document_store: EmbeddingDocumentStore, *, top_k: int = 10, filters: dict[str, Any] | None = None
) -> QdrantEmbeddingRetriever | EdgeEmbeddingRetriever:
    """The embedding retriever for ``document_store``: ``EdgeEmbeddingRetriever`` for Qdrant Edge,
    ``QdrantEmbeddingRetriever`` for a ``QdrantDocumentStore``."""
    if isinstance(document_store, EdgeDocumentStore):
        return EdgeEmbeddingRetriever(document_store=document_store, top_k=top_k, filters=filters)
    if isinstance(document_store, QdrantDocumentStore):
        return QdrantEmbeddingRetriever(document_store=document_store, top_k=top_k, filters=filters)
    raise TypeError(f"No embedding retriever for {type(document_store).__name__}: use a Qdrant or Qdrant Edge store")


def build_indexing_pipeline(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    policy: DuplicatePolicy = DuplicatePolicy.OVERWRITE,
    allow_other_encoder: bool = False,
) -> Pipeline:
    """``embedder -> DocumentWriter(document_store)``; run it with ``{"embedder": {"documents": docs}}``.

    When it warms up, before it encodes anything, the embedder records its identity with an empty
    collection, or is checked against the identity recorded there (:mod:`simlm_haystack.stores.identity`):
    another model or recipe is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.
    """
    guard_collection(document_embedder, document_store, writes=True, allow_other_encoder=allow_other_encoder)
    pipeline = Pipeline()
    pipeline.add_component("embedder", document_embedder)
    pipeline.add_component("writer", DocumentWriter(document_store=document_store, policy=policy))
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


def build_query_pipeline(
    text_embedder: DualEncoderTextEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    top_k: int = 10,
    filters: dict[str, Any] | None = None,
    allow_other_encoder: bool = False,
) -> Pipeline:
    """``text_embedder -> retriever`` (see :func:`embedding_retriever`); run it with
    ``{"text_embedder": {"text": query}}``.

    ``filters`` (Haystack filters) apply to every search unless a run passes its own. When the pipeline
    warms up, before any query is encoded, the text embedder is checked against the encoder identity
    recorded with the collection (:mod:`simlm_haystack.stores.identity`): another model or recipe is an
    :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.
    """
    guard_collection(text_embedder, document_store, writes=False, allow_other_encoder=allow_other_encoder)
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component("retriever", embedding_retriever(document_store, top_k=top_k, filters=filters))
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    return pipeline
