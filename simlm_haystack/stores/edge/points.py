"""Documents as Qdrant points, laid out exactly as ``QdrantDocumentStore`` lays them out.

The point id is qdrant-haystack's ``convert_id(document.id)`` (a UUID derived from the string id) and
the payload is ``Document.to_dict(flatten=False)`` without the embedding, which becomes the point's
vector; so a collection means the same under either engine, and ``push`` can copy points as they are.

A collection with sparse vectors (``use_sparse_embeddings=True``) has qdrant-haystack's hybrid layout
(``convert_haystack_documents_to_qdrant_points(..., use_sparse_embeddings=True)``): named vectors, the
embedding under ``"text-dense"`` and ``Document.sparse_embedding`` under ``"text-sparse"``, each only where
the document has one, and neither in the payload.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import qdrant_edge as edge
from haystack import Document
from haystack_integrations.document_stores.qdrant.converters import (
    DENSE_VECTORS_NAME,
    SPARSE_VECTORS_NAME,
    convert_id,
)

from simlm_haystack.errors import CollectionMismatchError

__all__ = ["convert_id", "document_from_point", "document_to_point", "edge_sparse_vector"]


def document_to_point(
    document: Document, embedding_dim: int, index: str, use_sparse_embeddings: bool = False
) -> edge.Point:
    """The Edge point for ``document``; an embedding of another size, or a sparse embedding Edge cannot hold
    (or one for a collection without sparse vectors), is an error naming the document."""
    embedding = document.embedding
    if embedding is not None and len(embedding) != embedding_dim:
        raise CollectionMismatchError(
            f"Document {document.id!r} has a {len(embedding)}-d embedding; collection {index!r} holds "
            f"{embedding_dim}-d vectors"
        )
    if not use_sparse_embeddings and document.sparse_embedding is not None:
        raise CollectionMismatchError(
            f"Document {document.id!r} has a sparse embedding; collection {index!r} was created without sparse "
            "vectors: open it with use_sparse_embeddings=True (a new collection), or leave the sparse embeddings out"
        )
    # to_dict deep-copies field by field; without the vectors that costs microseconds, not milliseconds.
    payload = dataclasses.replace(document, embedding=None, sparse_embedding=None).to_dict(flatten=False)
    del payload["embedding"]
    if not use_sparse_embeddings:  # qdrant-haystack's dense layout keeps the key (None) in the payload
        return edge.Point(convert_id(document.id), list(embedding) if embedding is not None else {}, payload)
    del payload["sparse_embedding"]
    vector: dict[str, Any] = {}
    if embedding is not None:
        vector[DENSE_VECTORS_NAME] = list(embedding)
    if document.sparse_embedding is not None:
        try:
            vector[SPARSE_VECTORS_NAME] = edge_sparse_vector(document.sparse_embedding)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"Document {document.id!r} has a sparse embedding Qdrant cannot hold: {error}") from error
    return edge.Point(convert_id(document.id), vector, payload)


def edge_sparse_vector(sparse: Any) -> edge.SparseVector:
    """A Haystack ``SparseEmbedding`` (or anything with ``indices`` and ``values``) as an Edge sparse vector.

    :raises ValueError: The lengths differ, or an index is not an integer in [0, 2**32).
    """
    indices, values = list(sparse.indices), [float(value) for value in sparse.values]
    if len(indices) != len(values):
        raise ValueError(f"{len(indices)} indices but {len(values)} values")
    for index in indices:  # numpy's integers too; Qdrant's sparse indices are unsigned 32-bit
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < 2**32:
            raise ValueError(f"sparse index {index!r} is not an integer in [0, 2**32)")
    return edge.SparseVector(indices=[int(index) for index in indices], values=values)


def document_from_point(point: Any, *, score: float | None = None, use_sparse_embeddings: bool = False) -> Document:
    """The ``Document`` a point (an Edge ``Record`` or ``ScoredPoint``) holds, read as qdrant-haystack reads it;
    no vector means no embedding (a hybrid collection: no dense vector, no sparse one, each on its own)."""
    data = dict(point.payload or {})
    vector = point.vector
    if not use_sparse_embeddings:
        data["embedding"] = list(vector) if isinstance(vector, list) and vector else None
    elif isinstance(vector, dict):
        dense = vector.get(DENSE_VECTORS_NAME)
        data["embedding"] = list(dense) if dense is not None else None
        sparse = vector.get(SPARSE_VECTORS_NAME)
        if sparse is not None:
            data["sparse_embedding"] = {"indices": list(sparse.indices), "values": list(sparse.values)}
    data["score"] = score
    return Document.from_dict(data)
