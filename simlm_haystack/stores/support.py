"""What the layers above (pipelines, the retriever, indexing, evaluation) ask of a document store.

Each kind of store answers through a support adapter beside it, one method a question:
:class:`~simlm_haystack.stores.edge.support.EdgeStoreSupport` for ``EdgeDocumentStore``, and
:class:`~simlm_haystack.stores.qdrant.QdrantStoreSupport` for qdrant-haystack's ``QdrantDocumentStore``, which this
package does not own. :func:`store_support` is the one place that tells them apart; the stores themselves never
import a retriever.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores.edge.document_store import EdgeDocumentStore
from simlm_haystack.stores.edge.support import EdgeStoreSupport
from simlm_haystack.stores.fusion import HybridSearch, Retrieval
from simlm_haystack.stores.identity import CollectionIdentity, EncoderIdentity
from simlm_haystack.stores.qdrant import QdrantStoreSupport


@runtime_checkable
class StoreSupport(Protocol):
    """A store's answers: where it keeps its collection's encoder identity, which retriever searches it for a
    kind of search (a dense vector, a sparse one, or both fused as :class:`HybridSearch` says), and what it does
    after a bulk write. The adapters share their ``retriever``
    (:class:`~simlm_haystack.stores.retriever_choice.RetrieverChoice`)."""

    def collection_identity(self) -> CollectionIdentity: ...

    def retriever(
        self,
        retrieval: Retrieval = "dense",
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        search: HybridSearch | None = None,
    ) -> Any: ...

    def finish_writing(self) -> None: ...


def store_support(document_store: Any) -> StoreSupport:
    """``document_store``'s answers: the adapter for an ``EdgeDocumentStore`` or a ``QdrantDocumentStore``
    (server, cluster or local mode), or the object itself when it gives them; any other store is a ``TypeError``."""
    if isinstance(document_store, EdgeDocumentStore):
        return EdgeStoreSupport(document_store)
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
