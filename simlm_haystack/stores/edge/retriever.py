"""Retrieves documents from an :class:`~simlm_haystack.stores.edge.EdgeDocumentStore` by a dense query vector."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy

from simlm_haystack.stores.edge.document_store import EdgeDocumentStore


@component
class EdgeEmbeddingRetriever:
    """``QdrantEmbeddingRetriever`` for Qdrant Edge: the same inputs and outputs, plus ``hnsw_ef``.

    ```python
    from simlm_haystack.stores.edge import EdgeDocumentStore, EdgeEmbeddingRetriever

    store = EdgeDocumentStore(path="edge_data", index="docs", embedding_dim=384)
    retriever = EdgeEmbeddingRetriever(document_store=store, top_k=5)
    documents = retriever.run(query_embedding=[0.1] * 384)["documents"]
    ```

    :param document_store: The store to search.
    :param filters: Haystack filters applied to every search.
    :param top_k: How many documents to return.
    :param scale_score: Scale scores to [0, 1] as ``QdrantEmbeddingRetriever`` does.
    :param return_embedding: Return the documents' embeddings.
    :param filter_policy: How ``filters`` given to ``run`` combine with these: ``replace`` or ``merge``.
    :param score_threshold: Leave out documents scoring below it (above it for ``l2``).
    :param hnsw_ef: HNSW candidates per search; ``None`` uses the store's (see ``EdgeDocumentStore``).
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
        hnsw_ef: int | None = None,
    ) -> None:
        if not isinstance(document_store, EdgeDocumentStore):
            raise ValueError(f"document_store must be an EdgeDocumentStore, not {type(document_store).__name__}")
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.return_embedding = return_embedding
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy
        self.score_threshold = score_threshold
        self.hnsw_ef = hnsw_ef

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
            hnsw_ef=self.hnsw_ef,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeEmbeddingRetriever:
        """Deserialise a retriever written by :meth:`to_dict` (its store comes back from its own dict)."""
        return default_from_dict(cls, data)

    def _search_arguments(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None,
        top_k: int | None,
        scale_score: bool | None,
        return_embedding: bool | None,
        score_threshold: float | None,
    ) -> dict[str, Any]:
        return {
            "query_embedding": query_embedding,
            "filters": apply_filter_policy(self.filter_policy, self.filters, filters),
            "top_k": top_k or self.top_k,
            "scale_score": self.scale_score if scale_score is None else scale_score,
            "return_embedding": self.return_embedding if return_embedding is None else return_embedding,
            "score_threshold": self.score_threshold if score_threshold is None else score_threshold,
            "hnsw_ef": self.hnsw_ef,
        }

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """The ``top_k`` documents nearest to ``query_embedding``; arguments given here override the settings."""
        arguments = self._search_arguments(
            query_embedding, filters, top_k, scale_score, return_embedding, score_threshold
        )
        return {"documents": self.document_store.embedding_retrieval(**arguments)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Like :meth:`run`, without blocking the event loop."""
        arguments = self._search_arguments(
            query_embedding, filters, top_k, scale_score, return_embedding, score_threshold
        )
        return {"documents": await self.document_store.embedding_retrieval_async(**arguments)}
