"""Retrieves documents from an :class:`~simlm_haystack.stores.edge.EdgeDocumentStore` by a dense and a sparse
query vector, their candidates fused (:class:`~simlm_haystack.stores.fusion.HybridSearch`)."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy

from simlm_haystack.stores.edge.document_store import EdgeDocumentStore
from simlm_haystack.stores.fusion import HybridSearch


@component
class EdgeHybridRetriever:
    """``QdrantHybridRetriever`` for Qdrant Edge: the same inputs and outputs (without ``group_by`` and
    ``group_size``), plus the fusion (``"rrf"`` or ``"dbsf"``) and how many candidates each side brings to it.

    The sparse and the dense candidates are prefetched as ``QdrantHybridRetriever`` prefetches them (sparse
    first, so ``rrf_weights`` are ``[sparse, dense]``; ``filters`` on both), then fused. Two defaults differ
    from qdrant-haystack's, which are the server's: ``rrf_k`` is 60 here (Qdrant's is 2), and each side
    brings ``prefetch_limit`` candidates (a deeper ``top_k`` adds a deeper fusion's others after them:
    :mod:`simlm_haystack.stores.fusion`; qdrant-haystack leaves the prefetch limit to the server,
    10, whatever ``top_k``). ``rrf_k=2, prefetch_limit=10`` and ``top_k <= 10`` reproduce it.

    ```python
    from simlm_haystack.stores.edge import EdgeDocumentStore, EdgeHybridRetriever

    store = EdgeDocumentStore(path="edge_data", index="docs", embedding_dim=384, use_sparse_embeddings=True)
    retriever = EdgeHybridRetriever(document_store=store, top_k=5, rrf_weights=[1.0, 2.0])
    documents = retriever.run(query_embedding=dense, query_sparse_embedding=sparse)["documents"]
    ```

    :param document_store: The store to search; it must have sparse vectors.
    :param filters: Haystack filters applied to both sides of every search.
    :param top_k: How many documents to return.
    :param return_embedding: Return the documents' embeddings (dense and sparse).
    :param filter_policy: How ``filters`` given to ``run`` combine with these: ``replace`` or ``merge``.
    :param score_threshold: Leave out documents whose fused score is below it (fused scores are not
        comparable with dense or sparse ones).
    :param rrf_k: RRF's constant ``k``: each side adds ``weight / (k + rank)`` (rank from 1).
    :param rrf_weights: ``[sparse, dense]`` weights of RRF's two lists; ``None`` weighs them alike.
    :param fusion: ``"rrf"`` (reciprocal rank fusion) or ``"dbsf"`` (distribution-based score fusion, which
        ignores ``rrf_k`` and ``rrf_weights``).
    :param prefetch_limit: Candidates each side brings to the fusion that ranks the first places.
    :raises CollectionMismatchError: The store has no sparse vectors.
    :raises SettingsError: A fusion setting is out of range (see :class:`HybridSearch`).
    """

    def __init__(
        self,
        *,
        document_store: EdgeDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
        filter_policy: str | FilterPolicy = FilterPolicy.REPLACE,
        score_threshold: float | None = None,
        rrf_k: int = HybridSearch.rrf_k,
        rrf_weights: list[float] | None = None,
        fusion: str = HybridSearch.fusion,
        prefetch_limit: int = HybridSearch.prefetch_limit,
    ) -> None:
        if not isinstance(document_store, EdgeDocumentStore):
            raise ValueError(f"document_store must be an EdgeDocumentStore, not {type(document_store).__name__}")
        document_store.require_sparse_vectors("EdgeHybridRetriever")
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.return_embedding = return_embedding
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy
        self.score_threshold = score_threshold
        self.search = HybridSearch(
            fusion=fusion,  # type: ignore[arg-type]  # checked by HybridSearch
            rrf_k=rrf_k,
            rrf_weights=rrf_weights,  # type: ignore[arg-type]  # a list; HybridSearch keeps it as a tuple
            prefetch_limit=prefetch_limit,
        )
        self.rrf_k = self.search.rrf_k
        self.rrf_weights = None if self.search.rrf_weights is None else list(self.search.rrf_weights)
        self.fusion = self.search.fusion
        self.prefetch_limit = self.search.prefetch_limit

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store."""
        return default_to_dict(
            self,
            document_store=self.document_store,
            filters=self.filters,
            top_k=self.top_k,
            return_embedding=self.return_embedding,
            filter_policy=self.filter_policy.value,
            score_threshold=self.score_threshold,
            rrf_k=self.rrf_k,
            rrf_weights=self.rrf_weights,
            fusion=self.fusion,
            prefetch_limit=self.prefetch_limit,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeHybridRetriever:
        """Deserialise a retriever written by :meth:`to_dict` (its store comes back from its own dict)."""
        return default_from_dict(cls, data)

    def _search_arguments(
        self,
        query_embedding: list[float],
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None,
        top_k: int | None,
        return_embedding: bool | None,
        score_threshold: float | None,
        rrf_k: int | None,
        rrf_weights: list[float] | None,
    ) -> dict[str, Any]:
        return {
            "query_embedding": query_embedding,
            "query_sparse_embedding": query_sparse_embedding,
            "filters": apply_filter_policy(self.filter_policy, self.filters, filters),
            "top_k": top_k or self.top_k,
            "return_embedding": self.return_embedding if return_embedding is None else return_embedding,
            "score_threshold": self.score_threshold if score_threshold is None else score_threshold,
            "search": self.search.overridden(rrf_k=rrf_k, rrf_weights=rrf_weights),
        }

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
        rrf_k: int | None = None,
        rrf_weights: list[float] | None = None,
    ) -> dict[str, list[Document]]:
        """The ``top_k`` documents of the fused dense and sparse candidates; arguments given here override the
        settings (``rrf_k`` and ``rrf_weights`` too, as ``QdrantHybridRetriever.run`` takes them)."""
        arguments = self._search_arguments(
            query_embedding,
            query_sparse_embedding,
            filters,
            top_k,
            return_embedding,
            score_threshold,
            rrf_k,
            rrf_weights,
        )
        return {"documents": self.document_store.hybrid_retrieval(**arguments)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query_embedding: list[float],
        query_sparse_embedding: SparseEmbedding,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        return_embedding: bool | None = None,
        score_threshold: float | None = None,
        rrf_k: int | None = None,
        rrf_weights: list[float] | None = None,
    ) -> dict[str, list[Document]]:
        """Like :meth:`run`, without blocking the event loop."""
        arguments = self._search_arguments(
            query_embedding,
            query_sparse_embedding,
            filters,
            top_k,
            return_embedding,
            score_threshold,
            rrf_k,
            rrf_weights,
        )
        return {"documents": await self.document_store.hybrid_retrieval_async(**arguments)}
