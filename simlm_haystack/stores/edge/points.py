"""Documents as Qdrant points, laid out exactly as ``QdrantDocumentStore`` lays them out.

The point id is qdrant-haystack's ``convert_id(document.id)`` (a UUID derived from the string id) and
the payload is ``Document.to_dict(flatten=False)`` without the embedding, which becomes the point's
vector; so a collection means the same under either engine, and ``push`` can copy points as they are.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import qdrant_edge as edge
from haystack import Document
from haystack_integrations.document_stores.qdrant.converters import convert_id

from simlm_haystack.errors import CollectionMismatchError

__all__ = ["convert_id", "document_from_point", "document_to_point"]


def document_to_point(document: Document, embedding_dim: int, index: str) -> edge.Point:
    """The Edge point for ``document``; an embedding of another size is an error naming the document."""
    if document.sparse_embedding is not None:
        raise ValueError(
            f"Document {document.id!r} has a sparse embedding; EdgeDocumentStore stores dense vectors only"
        )
    embedding = document.embedding
    if embedding is not None and len(embedding) != embedding_dim:
        raise CollectionMismatchError(
            f"Document {document.id!r} has a {len(embedding)}-d embedding; collection {index!r} holds "
            f"{embedding_dim}-d vectors"
        )
    # to_dict deep-copies field by field; without the embedding that costs microseconds, not milliseconds.
    payload = dataclasses.replace(document, embedding=None).to_dict(flatten=False)
    del payload["embedding"]
    return edge.Point(convert_id(document.id), list(embedding) if embedding is not None else {}, payload)


def document_from_point(point: Any, *, score: float | None = None) -> Document:
    """The ``Document`` a point (an Edge ``Record`` or ``ScoredPoint``) holds; no vector means no embedding."""
    data = dict(point.payload or {})
    vector = point.vector
    data["embedding"] = list(vector) if isinstance(vector, list) and vector else None
    data["score"] = score
    return Document.from_dict(data)
