"""The async forms of the Edge store's methods: the engine runs in this process, so each runs its sync form
in a worker thread and the event loop stays free."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from haystack import Document
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.types import DuplicatePolicy
from qdrant_client.http import models

if TYPE_CHECKING:
    from simlm_haystack.stores.fusion import HybridSearch

Filters = dict[str, Any] | models.Filter | None


class AsyncMethods:
    """``*_async`` for every method of the document store protocol and of ``QdrantDocumentStore`` that we offer."""

    async def count_documents_async(self) -> int:
        return await asyncio.to_thread(self.count_documents)

    async def count_documents_by_filter_async(self, filters: dict[str, Any]) -> int:
        return await asyncio.to_thread(self.count_documents_by_filter, filters)

    async def filter_documents_async(self, filters: Filters = None) -> list[Document]:
        return await asyncio.to_thread(self.filter_documents, filters)

    async def get_documents_by_id_async(self, ids: list[str]) -> list[Document]:
        return await asyncio.to_thread(self.get_documents_by_id, ids)

    async def write_documents_async(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.FAIL
    ) -> int:
        return await asyncio.to_thread(self.write_documents, documents, policy)

    async def delete_documents_async(self, document_ids: list[str]) -> None:
        await asyncio.to_thread(self.delete_documents, document_ids)

    async def delete_by_filter_async(self, filters: dict[str, Any]) -> int:
        return await asyncio.to_thread(self.delete_by_filter, filters)

    async def update_by_filter_async(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        return await asyncio.to_thread(self.update_by_filter, filters, meta)

    async def delete_all_documents_async(self, recreate_index: bool = False) -> None:
        await asyncio.to_thread(self.delete_all_documents, recreate_index)

    async def embedding_retrieval_async(
        self,
        query_embedding: list[float],
        filters: Filters = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        score_threshold: float | None = None,
        hnsw_ef: int | None = None,
    ) -> list[Document]:
        return await asyncio.to_thread(
            self.embedding_retrieval,
            query_embedding,
            filters,
            top_k,
            scale_score,
            return_embedding,
            score_threshold,
            hnsw_ef,
        )

    async def sparse_retrieval_async(
        self,
        query_sparse_embedding: SparseEmbedding,
        filters: Filters = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        score_threshold: float | None = None,
    ) -> list[Document]:
        return await asyncio.to_thread(
            self.sparse_retrieval,
            query_sparse_embedding,
            filters,
            top_k,
            scale_score,
            return_embedding,
            score_threshold,
        )

    async def hybrid_retrieval_async(
        self,
        query_embedding: list[float],
        query_sparse_embedding: SparseEmbedding,
        filters: Filters = None,
        top_k: int = 10,
        return_embedding: bool = False,
        score_threshold: float | None = None,
        search: HybridSearch | None = None,
    ) -> list[Document]:
        return await asyncio.to_thread(
            self.hybrid_retrieval,
            query_embedding,
            query_sparse_embedding,
            filters,
            top_k,
            return_embedding,
            score_threshold,
            search,
        )

    async def close_async(self) -> None:
        await asyncio.to_thread(self.close)
