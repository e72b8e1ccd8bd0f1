"""The indexing and query pipelines: our embedders wired to a document store's writer and retriever."""

from __future__ import annotations

from typing import Any

from haystack import Pipeline
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder


def build_indexing_pipeline(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    *,
    policy: DuplicatePolicy = DuplicatePolicy.OVERWRITE,
) -> Pipeline:
    """``embedder -> DocumentWriter(document_store)``; run it with ``{"embedder": {"documents": docs}}``."""
    pipeline = Pipeline()
    pipeline.add_component("embedder", document_embedder)
    pipeline.add_component("writer", DocumentWriter(document_store=document_store, policy=policy))
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


def build_query_pipeline(
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    *,
    top_k: int = 10,
    filters: dict[str, Any] | None = None,
) -> Pipeline:
    """``text_embedder -> QdrantEmbeddingRetriever``; run it with ``{"text_embedder": {"text": query}}``.

    ``filters`` (Haystack filters) apply to every search unless a run passes its own.
    """
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component(
        "retriever", QdrantEmbeddingRetriever(document_store=document_store, top_k=top_k, filters=filters)
    )
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    return pipeline
