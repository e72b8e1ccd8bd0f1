"""Retrieves documents from an :class:`~simlm_haystack.stores.edge.EdgeDocumentStore` by a sparse (BM25) query
vector."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy

from simlm_haystack.stores.edge.document_store import EdgeDocumentStore


@component
class EdgeSparseEmbeddingRetriever:
    """``QdrantSparseEmbeddingRetriever`` for Qdrant Edge: the same inputs and outputs (without ``group_by`` and
    ``group_size``), on a store created with ``use_sparse_embeddings=True``.

    Scores are BM25 when the documents' and the query's sparse embeddings come from
    :class:`~simlm_haystack.sparse.BM25Encoder` (the collection's IDF modifier supplies the IDF).

    ```python
    from haystack.dataclasses import SparseEmbedding
    from simlm_haystack.stores.edge import EdgeDocumentStore, EdgeSparseEmbeddingRetriever

    store = EdgeDocumentStore(path="edge_data", index="docs", embedding_dim=384, use_sparse_embeddings=True)
    retriever = EdgeSparseEmbeddingRetriever(document_store=store, top_k=5)
    query = SparseEmbedding(indices=[17, 4021], values=[1.0, 1.0])
    documents = retriever.run(query_sparse_embedding=query)["documents"]
    ```

    :param document_store: The store to search; it must have sparse vectors.
    :param filters: Haystack filters applied to every search.
    :param top_k: How many documents to return.
    :param scale_score: Scale scores as ``QdrantSparseEmbeddingRetriever`` does: by the store's dense
        similarity's rule (``(s + 1) / 2`` for cosine, a sigmoid otherwise), which for BM25 scores only
        keeps the order.
    :param return_embedding: Return the documents' embeddings (dense and sparse).
    :param filter_policy: How ``filters`` given to ``run`` combine with these: ``replace`` or ``merge``.
    :param score_threshold: Leave out documents scoring below it.
    :raises CollectionMismatchError: The store has no sparse vectors.
    """

    def __init__(
        self,
        *,
        document_store: EdgeDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        filter_policy: str | FilterPolicy = FilterPolicy.REPLACE,
        score_threshold: float | None = None,
    ) -> None:
        if not isinstance(document_store, EdgeDocumentStore):
            raise ValueError(f"document_store must be an EdgeDocumentStore, not {type(document_store).__name__}")
        document_store.require_sparse_vectors("EdgeSparseEmbeddingRetriever")
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.return_embedding = return_embedding
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy
        self.score_threshold = score_threshold

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store."""
        return default_to_dict(
            self,
            document_store=self.document_store,
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
            return_embedding=self.return_embedding,
            filter_policy=self.filter_policy.value,
            score_threshold=self.score_threshold,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeSparseEmbeddingRetriever:
        """Deserialise a retriever written by :meth:`to_dict` (its store comes back from its own dict)."""
        return default_from_dict(cls, data)

    def _search_arguments(
        self,
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None,
        top_k: int | None,
        scale_score: bool | None,
        return_embedding: bool | None,
        score_threshold: float | None,
    ) -> dict[str, Any]:
        return {
            "query_sparse_embedding": query_sparse_embedding,
            "filters": apply_filter_policy(self.filter_policy, self.filters, filters),
            "top_k": top_k or self.top_k,
            "scale_score": self.scale_score if scale_score is None else scale_score,
            "return_embedding": self.return_embedding if return_embedding is None else return_embedding,
            "score_threshold": self.score_threshold if score_threshold is None else score_threshold,
        }

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """The ``top_k`` documents scoring highest for ``query_sparse_embedding``; arguments given here override
        the settings."""
        arguments = self._search_arguments(
            query_sparse_embedding, filters, top_k, scale_score, return_embedding, score_threshold
        )
        return {"documents": self.document_store.sparse_retrieval(**arguments)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Like :meth:`run`, without blocking the event loop."""
        arguments = self._search_arguments(
            query_sparse_embedding, filters, top_k, scale_score, return_embedding, score_threshold
        )
        return {"documents": await self.document_store.sparse_retrieval_async(**arguments)}
