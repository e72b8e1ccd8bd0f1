"""The one question "which retriever searches this store for this kind of search", answered the same way for every
kind of store: each support adapter builds its three retrievers, :meth:`RetrieverChoice.retriever` picks one.

The drop-in retriever, the pipelines and the evaluation ask :meth:`RetrieverChoice.retriever`; none of them chooses
between dense, sparse and hybrid on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from simlm_haystack.stores.fusion import HybridSearch, Retrieval, check_retrieval


class RetrieverChoice(ABC):
    """The retriever for a kind of search, from the three a support adapter builds (it defines
    ``embedding_retriever``, ``sparse_retriever`` and ``hybrid_retriever``)."""

    def retriever(
        self,
        retrieval: Retrieval = "dense",
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        search: HybridSearch | None = None,
    ) -> Any:
        """The store's own retriever for ``retrieval``: ``"dense"``, ``"sparse"`` (BM25) or ``"hybrid"`` (both
        fused as ``search`` says; :class:`HybridSearch`'s defaults without).

        :raises SettingsError: ``retrieval`` is none of the three.
        :raises CollectionMismatchError: Sparse or hybrid search of a collection without sparse vectors.
        """
        check_retrieval(retrieval)
        if retrieval == "dense":
            return self.embedding_retriever(top_k=top_k, filters=filters)
        if retrieval == "sparse":
            return self.sparse_retriever(top_k=top_k, filters=filters)
        return self.hybrid_retriever(top_k=top_k, filters=filters, search=search)

    @abstractmethod
    def embedding_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any:
        """The store's dense retriever."""

    @abstractmethod
    def sparse_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any:
        """The store's BM25 (sparse) retriever."""

    @abstractmethod
    def hybrid_retriever(
        self, *, top_k: int = 10, filters: dict[str, Any] | None = None, search: HybridSearch | None = None
    ) -> Any:
        """The store's hybrid retriever, fusing as ``search`` says."""
