"""What the layers above (pipelines, the retriever, indexing, evaluation) ask of a document store.

Each kind of store answers for itself, through one method each: ``EdgeDocumentStore`` implements
:class:`StoreSupport` itself; qdrant-haystack's ``QdrantDocumentStore``, which this package does not own,
answers through :class:`~simlm_haystack.stores.qdrant.QdrantStoreSupport`. :func:`store_support` is the
one place that tells them apart.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores.fusion import HybridSearch
from simlm_haystack.stores.identity import CollectionIdentity, EncoderIdentity
from simlm_haystack.stores.qdrant import QdrantStoreSupport


@runtime_checkable
class StoreSupport(Protocol):
    """A store's answers: where it keeps its collection's encoder identity, which retriever searches it by a
    dense vector, a sparse one or both fused (:class:`HybridSearch`), and what it does after a bulk write."""

    def collection_identity(self) -> CollectionIdentity: ...

    def embedding_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any: ...

    def sparse_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any: ...

    def hybrid_retriever(
        self, *, top_k: int = 10, filters: dict[str, Any] | None = None, search: HybridSearch | None = None
    ) -> Any: ...

    def finish_writing(self) -> None: ...


def store_support(document_store: Any) -> StoreSupport:
    """``document_store``'s answers: the store itself when it gives them (Qdrant Edge), an adapter for
    ``QdrantDocumentStore`` (server, cluster or local mode); any other store is a ``TypeError``."""
    if isinstance(document_store, StoreSupport):
        return document_store
    if isinstance(document_store, QdrantDocumentStore):
        return QdrantStoreSupport(document_store)
    raise TypeError(
        f"{type(document_store).__name__} is not a store simlm-haystack can index into and search: "
        "use a QdrantDocumentStore (qdrant_document_store(...)) or an EdgeDocumentStore (edge_document_store(...))"
    )


def read_identity(document_store: Any) -> EncoderIdentity | None:
    """The encoder identity ``document_store``'s collection keeps, or None (empty, or written by an older version)."""
    return store_support(document_store).collection_identity().identity()
