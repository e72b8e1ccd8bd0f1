"""What the layers above ask of a store (:class:`~simlm_haystack.stores.support.StoreSupport`), answered for
:class:`~simlm_haystack.stores.edge.EdgeDocumentStore`, as :class:`~simlm_haystack.stores.qdrant.QdrantStoreSupport`
answers for qdrant-haystack's store.

It sits beside the store and its retrievers and imports both, so that the store never imports a retriever (the
retrievers import the store, and call its public ``*_retrieval`` methods).
"""

from __future__ import annotations

from typing import Any

from simlm_haystack.stores.edge.document_store import EdgeDocumentStore
from simlm_haystack.stores.edge.hybrid_retriever import EdgeHybridRetriever
from simlm_haystack.stores.edge.retriever import EdgeEmbeddingRetriever
from simlm_haystack.stores.edge.sparse_retriever import EdgeSparseEmbeddingRetriever
from simlm_haystack.stores.fusion import HybridSearch
from simlm_haystack.stores.identity import CollectionIdentity
from simlm_haystack.stores.retriever_choice import RetrieverChoice


class EdgeStoreSupport(RetrieverChoice):
    """An Edge store's answers: its collection file keeps the encoder identity, the ``Edge*Retriever`` components
    search it, and a bulk write ends by building the HNSW graph."""

    def __init__(self, document_store: EdgeDocumentStore) -> None:
        self.document_store = document_store

    def collection_identity(self) -> CollectionIdentity:
        """Where the collection keeps its encoder identity: its collection file (the collection is opened)."""
        return self.document_store.collection_identity()

    def embedding_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> EdgeEmbeddingRetriever:
        """The store's dense retriever."""
        return EdgeEmbeddingRetriever(document_store=self.document_store, top_k=top_k, filters=filters)

    def sparse_retriever(
        self, *, top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> EdgeSparseEmbeddingRetriever:
        """The store's sparse (BM25) retriever.

        :raises CollectionMismatchError: The collection has no sparse vectors (``use_sparse_embeddings=False``).
        """
        self.document_store.require_sparse_vectors("A sparse retriever")
        return EdgeSparseEmbeddingRetriever(document_store=self.document_store, top_k=top_k, filters=filters)

    def hybrid_retriever(
        self, *, top_k: int = 10, filters: dict[str, Any] | None = None, search: HybridSearch | None = None
    ) -> EdgeHybridRetriever:
        """The store's hybrid retriever, fusing as ``search`` says (:class:`HybridSearch`'s defaults without).

        :raises CollectionMismatchError: The collection has no sparse vectors (``use_sparse_embeddings=False``).
        """
        self.document_store.require_sparse_vectors("A hybrid retriever")
        search = search if search is not None else HybridSearch()
        return EdgeHybridRetriever(document_store=self.document_store, top_k=top_k, filters=filters, **search.to_dict())

    def finish_writing(self) -> None:
        """After a bulk write: build the HNSW graph now rather than at the first query (see ``optimize``)."""
        self.document_store.finish_writing()
