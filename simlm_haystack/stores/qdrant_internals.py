"""Every use of qdrant-haystack's private attributes, in one place.

qdrant-haystack keeps its clients private, offers no hook to run a query of our own through them, and keeps its
retrievers' settings in private attributes. What we read of them is listed in :data:`PRIVATE_ATTRIBUTES`, tested on
the versions of :data:`TESTED_VERSIONS` (the bound ``pyproject.toml`` gives the dependency);
:func:`check_private_attributes` says, naming the attribute, when an upgrade has removed one
(``tests/test_dependency_bounds.py`` runs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from haystack import Document
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

#: The qdrant-haystack versions this module was tested with (``pyproject.toml`` holds the same bound).
TESTED_VERSIONS = ">=13,<14"

#: What we read of each qdrant-haystack class that is not its public API.
PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    QdrantDocumentStore: (
        "_client",
        "_async_client",
        "_initialize_client",
        "_initialize_async_client",
        "_process_query_point_results",
    ),
    QdrantHybridRetriever: (
        "_document_store",
        "_filters",
        "_top_k",
        "_return_embedding",
        "_filter_policy",
        "_score_threshold",
    ),
}


def check_private_attributes(attributes: dict[type, tuple[str, ...]] = PRIVATE_ATTRIBUTES) -> None:
    """Raise ``AttributeError`` naming each of ``attributes`` (:data:`PRIVATE_ATTRIBUTES`) that the installed
    qdrant-haystack no longer has (looked up on an in-memory store and a retriever on it; nothing is connected)."""
    from importlib.metadata import version

    store = QdrantDocumentStore(location=":memory:", embedding_dim=4, use_sparse_embeddings=True)
    instances = {QdrantDocumentStore: store, QdrantHybridRetriever: QdrantHybridRetriever(document_store=store)}
    missing = [
        f"{cls.__name__}.{name}"
        for cls, names in attributes.items()
        for name in names
        if not hasattr(instances[cls], name)
    ]
    if missing:
        raise AttributeError(
            f"qdrant-haystack {version('qdrant-haystack')} has no {', '.join(missing)}, which "
            f"simlm_haystack.stores.qdrant_internals reads (tested with qdrant-haystack{TESTED_VERSIONS})"
        )


def sync_client(store: QdrantDocumentStore) -> Any:
    """The store's ``QdrantClient``, created (and the collection set up) if it was not yet."""
    store._initialize_client()
    return store._client


async def async_client(store: QdrantDocumentStore) -> Any:
    """The store's ``AsyncQdrantClient``, created (and the collection set up) if it was not yet."""
    await store._initialize_async_client()
    return store._async_client


def documents_from_points(store: QdrantDocumentStore, points: Sequence[Any]) -> list[Document]:
    """The ``Document``s of query results, as the store's own searches make them."""
    return store._process_query_point_results(points)


def retriever_settings(retriever: QdrantHybridRetriever) -> dict[str, Any]:
    """A ``QdrantHybridRetriever``'s init settings that our subclass keeps as they are."""
    return {
        "document_store": retriever._document_store,
        "filters": retriever._filters,
        "top_k": retriever._top_k,
        "return_embedding": retriever._return_embedding,
        "filter_policy": retriever._filter_policy,
        "score_threshold": retriever._score_threshold,
    }
