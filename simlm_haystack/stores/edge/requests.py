"""The search requests an Edge collection answers: dense, sparse (BM25) and hybrid (the two fused), and the score
scaling of qdrant-haystack.

Built here from plain values, so that the store (:mod:`simlm_haystack.stores.edge.document_store`) only opens the
shard, sends a request and turns the points into ``Document``s. The layout is qdrant-haystack's: with sparse
vectors, the dense vector is named ``"text-dense"`` and the sparse one ``"text-sparse"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import exp

import qdrant_edge as edge
from haystack.dataclasses import SparseEmbedding
from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME

from simlm_haystack.stores.edge.points import edge_sparse_vector
from simlm_haystack.stores.fusion import HybridSearch


@dataclass(frozen=True)
class VectorLayout:
    """What a request needs to know of the collection: its name (for errors), vector size, similarity and whether
    it keeps sparse vectors (and so names its dense one)."""

    index: str
    embedding_dim: int
    similarity: str
    use_sparse_embeddings: bool


def dense_query(layout: VectorLayout, query_embedding: list[float]) -> edge.Query:
    """The nearest-neighbour query of ``query_embedding``; one of another size is a ``ValueError``."""
    if len(query_embedding) != layout.embedding_dim:
        raise ValueError(
            f"The query embedding has {len(query_embedding)} dimensions; collection {layout.index!r} holds "
            f"{layout.embedding_dim}-d vectors"
        )
    vector = [float(value) for value in query_embedding]
    if layout.use_sparse_embeddings:
        return edge.Query.Nearest(vector, using=DENSE_VECTORS_NAME)
    return edge.Query.Nearest(vector)


def sparse_query(query_sparse_embedding: SparseEmbedding) -> edge.Query:
    """The BM25 query of ``query_sparse_embedding``; one Qdrant cannot hold is a ``ValueError``."""
    try:
        vector = edge_sparse_vector(query_sparse_embedding)
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"The query's sparse embedding must be a SparseEmbedding Qdrant can hold ({error})") from error
    return edge.Query.Nearest(vector, using=SPARSE_VECTORS_NAME)


def dense_search_params(points_count: int, exact_search_threshold: int, hnsw_ef: int | None) -> edge.SearchParams:
    """Exact below ``exact_search_threshold`` points, else HNSW with ``hnsw_ef`` candidates."""
    if points_count < exact_search_threshold:
        return edge.SearchParams(exact=True)
    return edge.SearchParams(hnsw_ef=hnsw_ef)


def sparse_search_params() -> edge.SearchParams:
    """IDF over the points stored now (a filter matching every point): the engine's cached statistics still
    count deleted and replaced points, and a reload does not refresh those of an optimised segment. Points
    without a sparse vector do not count, as in the engine's own statistics (measured)."""
    return edge.SearchParams(idf=edge.IdfParams(corpus=edge.Filter(must=[])))


def fusion_query(search: HybridSearch) -> edge.Query:
    """``Fusion.Rrf(k, weights=[sparse, dense])`` or ``Fusion.Dbsf()``, as ``search`` says."""
    if search.fusion == "rrf":
        weights = list(search.rrf_weights) if search.rrf_weights is not None else None
        return edge.Fusion.Rrf(k=search.rrf_k, weights=weights)
    return edge.Fusion.Dbsf()


def single_request(
    query: edge.Query,
    params: edge.SearchParams,
    *,
    condition: edge.Filter | None,
    top_k: int,
    return_embedding: bool,
    score_threshold: float | None,
) -> edge.QueryRequest:
    """A dense or a sparse search: ``top_k`` points for ``query``, filtered by ``condition``."""
    return edge.QueryRequest(
        limit=top_k,
        query=query,
        filter=condition,
        with_payload=True,
        with_vector=return_embedding,
        score_threshold=score_threshold,
        params=params,
    )


def hybrid_request(
    dense: edge.Query,
    dense_params: edge.SearchParams,
    sparse: edge.Query,
    *,
    search: HybridSearch,
    condition: edge.Filter | None,
    top_k: int,
    return_embedding: bool,
    score_threshold: float | None,
    candidates: int | None = None,
) -> edge.QueryRequest:
    """Two prefetches, as ``QdrantDocumentStore._query_hybrid`` runs them (the sparse one first, then the dense
    one), each of ``candidates`` points (default ``search.prefetch_limit``: the first fusion; a deeper one
    passes :meth:`HybridSearch.deeper`'s) filtered by ``condition``; then the fusion of ``search``.
    ``score_threshold`` applies to the fused score."""
    candidates = candidates or search.prefetch_limit
    prefetches = [
        edge.Prefetch(limit=candidates, query=sparse, filter=condition, params=sparse_search_params()),
        edge.Prefetch(limit=candidates, query=dense, filter=condition, params=dense_params),
    ]
    return edge.QueryRequest(
        limit=top_k,
        query=fusion_query(search),
        prefetches=prefetches,
        with_payload=True,
        with_vector=return_embedding,
        score_threshold=score_threshold,
    )


def scaled_score(score: float, similarity: str) -> float:
    """As ``QdrantDocumentStore`` scales scores: cosine onto [0, 1], any other through a sigmoid."""
    return (score + 1) / 2 if similarity == "cosine" else float(1 / (1 + exp(-score / 100)))
