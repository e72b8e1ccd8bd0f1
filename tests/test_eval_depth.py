"""Issue 27: the top of a hybrid search does not change with how deep it (or an evaluation) looks.

A planted collection of 400 documents with random dense and sparse vectors, searched with the default fusion
settings (100 candidates a side) at ``top_k`` 10, 100 and 1000, on Qdrant Edge and on qdrant-haystack's store in
local mode: the first ten (and the first hundred) are the same documents with the same scores (at a tie, one of
the same score), and a deeper search only adds documents after them, in non-increasing score order. A one-shot
fusion of 1,000 candidates a side (the old behaviour) does reorder the top on the same queries, so the test
would catch its return.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from haystack import Document
from haystack.dataclasses import SparseEmbedding
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.edge.requests import dense_query, hybrid_request, sparse_query
from simlm_haystack.stores.fusion import HybridSearch, deepened
from simlm_haystack.stores.qdrant_hybrid import QdrantHybridSearchRetriever
from simlm_haystack.stores.support import store_support

DIM, DOCUMENTS, TERMS = 8, 400, 60
SEARCHES = [HybridSearch(), HybridSearch(fusion="rrf"), HybridSearch(fusion="rrf", rrf_k=2, rrf_weights=(1.0, 2.0))]


def _planted(seed: int = 7) -> tuple[list[Document], list[tuple[list[float], SparseEmbedding]]]:
    rng = np.random.default_rng(seed)
    documents = []
    for i in range(DOCUMENTS):
        terms = sorted(rng.choice(TERMS, size=int(rng.integers(3, 12)), replace=False).tolist())
        documents.append(
            Document(
                id=f"d{i:03d}",
                content=f"document {i}",
                embedding=rng.normal(size=DIM).tolist(),
                sparse_embedding=SparseEmbedding(indices=terms, values=rng.uniform(0.2, 2.0, len(terms)).tolist()),
            )
        )
    queries = [
        (
            rng.normal(size=DIM).tolist(),
            SparseEmbedding(indices=sorted(rng.choice(TERMS, 4, replace=False).tolist()), values=[1.0] * 4),
        )
        for _ in range(12)
    ]
    return documents, queries


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    documents, queries = _planted()
    edge = EdgeDocumentStore(
        path=str(tmp_path_factory.mktemp("depth")), index="docs", embedding_dim=DIM, use_sparse_embeddings=True
    )
    edge.write_documents(documents)
    local = QdrantDocumentStore(
        ":memory:", index="docs", embedding_dim=DIM, use_sparse_embeddings=True, sparse_idf=True, progress_bar=False
    )
    local.write_documents(documents)
    yield edge, local, queries
    edge.close()
    local.close()


def _top_ten_ids(
    edge: EdgeDocumentStore, search: HybridSearch, dense: list[float], sparse: SparseEmbedding, candidates: int | None
) -> list[str]:
    """The point ids of one fusion of ``candidates`` a side (the first fusion's for None), straight from the shard."""
    shard = edge._open_shard()
    request = hybrid_request(
        dense_query(edge._layout, dense),
        edge._dense_search_params(shard),
        sparse_query(sparse),
        search=search,
        condition=None,
        top_k=10,
        return_embedding=False,
        score_threshold=None,
        candidates=candidates,
    )
    return [str(point.id) for point in shard.query(request)]


def _assert_depth_keeps_the_top(results: dict[int, list[Document]]) -> None:
    shallow, middle, deep = results[10], results[100], results[1000]
    assert len(shallow) == 10 and len(middle) == 100 and len(deep) > 100
    for head, longer in ((shallow, middle), (shallow, deep), (middle, deep)):
        prefix = longer[: len(head)]
        np.testing.assert_allclose([d.score for d in prefix], [d.score for d in head], rtol=1e-6)
        # Equal fused scores (RRF's ties) come in no fixed order: the same document, or one of the same score.
        by_id = {d.id: d.score for d in prefix}
        for document in head:
            expected = by_id.get(document.id, head[-1].score)
            assert document.score == pytest.approx(expected, rel=1e-6)
    scores = [d.score for d in deep]
    assert all(a >= b for a, b in itertools.pairwise(scores))
    assert len({d.id for d in deep}) == len(deep)


@pytest.mark.parametrize("search", SEARCHES, ids=["dbsf", "rrf60", "rrf2-weighted"])
def test_the_first_ten_of_top_k_10_100_and_1000_agree_on_edge_and_on_qdrant(planted, search: HybridSearch) -> None:
    edge, local, queries = planted
    edge_retriever = store_support(edge).retriever("hybrid", search=search)
    local_retriever = QdrantHybridSearchRetriever(document_store=local, **search.to_dict())
    reordered_by_one_shot = 0
    for dense, sparse in queries:
        for retriever in (edge_retriever, local_retriever):
            results = {
                top_k: retriever.run(query_embedding=dense, query_sparse_embedding=sparse, top_k=top_k)["documents"]
                for top_k in (10, 100, 1000)
            }
            _assert_depth_keeps_the_top(results)
        # The old behaviour: one fusion of max(prefetch_limit, top_k) = 1000 candidates a side.
        one_shot, shallow = (_top_ten_ids(edge, search, dense, sparse, candidates) for candidates in (1000, None))
        reordered_by_one_shot += one_shot != shallow
    assert reordered_by_one_shot > 0  # without the two fusions, depth would change the top


def test_deepened_keeps_the_first_fusion_and_shifts_the_deeper_one_below_it() -> None:
    first = [Document(id="a", score=0.9), Document(id="b", score=0.5)]
    deeper = [Document(id="c", score=2.0), Document(id="a", score=1.5), Document(id="d", score=1.0)]
    got = deepened(first, deeper, top_k=4)
    assert [d.id for d in got] == ["a", "b", "c", "d"]
    assert got[0].score == 0.9 and got[1].score == 0.5
    assert got[2].score < 0.5 and got[2].score - got[3].score == pytest.approx(1.0)
    assert [d.id for d in deepened(first, deeper, top_k=3)] == ["a", "b", "c"]
    assert [d.id for d in deepened(first, deeper, top_k=4, score_threshold=0.0)] == ["a", "b", "c"]
    assert HybridSearch().deeper(10, 3) is None and HybridSearch().deeper(1000, 200) == 1000
    assert HybridSearch().deeper(1000, 1000) is None
