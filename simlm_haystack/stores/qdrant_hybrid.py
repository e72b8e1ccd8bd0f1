"""Hybrid search on a ``QdrantDocumentStore`` (server, cluster or local mode) with the fusion of :class:`HybridSearch`.

qdrant-haystack's ``QdrantHybridRetriever`` sets no limit on its two prefetches, so each brings Qdrant's
default of 10 candidates to the fusion whatever ``top_k`` is, and it fuses by RRF only. This subclass
overrides its one hook, the search it runs: each prefetch brings ``HybridSearch.prefetch_limit``
points, and the fusion is RRF (``k``, weights) or DBSF; a ``top_k`` beyond ``prefetch_limit`` adds a deeper
fusion's others after them, as the Edge store does (:func:`~simlm_haystack.stores.fusion.deepened`).
Everything else (init parameters, filter policy, serialisation, the collection layout it reads) is
qdrant-haystack's; ``group_by`` is not offered.
"""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.types import FilterPolicy
from haystack.document_stores.types.filter_policy import apply_filter_policy
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from qdrant_client.http import models

from simlm_haystack.stores.fusion import FusionMethod, HybridSearch, deepened
from simlm_haystack.stores.qdrant_internals import async_client, documents_from_points, retriever_settings, sync_client


def _query(search: HybridSearch) -> models.FusionQuery | models.RrfQuery:
    if search.fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    weights = list(search.rrf_weights) if search.rrf_weights is not None else None
    return models.RrfQuery(rrf=models.Rrf(k=search.rrf_k, weights=weights))


def _arguments(
    store: QdrantDocumentStore,
    query_embedding: list[float],
    query_sparse_embedding: SparseEmbedding,
    *,
    filters: dict[str, Any] | None,
    top_k: int,
    return_embedding: bool,
    score_threshold: float | None,
    search: HybridSearch,
    candidates: int | None = None,
) -> dict[str, Any]:
    """``query_points``' arguments: two limited prefetches (sparse first, as qdrant-haystack) of ``candidates``
    (default: ``search.prefetch_limit``), then the fusion."""
    condition = convert_filters_to_qdrant(filters)
    limit = candidates or search.prefetch_limit
    sparse = models.SparseVector(indices=query_sparse_embedding.indices, values=query_sparse_embedding.values)
    return {
        "collection_name": store.index,
        "prefetch": [
            models.Prefetch(query=sparse, using=SPARSE_VECTORS_NAME, filter=condition, limit=limit),
            models.Prefetch(query=query_embedding, using=DENSE_VECTORS_NAME, filter=condition, limit=limit),
        ],
        "query": _query(search),
        "limit": top_k,
        "score_threshold": score_threshold,
        "with_payload": True,
        "with_vectors": return_embedding,
    }


@component
class QdrantHybridSearchRetriever(QdrantHybridRetriever):
    """``QdrantHybridRetriever`` whose prefetches bring ``prefetch_limit`` candidates each, fused by RRF or DBSF.

    :param document_store: A ``QdrantDocumentStore`` made with ``use_sparse_embeddings=True``.
    :param filters: Haystack filters applied to both prefetches.
    :param top_k: How many documents to return.
    :param return_embedding: Return the documents' embeddings.
    :param filter_policy: How ``filters`` given to ``run`` combine with these: ``replace`` or ``merge``.
    :param score_threshold: Leave out documents whose fused score is below it.
    :param rrf_k: RRF's constant ``k``.
    :param rrf_weights: RRF's ``[sparse, dense]`` weights; ``None`` weighs them alike.
    :param fusion: ``"rrf"`` or ``"dbsf"`` (see :mod:`simlm_haystack.stores.fusion`).
    :param prefetch_limit: Candidates each side brings to the fusion that ranks the first places (a deeper
        ``top_k`` adds a deeper fusion's others after them: :mod:`simlm_haystack.stores.fusion`).
    """

    def __init__(
        self,
        *,
        document_store: QdrantDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
        filter_policy: str | FilterPolicy = FilterPolicy.REPLACE,
        score_threshold: float | None = None,
        rrf_k: int = HybridSearch.rrf_k,
        rrf_weights: list[float] | None = None,
        fusion: FusionMethod = HybridSearch.fusion,
        prefetch_limit: int = HybridSearch.prefetch_limit,
    ) -> None:
        self.search = HybridSearch(
            fusion=fusion,
            rrf_k=rrf_k,
            rrf_weights=rrf_weights,  # type: ignore[arg-type]  # a list; HybridSearch keeps it as a tuple
            prefetch_limit=prefetch_limit,
        )
        # Named, not super(): Haystack's @component builds a new class, which the zero-argument form does not see.
        QdrantHybridRetriever.__init__(
            self,
            document_store=document_store,
            filters=filters,
            top_k=top_k,
            return_embedding=return_embedding,
            filter_policy=filter_policy,
            score_threshold=score_threshold,
            rrf_k=rrf_k,
            rrf_weights=rrf_weights,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store."""
        settings = retriever_settings(self)
        return default_to_dict(
            self,
            document_store=settings["document_store"].to_dict(),
            filters=settings["filters"],
            top_k=settings["top_k"],
            return_embedding=settings["return_embedding"],
            filter_policy=settings["filter_policy"].value,
            score_threshold=settings["score_threshold"],
            **self.search.to_dict(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QdrantHybridSearchRetriever:
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
        settings = retriever_settings(self)
        return _arguments(
            settings["document_store"],
            query_embedding,
            query_sparse_embedding,
            filters=apply_filter_policy(settings["filter_policy"], settings["filters"], filters),
            top_k=top_k or settings["top_k"],
            return_embedding=settings["return_embedding"] if return_embedding is None else return_embedding,
            score_threshold=settings["score_threshold"] if score_threshold is None else score_threshold,
            search=self.search.overridden(rrf_k=rrf_k, rrf_weights=rrf_weights),
        )

    def _deeper(self, arguments: dict[str, Any], returned: int) -> dict[str, Any] | None:
        """The arguments that change for the deeper fusion (its prefetch limits, no threshold), or None."""
        candidates = self.search.deeper(arguments["limit"], returned)  # run overrides no prefetch_limit
        if candidates is None:
            return None
        prefetch = [prefetch.model_copy(update={"limit": candidates}) for prefetch in arguments["prefetch"]]
        return {"prefetch": prefetch, "score_threshold": None}

    @staticmethod
    def _deepened(arguments: dict[str, Any], found: list[Document], deeper: list[Document]) -> list[Document]:
        return deepened(found, deeper, arguments["limit"], arguments["score_threshold"])

    @component.output_types(documents=list[Document])
    def run(  # type: ignore[override]  # no group_by
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
        """The ``top_k`` documents of the fused dense and sparse candidates; arguments here override the settings
        (``rrf_k`` and ``rrf_weights`` too, as ``QdrantHybridRetriever.run`` and ``EdgeHybridRetriever.run`` take
        them: :meth:`HybridSearch.overridden`)."""
        store = retriever_settings(self)["document_store"]
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
        found = documents_from_points(store, sync_client(store).query_points(**arguments).points)
        candidates = self._deeper(arguments, len(found))
        if candidates is None:
            return {"documents": found}
        deeper = sync_client(store).query_points(**{**arguments, **candidates}).points
        return {"documents": self._deepened(arguments, found, documents_from_points(store, deeper))}

    @component.output_types(documents=list[Document])
    async def run_async(  # type: ignore[override]
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
        """Like :meth:`run`, on the store's asynchronous client."""
        store = retriever_settings(self)["document_store"]
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
        client = await async_client(store)
        found = documents_from_points(store, (await client.query_points(**arguments)).points)
        candidates = self._deeper(arguments, len(found))
        if candidates is None:
            return {"documents": found}
        deeper = (await client.query_points(**{**arguments, **candidates})).points
        return {"documents": self._deepened(arguments, found, documents_from_points(store, deeper))}
