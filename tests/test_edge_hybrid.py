"""Qdrant Edge with BM25 sparse vectors beside the dense ones: qdrant-haystack's hybrid layout, sparse and hybrid
search against a direct numpy computation, push to a server searched by qdrant-haystack's own QdrantHybridRetriever,
collections of the other kind refused, a killed hybrid indexing resumed.

The numpy reference is Qdrant's definitions (see the fusion module): BM25 is the sum over query terms of
``idf(t) * q_t * d_t`` with ``idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`` over the documents that have a
sparse vector, ``d_t`` the BM25 weights of :class:`~simlm_haystack.sparse.BM25Encoder`; dense is exact cosine;
RRF adds ``1 / ((rank + 1) / weight + k - 1)`` per list (rank from 0); DBSF maps each list's scores by
``(s - (mean - 3 sd)) / (6 sd)`` (sample sd) and adds them up. Dense vectors are seeded random ones: the fusion
does not care where they come from, and they cost nothing to make.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_edge_store  # Haystack's contract tests as the dense store runs them (not collected again here)
from haystack import Document, Pipeline
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret
from haystack_integrations.components.retrievers.qdrant import (
    QdrantEmbeddingRetriever,
    QdrantHybridRetriever,
    QdrantSparseEmbeddingRetriever,
)
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import convert_haystack_documents_to_qdrant_points
from qdrant_client import QdrantClient
from qdrant_client.http import models

from simlm_haystack.corpus import read_documents, read_jsonl
from simlm_haystack.errors import CollectionMismatchError, SettingsError
from simlm_haystack.sparse import BM25Encoder
from simlm_haystack.stores import EdgeDocumentStore, edge_document_store
from simlm_haystack.stores.edge import (
    EdgeEmbeddingRetriever,
    EdgeHybridRetriever,
    EdgeSparseEmbeddingRetriever,
    EdgeStoreSupport,
)
from simlm_haystack.stores.edge.collection import read_collection_file, write_collection_file
from simlm_haystack.stores.fusion import HybridSearch
from simlm_haystack.stores.push import push_collection
from simlm_haystack.stores.support import store_support

DIM = 16
EVEN = {"field": "meta.parity", "operator": "==", "value": 0}


def sparse_embedding(vector: Any) -> SparseEmbedding:
    return SparseEmbedding(indices=list(vector.indices), values=list(vector.values))


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- Haystack's document-store contract, on a collection with sparse vectors --------------------------------------


class TestEdgeHybridDocumentStoreContract(test_edge_store.TestEdgeDocumentStoreContract):
    """The same contract tests as the dense store passes, on named vectors: the documents carry dense embeddings
    only, so a hybrid collection must store and read them exactly as a dense one does."""

    @pytest.fixture
    def document_store(self):
        store = EdgeDocumentStore(embedding_dim=768, use_sparse_embeddings=True)
        yield store
        store.close()


# --- layout: qdrant-haystack's hybrid points ----------------------------------------------------------------------


def _hybrid_documents() -> list[Document]:
    return [
        Document(
            id="both",
            content="aspirin",
            meta={"title": "T", "nested": {"k": [1, 2]}},
            embedding=[0.6, 0.8, 0.0],
            sparse_embedding=SparseEmbedding(indices=[3, 17, 4_000_000_000], values=[0.5, 1.25, 2.0]),
        ),
        Document(id="dense only", content="no sparse", meta={"n": 3}, embedding=[0.0, 0.6, 0.8]),
        Document(id="sparse only", content="no dense", sparse_embedding=SparseEmbedding(indices=[1], values=[1.0])),
        Document(id="neither", content="no vectors"),
    ]


def test_points_are_laid_out_and_read_back_as_qdrant_document_store_does_with_sparse_embeddings() -> None:
    documents = _hybrid_documents()
    store = EdgeDocumentStore(embedding_dim=3, use_sparse_embeddings=True)
    assert store.write_documents(documents) == 4
    records = [record for batch in store.scroll_points(10) for record in batch]
    expected = {
        point.id: point for point in convert_haystack_documents_to_qdrant_points(documents, use_sparse_embeddings=True)
    }
    assert {record.id.hex for record in records} == set(expected)
    for record in records:
        point = expected[record.id.hex]
        assert record.payload == point.payload  # neither vector in the payload
        assert set(record.vector) == set(point.vector)  # each named vector only where the document has one
        if "text-dense" in point.vector:
            assert record.vector["text-dense"] == pytest.approx(point.vector["text-dense"])  # unit already
        if "text-sparse" in point.vector:
            assert list(record.vector["text-sparse"].indices) == point.vector["text-sparse"].indices
            assert list(record.vector["text-sparse"].values) == point.vector["text-sparse"].values

    # Read back as QdrantDocumentStore reads its own hybrid collection.
    qdrant = QdrantDocumentStore(":memory:", embedding_dim=3, use_sparse_embeddings=True, progress_bar=False)
    qdrant.write_documents(documents)

    def readable(document: Document) -> tuple:
        sparse = document.sparse_embedding
        return (
            document.id,
            document.content,
            document.meta,
            None if document.embedding is None else tuple(np.round(document.embedding, 6)),
            None if sparse is None else (tuple(sparse.indices), tuple(sparse.values)),
        )

    assert sorted(map(readable, store.filter_documents())) == sorted(map(readable, qdrant.filter_documents()))
    assert readable(store.get_documents_by_id(["both"])[0]) == readable(qdrant.get_documents_by_id(["both"])[0])
    store.close()


def test_sparse_embeddings_are_checked_before_anything_is_written() -> None:
    hybrid = EdgeDocumentStore(embedding_dim=3, use_sparse_embeddings=True, index="docs")
    bad = Document(id="bad", sparse_embedding=SparseEmbedding(indices=[-1], values=[1.0]))
    with pytest.raises(ValueError, match=r"Document 'bad' has a sparse embedding Qdrant cannot hold"):
        hybrid.write_documents([Document(id="ok", embedding=[1.0, 0, 0]), bad])
    assert hybrid.count_documents() == 0
    hybrid.close()
    dense = EdgeDocumentStore(embedding_dim=3, index="docs")
    with pytest.raises(CollectionMismatchError, match=r"Document 's' has a sparse embedding.*use_sparse_embeddings"):
        dense.write_documents([Document(id="s", sparse_embedding=SparseEmbedding(indices=[1], values=[1.0]))])
    assert dense.count_documents() == 0
    with pytest.raises(CollectionMismatchError, match="was not indexed with them"):
        dense.sparse_retrieval(SparseEmbedding(indices=[1], values=[1.0]))
    for ask in (store_support(dense).sparse_retriever, store_support(dense).hybrid_retriever):
        with pytest.raises(CollectionMismatchError, match=r"needs BM25 sparse vectors.*use_sparse_embeddings=True"):
            ask()
    with pytest.raises(CollectionMismatchError):
        EdgeHybridRetriever(document_store=dense)
    dense.close()


# --- the other kind of collection is refused ----------------------------------------------------------------------


def test_a_collection_opened_with_the_other_sparse_setting_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    hybrid = EdgeDocumentStore(path=str(tmp_path), index="hybrid", embedding_dim=3, use_sparse_embeddings=True)
    hybrid.write_documents(_hybrid_documents())
    hybrid.close()
    dense = EdgeDocumentStore(path=str(tmp_path), index="dense", embedding_dim=3)
    dense.write_documents([Document(id="d", embedding=[1.0, 0.0, 0.0])])
    dense.close()
    files = {name: (tmp_path / name / "collection.json").read_text() for name in ("hybrid", "dense")}
    assert read_collection_file(tmp_path / "hybrid")["use_sparse_embeddings"] is True

    with pytest.raises(CollectionMismatchError, match=r"created with BM25 sparse vectors.*use_sparse_embeddings=True"):
        EdgeDocumentStore(path=str(tmp_path), index="hybrid", embedding_dim=3).count_documents()
    with pytest.raises(CollectionMismatchError, match=r"created without BM25 sparse vectors.*=False"):
        edge_document_store("minilm", embedding_dim=3, path=str(tmp_path), index="dense", use_sparse_embeddings=True)
    assert {name: (tmp_path / name / "collection.json").read_text() for name in files} == files

    # A collection file from before collections could have sparse vectors has no key: dense-only.
    described = read_collection_file(tmp_path / "dense")
    del described["use_sparse_embeddings"]
    write_collection_file(tmp_path / "dense", described)
    with pytest.raises(CollectionMismatchError, match="created without BM25 sparse vectors"):
        EdgeDocumentStore(path=str(tmp_path), index="dense", embedding_dim=3, use_sparse_embeddings=True).open()
    reopened = EdgeDocumentStore(path=str(tmp_path), index="dense", embedding_dim=3)
    assert [d.id for d in reopened.filter_documents()] == ["d"]
    reopened.close()
    reopened = EdgeDocumentStore(path=str(tmp_path), index="hybrid", embedding_dim=3, use_sparse_embeddings=True)
    assert reopened.count_documents() == 4  # the refusals changed nothing
    reopened.close()


# --- SciFact sample: Edge against numpy ---------------------------------------------------------------------------


@dataclass
class Corpus:
    ids: list[str]
    sparse: list[dict[int, float]]  # BM25 document weights (no IDF)
    dense: np.ndarray  # unit rows
    parity: np.ndarray
    queries: list[tuple[SparseEmbedding, np.ndarray]]

    def bm25(self, query: SparseEmbedding, alive: np.ndarray | None = None) -> np.ndarray:
        """BM25 of every document (0 where it shares no term), with Qdrant's IDF over the ``alive`` documents."""
        alive = np.ones(len(self.ids), bool) if alive is None else alive
        counted = [weights for weights, live in zip(self.sparse, alive, strict=True) if live and weights]
        scores = np.zeros(len(self.ids))
        for term, value in zip(query.indices, query.values, strict=True):
            n = sum(term in weights for weights in counted)
            if n == 0:
                continue
            idf = math.log(1 + (len(counted) - n + 0.5) / (n + 0.5))
            scores += np.array([idf * value * weights.get(term, 0.0) for weights in self.sparse])
        return scores

    def eligible(self, filters: dict | None) -> np.ndarray:
        return self.parity == 0 if filters == EVEN else np.ones(len(self.ids), bool)


def checked_ranking(
    found: list[Document], scores: np.ndarray, keep: np.ndarray, limit: int, corpus: Corpus
) -> list[int]:
    """``found`` (an engine's answer), checked to be the best ``limit`` of the numpy ``scores`` among ``keep``,
    as positions in the corpus. Equal scores (e.g. two documents with the same query terms, as often, and the
    same length) come in the engine's order, which Qdrant does not define and RRF's ranks depend on."""
    # float32 in the engine: cosine scores near 0 are compared absolutely.
    assert_top_k(found, {corpus.ids[i]: scores[i] for i in np.flatnonzero(keep)}, limit, rtol=1e-5, atol=1e-6)
    return [corpus.ids.index(document.id) for document in found]


def fused(lists: list[list[int]], scores: list[np.ndarray], search: HybridSearch) -> dict[int, float]:
    total: dict[int, float] = {}
    if search.fusion == "rrf":
        weights = search.rrf_weights or (1.0, 1.0)
        for weight, ranking in zip(weights, lists, strict=True):
            for position, i in enumerate(ranking):
                total[i] = total.get(i, 0.0) + 1 / ((position + 1) / weight + search.rrf_k - 1)
    else:
        for ranking, all_scores in zip(lists, scores, strict=True):
            values = all_scores[ranking]
            mean, sd = values.mean(), values.std(ddof=1)
            for i, value in zip(ranking, values, strict=True):
                total[i] = total.get(i, 0.0) + (value - (mean - 3 * sd)) / (6 * sd)
    return total


def assert_top_k(got: list[Document], expected: dict[str, float], top_k: int, rtol: float, atol: float = 0.0) -> None:
    """``got`` is a top-``top_k`` of ``expected`` (every candidate's score): the scores position by position, and
    each document's own score; so where scores tie at the cut either of the tied documents is right."""
    best = sorted(expected.values(), reverse=True)[:top_k]
    assert len(got) == len(best) and len({d.id for d in got}) == len(got)
    np.testing.assert_allclose([d.score for d in got], best, rtol=rtol, atol=atol)
    for document in got:
        assert document.id in expected, f"{document.id} is not a candidate"
        assert document.score == pytest.approx(expected[document.id], rel=rtol, abs=atol)


@pytest.fixture(scope="module")
def scifact(sample_dir: Path) -> Corpus:
    return load_scifact(sample_dir)


def load_scifact(sample_dir: Path) -> Corpus:
    """The sample's BM25 weights, seeded random dense vectors, 20 queries, and each document's id parity."""
    documents = list(read_documents(sample_dir / "corpus.jsonl"))
    encoder = BM25Encoder()
    vectors = encoder.encode_documents([d.content for d in documents], [d.meta.get("title") for d in documents])
    rng = np.random.default_rng(18)
    dense = unit(rng.standard_normal((len(documents), DIM)))
    texts = [record["text"] for _, record in read_jsonl(sample_dir / "queries.jsonl")][:20]
    queries = [(sparse_embedding(encoder.encode_query(text)), unit(rng.standard_normal(DIM))) for text in texts]
    return Corpus(
        ids=[d.id for d in documents],
        sparse=[dict(zip(v.indices, v.values, strict=True)) for v in vectors],
        dense=dense,
        parity=np.array([int(d.id) % 2 for d in documents]),
        queries=queries,
    )


def scifact_documents(sample_dir: Path, corpus: Corpus) -> list[Document]:
    documents = list(read_documents(sample_dir / "corpus.jsonl"))
    return [
        Document(
            id=d.id,
            content=d.content,
            meta={**d.meta, "parity": int(parity)},
            embedding=(3.0 * vector).tolist(),  # not unit: the store normalises, as cosine does
            sparse_embedding=SparseEmbedding(indices=list(weights), values=list(weights.values())),
        )
        for d, vector, weights, parity in zip(documents, corpus.dense, corpus.sparse, corpus.parity, strict=True)
    ]


@pytest.fixture(scope="module")
def scifact_store(scifact: Corpus, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    store = EdgeDocumentStore(
        path=str(tmp_path_factory.mktemp("edge-hybrid")), index="scifact", embedding_dim=DIM, use_sparse_embeddings=True
    )
    store.write_documents(scifact_documents(sample_dir, scifact))
    yield store
    store.close()


@pytest.mark.parametrize("filters", [None, EVEN], ids=["all", "even"])
def test_sparse_top_k_is_numpy_bm25(scifact: Corpus, scifact_store: EdgeDocumentStore, filters: dict | None) -> None:
    retriever = EdgeSparseEmbeddingRetriever(document_store=scifact_store, top_k=10, filters=filters)
    eligible = scifact.eligible(filters)
    for query, _ in scifact.queries:
        scores = scifact.bm25(query)  # the IDF is the collection's whatever the filter (as Qdrant's)
        expected = {scifact.ids[i]: scores[i] for i in np.flatnonzero(eligible & (scores > 0))}
        assert_top_k(retriever.run(query_sparse_embedding=query)["documents"], expected, 10, rtol=1e-5)


SEARCHES = [
    HybridSearch(fusion="rrf"),  # k = 60, alike, 100 candidates each
    HybridSearch(fusion="rrf", rrf_k=2, rrf_weights=(2.0, 0.5), prefetch_limit=20),  # [sparse, dense]
    HybridSearch(fusion="rrf", rrf_k=5, rrf_weights=(0.25, 1.0), prefetch_limit=10),
    HybridSearch(fusion="dbsf", prefetch_limit=30),
]


@pytest.mark.parametrize("filters", [None, EVEN], ids=["all", "even"])
@pytest.mark.parametrize("search", SEARCHES, ids=["rrf", "rrf-k2-sparse-heavy", "rrf-k5-dense-heavy", "dbsf"])
def test_hybrid_top_k_is_numpy_bm25_and_cosine_fused(
    scifact: Corpus, scifact_store: EdgeDocumentStore, search: HybridSearch, filters: dict | None
) -> None:
    retriever = store_support(scifact_store).hybrid_retriever(top_k=10, filters=filters, search=search)
    assert retriever.search == search
    eligible = scifact.eligible(filters)
    candidates = search.prefetch_limit
    for query_sparse, query_dense in scifact.queries:
        sparse_scores, dense_scores = scifact.bm25(query_sparse), scifact.dense @ query_dense
        # Each side's candidates, filtered (the sparse ones share a term with the query); ties in the engine's order.
        sparse_found = scifact_store.sparse_retrieval(query_sparse, filters=filters, top_k=candidates)
        dense_found = scifact_store.embedding_retrieval(query_dense.tolist(), filters=filters, top_k=candidates)
        lists = [
            checked_ranking(sparse_found, sparse_scores, eligible & (sparse_scores > 0), candidates, scifact),
            checked_ranking(dense_found, dense_scores, eligible, candidates, scifact),
        ]
        expected = {scifact.ids[i]: s for i, s in fused(lists, [sparse_scores, dense_scores], search).items()}
        got = retriever.run(query_embedding=query_dense.tolist(), query_sparse_embedding=query_sparse)["documents"]
        assert_top_k(got, expected, 10, rtol=1e-6 if search.fusion == "rrf" else 1e-4)
        assert all(d.meta["parity"] == 0 for d in got) or filters is None


def test_sparse_scores_follow_deletes_and_overwrites_even_in_optimised_segments(
    scifact: Corpus, sample_dir: Path, tmp_path: Path
) -> None:
    # exact_search_threshold=50: optimize() builds indexed (immutable) segments, whose engine statistics keep
    # counting deleted and replaced points, even after a reload; the store asks for the IDF afresh. The dense
    # side is searched through the HNSW graph here (more points than the threshold).
    store = EdgeDocumentStore(
        path=str(tmp_path), index="docs", embedding_dim=DIM, use_sparse_embeddings=True, exact_search_threshold=50
    )
    documents = scifact_documents(sample_dir, scifact)
    store.write_documents(documents)
    store.finish_writing()
    assert store._open_shard().info().indexed_vectors_count == 2 * len(documents)  # the HNSW graph and the sparse index
    alive = np.ones(len(documents), bool)
    deleted = [i for i in range(len(documents)) if i % 3 == 0]
    store.delete_documents([documents[i].id for i in deleted])
    alive[deleted] = False
    # Overwrite one document with another's sparse vector: its terms' document frequencies change.
    store.write_documents(
        [dataclasses.replace(documents[1], sparse_embedding=documents[4].sparse_embedding)],
        policy=DuplicatePolicy.OVERWRITE,
    )
    now = dataclasses.replace(scifact, sparse=[*scifact.sparse[:1], scifact.sparse[4], *scifact.sparse[2:]])

    def check() -> None:
        search = HybridSearch(prefetch_limit=30)
        for query, query_dense in now.queries[:10]:
            scores = now.bm25(query, alive)
            expected = {now.ids[i]: scores[i] for i in np.flatnonzero(alive & (scores > 0))}
            assert_top_k(store.sparse_retrieval(query, top_k=10), expected, 10, rtol=1e-5)
            dense_scores = now.dense @ query_dense
            lists = [
                checked_ranking(store.sparse_retrieval(query, top_k=30), scores, alive & (scores > 0), 30, now),
                checked_ranking(
                    store.embedding_retrieval(query_dense.tolist(), top_k=30), dense_scores, alive, 30, now
                ),
            ]
            fused_scores = {now.ids[i]: value for i, value in fused(lists, [scores, dense_scores], search).items()}
            got = store.hybrid_retrieval(query_dense.tolist(), query, top_k=10, search=search)
            assert_top_k(got, fused_scores, 10, rtol=1e-6)

    check()
    store.close()
    check()  # reopened
    store.close()


def test_retrievers_serialise_run_async_and_take_overrides(scifact: Corpus, scifact_store: EdgeDocumentStore) -> None:
    query_sparse, query_dense = scifact.queries[0]
    hybrid = EdgeHybridRetriever(
        document_store=scifact_store,
        top_k=5,
        fusion="rrf",
        rrf_k=2,
        rrf_weights=[1.0, 3.0],
        prefetch_limit=20,
        filters=EVEN,
    )
    data = hybrid.to_dict()
    assert data["init_parameters"]["document_store"]["init_parameters"]["use_sparse_embeddings"] is True
    arguments = {"query_embedding": query_dense.tolist(), "query_sparse_embedding": query_sparse}
    found = hybrid.run(**arguments)["documents"]
    # Equal fused scores (frequent with RRF) come in no fixed order, even between two calls: compared as results.
    assert_same_results(asyncio.run(hybrid.run_async(**arguments))["documents"], found, 5)
    # run's rrf_k / rrf_weights / top_k / filters override the settings, as QdrantHybridRetriever's do.
    direct = scifact_store.hybrid_retrieval(
        **arguments,
        filters=EVEN,
        top_k=3,
        search=HybridSearch(fusion="rrf", rrf_k=7, rrf_weights=(1.0, 1.0), prefetch_limit=20),
    )
    overridden = hybrid.run(**arguments, rrf_k=7, rrf_weights=[1.0, 1.0], top_k=3)["documents"]
    assert_same_results(overridden, direct, 3)
    with pytest.raises(SettingsError):
        EdgeHybridRetriever(document_store=scifact_store, fusion="max")

    sparse = EdgeSparseEmbeddingRetriever(document_store=scifact_store, top_k=4, return_embedding=True)
    assert EdgeSparseEmbeddingRetriever.from_dict(sparse.to_dict()).to_dict() == sparse.to_dict()
    documents = sparse.run(query_sparse_embedding=query_sparse)["documents"]
    assert_same_results(asyncio.run(sparse.run_async(query_sparse_embedding=query_sparse))["documents"], documents, 4)
    assert all(d.sparse_embedding is not None and len(d.embedding) == DIM for d in documents)
    scaled = sparse.run(query_sparse_embedding=query_sparse, scale_score=True)["documents"]
    assert [d.score for d in scaled] == pytest.approx([(d.score + 1) / 2 for d in documents])  # as qdrant-haystack
    # The dense retriever reads the named dense vector.
    dense = EdgeEmbeddingRetriever(document_store=scifact_store, top_k=3).run(query_embedding=query_dense.tolist())
    assert [d.id for d in dense["documents"]] == [
        scifact.ids[i] for i in np.argsort(-(scifact.dense @ query_dense))[:3]
    ]

    support = store_support(scifact_store)
    assert isinstance(support, EdgeStoreSupport) and support.document_store is scifact_store
    assert isinstance(support.sparse_retriever(top_k=3), EdgeSparseEmbeddingRetriever)
    default = support.hybrid_retriever()
    assert (default.fusion, default.rrf_k, default.prefetch_limit, default.rrf_weights) == ("dbsf", 60, 100, None)

    pipeline = Pipeline()
    pipeline.add_component("retriever", hybrid)
    yaml = pipeline.dumps()
    scifact_store.close()  # one holder of a collection at a time: the restored retrievers open it again
    restored = EdgeHybridRetriever.from_dict(data)
    assert restored.to_dict() == data
    assert_same_results(restored.run(**arguments)["documents"], found, 5)
    restored.document_store.close()
    loaded = Pipeline.loads(yaml).get_component("retriever")
    assert loaded.to_dict() == data
    assert_same_results(loaded.run(**arguments)["documents"], found, 5)
    loaded.document_store.close()


# --- Edge -> push -> qdrant-haystack's own QdrantHybridRetriever --------------------------------------------------


def assert_same_results(got: list[Document], expected: list[Document], top_k: int, rtol: float = 1e-5) -> None:
    """The same documents and scores; a document where ``expected`` has another of the same score at the cut is
    the same answer."""
    assert len(got) == len(expected)
    np.testing.assert_allclose([d.score for d in got], [d.score for d in expected], rtol=rtol)
    by_id = {d.id: d.score for d in expected}
    for document in got:
        if document.id in by_id:
            assert document.score == pytest.approx(by_id[document.id], rel=rtol)
        else:
            assert len(expected) == top_k and document.score == pytest.approx(expected[-1].score, rel=rtol)


def _compare_with_qdrant_haystack(edge_store: EdgeDocumentStore, server: QdrantDocumentStore, corpus: Corpus) -> None:
    # Equal BM25 scores among a side's candidates would give each engine its own RRF ranks (Qdrant defines no
    # order for them): these queries have none among their 11 best, with or without the filter.
    for query_sparse, _ in corpus.queries:
        for filters in (None, EVEN):
            scores = corpus.bm25(query_sparse)
            best = np.sort(scores[corpus.eligible(filters) & (scores > 0)])[::-1][:11]
            assert len(np.unique(best)) == len(best)
    # QdrantHybridRetriever leaves the prefetch limit to Qdrant (10 per side) and RRF's k too (2): the same here.
    for top_k, rrf_weights in ((10, None), (5, [1.0, 2.0])):
        edge = EdgeHybridRetriever(
            document_store=edge_store, top_k=top_k, fusion="rrf", rrf_k=2, rrf_weights=rrf_weights, prefetch_limit=10
        )
        qdrant = QdrantHybridRetriever(document_store=server, top_k=top_k, rrf_weights=rrf_weights)
        for query_sparse, query_dense in corpus.queries:
            for filters in (None, EVEN):
                arguments = {
                    "query_embedding": query_dense.tolist(),
                    "query_sparse_embedding": query_sparse,
                    "filters": filters,
                }
                got = edge.run(**arguments)["documents"]
                assert_same_results(got, qdrant.run(**arguments)["documents"], top_k)
    sparse = QdrantSparseEmbeddingRetriever(document_store=server, top_k=10)
    dense = QdrantEmbeddingRetriever(document_store=server, top_k=10)
    for query_sparse, query_dense in corpus.queries[:5]:
        assert_same_results(
            edge_store.sparse_retrieval(query_sparse), sparse.run(query_sparse_embedding=query_sparse)["documents"], 10
        )
        assert_same_results(
            edge_store.embedding_retrieval(query_dense.tolist()),
            dense.run(query_embedding=query_dense.tolist())["documents"],
            10,
        )
    # Every document reads back the same, both vectors included.
    server_documents = {d.id: d for d in server.filter_documents()}
    for document in edge_store.filter_documents():
        other = server_documents[document.id]
        assert (other.content, other.meta) == (document.content, document.meta)
        np.testing.assert_allclose(other.embedding, document.embedding, rtol=1e-5)
        assert other.sparse_embedding.indices == document.sparse_embedding.indices
        np.testing.assert_allclose(other.sparse_embedding.values, document.sparse_embedding.values, rtol=1e-6)


@pytest.fixture
def edge_hybrid_collection(scifact: Corpus, sample_dir: Path, tmp_path: Path) -> str:
    path = str(tmp_path / "edge")
    store = EdgeDocumentStore(path=path, index="docs", embedding_dim=DIM, use_sparse_embeddings=True)
    store.write_documents(scifact_documents(sample_dir, scifact))
    store.close()
    return path


def test_pushed_hybrid_collection_is_searched_by_qdrant_haystack_unchanged(
    scifact: Corpus, edge_hybrid_collection: str, tmp_path: Path
) -> None:
    target = QdrantClient(path=str(tmp_path / "server"))
    report = push_collection(edge_hybrid_collection, "docs", target, batch_size=64, progress_bar=False)
    assert report.source_points == report.copied == report.target_points == 300
    params = target.get_collection("docs").config.params
    assert set(params.vectors) == {"text-dense"}
    assert (params.vectors["text-dense"].size, params.vectors["text-dense"].distance) == (DIM, models.Distance.COSINE)
    assert set(params.sparse_vectors) == {"text-sparse"}
    assert params.sparse_vectors["text-sparse"].modifier == models.Modifier.IDF
    target.close()

    server = QdrantDocumentStore(
        path=str(tmp_path / "server"),
        index="docs",
        embedding_dim=DIM,
        use_sparse_embeddings=True,
        sparse_idf=True,
        progress_bar=False,
    )
    edge = EdgeDocumentStore(path=edge_hybrid_collection, index="docs", embedding_dim=DIM, use_sparse_embeddings=True)
    assert server.count_documents() == 300
    _compare_with_qdrant_haystack(edge, server, scifact)
    edge.close()
    server.close()


def test_push_checks_an_existing_targets_hybrid_layout_and_copies_a_local_hybrid_collection(
    scifact: Corpus, sample_dir: Path, edge_hybrid_collection: str, tmp_path: Path
) -> None:
    target = QdrantClient(":memory:")
    dense = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    target.create_collection("dense", vectors_config=dense)
    target.create_collection(
        "no-idf",
        vectors_config={"text-dense": dense},
        sparse_vectors_config={"text-sparse": models.SparseVectorParams()},
    )
    for name, has in (("dense", r"16-d, Cosine\."), ("no-idf", "'text-sparse': sparse, modifier none")):
        with pytest.raises(
            CollectionMismatchError,
            match=rf"'text-dense': 16-d, Cosine; 'text-sparse': sparse, modifier idf\): .*{has}",
        ):
            push_collection(edge_hybrid_collection, "docs", target, target_index=name, progress_bar=False)
        assert target.count(name).count == 0
    target.create_collection(
        "ready",
        vectors_config={"text-dense": dense},
        sparse_vectors_config={"text-sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    assert (
        push_collection(edge_hybrid_collection, "docs", target, target_index="ready", progress_bar=False).copied == 300
    )
    # A dense-only source is refused by a hybrid target.
    dense_path = str(tmp_path / "dense")
    dense_store = EdgeDocumentStore(path=dense_path, index="docs", embedding_dim=DIM)
    dense_store.write_documents([Document(id="x", embedding=[1.0] * DIM)])
    dense_store.close()
    with pytest.raises(CollectionMismatchError, match=r"\(16-d, Cosine\): it has 'text-dense'"):
        push_collection(dense_path, "docs", target, target_index="ready", progress_bar=False)

    # qdrant-haystack's own local-mode hybrid collection as the source: its layout and points are copied.
    local_path = str(tmp_path / "local")
    local = QdrantDocumentStore(
        path=local_path,
        index="docs",
        embedding_dim=DIM,
        use_sparse_embeddings=True,
        sparse_idf=True,
        progress_bar=False,
    )
    local.write_documents(scifact_documents(sample_dir, scifact)[:50])
    local.close()
    report = push_collection(local_path, "docs", target, target_index="from-local", progress_bar=False)
    assert report.target_points == report.copied == 50
    params = target.get_collection("from-local").config.params
    assert params.sparse_vectors["text-sparse"].modifier == models.Modifier.IDF and set(params.vectors) == {
        "text-dense"
    }
    source = QdrantClient(path=local_path)
    expected, _ = source.scroll("docs", limit=100, with_payload=True, with_vectors=True)
    source.close()
    copied = {str(r.id): r for r in target.scroll("from-local", limit=100, with_payload=True, with_vectors=True)[0]}
    assert set(copied) == {str(r.id) for r in expected}
    for record in expected:
        other = copied[str(record.id)]
        assert other.payload == record.payload
        assert other.vector["text-sparse"] == record.vector["text-sparse"]
        # Cosine: local mode on disk keeps what it was given, in memory unit vectors; the same direction.
        np.testing.assert_allclose(
            unit(np.array(other.vector["text-dense"])), unit(np.array(record.vector["text-dense"])), rtol=1e-6
        )


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server at QDRANT_URL")
def test_pushed_hybrid_collection_on_a_qdrant_server(scifact: Corpus, edge_hybrid_collection: str) -> None:
    client = QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
    name = f"simlm_haystack_hybrid_{uuid.uuid4().hex[:8]}"
    try:
        report = push_collection(edge_hybrid_collection, "docs", client, target_index=name, progress_bar=False)
        assert report.target_points == 300
        api_key = os.environ.get("QDRANT_API_KEY")
        server = QdrantDocumentStore(
            url=os.environ["QDRANT_URL"],
            api_key=Secret.from_token(api_key) if api_key else None,
            index=name,
            embedding_dim=DIM,
            use_sparse_embeddings=True,
            sparse_idf=True,
            progress_bar=False,
        )
        edge = EdgeDocumentStore(
            path=edge_hybrid_collection, index="docs", embedding_dim=DIM, use_sparse_embeddings=True
        )
        _compare_with_qdrant_haystack(edge, server, scifact)
        edge.close()
    finally:
        client.delete_collection(name)
        client.close()


# --- a killed hybrid indexing resumes -----------------------------------------------------------------------------

KILLABLE_HYBRID_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from haystack import Document
    from haystack.dataclasses import SparseEmbedding
    from haystack.document_stores.types import DuplicatePolicy
    from simlm_haystack.sparse import BM25Encoder
    from simlm_haystack.stores.edge import EdgeDocumentStore

    path = sys.argv[1]
    store = EdgeDocumentStore(path=path, index="docs", embedding_dim=8, use_sparse_embeddings=True)
    encoder = BM25Encoder()
    texts = [f"document {i} about topic {i % 7} and subject {i % 5}" for i in range(40)]
    for start in range(0, 40, 4):
        chunk = []
        for i, vector in zip(range(start, start + 4), encoder.encode_documents(texts[start : start + 4])):
            dense = np.random.default_rng(i).standard_normal(8).tolist()
            sparse = SparseEmbedding(indices=list(vector.indices), values=list(vector.values))
            chunk.append(Document(id=f"doc-{i}", content=texts[i], embedding=dense, sparse_embedding=sparse))
        store.write_documents(chunk, policy=DuplicatePolicy.SKIP)
        print("written", start + 4, flush=True)
        if start + 4 == 12:  # wait here for the test's SIGKILL: a fast machine would otherwise finish first
            sys.stdin.readline()
    print("done", flush=True)
    """
)


def _hybrid_writer_documents() -> list[Document]:
    encoder = BM25Encoder()
    texts = [f"document {i} about topic {i % 7} and subject {i % 5}" for i in range(40)]
    return [
        Document(
            id=f"doc-{i}",
            content=text,
            embedding=np.random.default_rng(i).standard_normal(8).tolist(),
            sparse_embedding=sparse_embedding(vector),
        )
        for i, (text, vector) in enumerate(zip(texts, encoder.encode_documents(texts), strict=True))
    ]


def test_killed_hybrid_writer_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    path = str(tmp_path / "edge")
    script = tmp_path / "writer.py"
    script.write_text(KILLABLE_HYBRID_WRITER)
    process = subprocess.Popen(
        [sys.executable, str(script), path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    written = 0
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("written"):
            written = int(line.split()[1])
        if written == 12:  # SIGKILL mid-run: no flush, no close, the lock left behind
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    store = EdgeDocumentStore(path=path, index="docs", embedding_dim=8, use_sparse_embeddings=True)
    survivors = store.count_documents()
    assert 12 <= survivors < 40  # every write that returned survived
    survived = store.filter_documents()
    assert all(d.sparse_embedding is not None and d.embedding is not None for d in survived)
    documents = _hybrid_writer_documents()
    assert store.write_documents(documents, policy=DuplicatePolicy.SKIP) == 40 - survivors
    assert sorted(d.id for d in store.filter_documents()) == sorted(d.id for d in documents)

    # The resumed collection searches exactly as one written in one go: the same BM25 scores (so the same IDF
    # statistics) and dense scores, and so the same DBSF over all candidates (RRF would depend on the order of
    # these texts' many equal BM25 scores, which differs between two collections written in different orders).
    fresh = EdgeDocumentStore(embedding_dim=8, use_sparse_embeddings=True)
    fresh.write_documents(documents)
    encoder = BM25Encoder()
    for text in ("topic 3 subject", "document 17", "subject 4 about"):
        query_sparse = sparse_embedding(encoder.encode_query(text))
        query_dense = np.random.default_rng(len(text)).standard_normal(8).tolist()
        got = store.sparse_retrieval(query_sparse, top_k=40)
        assert_same_results(got, fresh.sparse_retrieval(query_sparse, top_k=40), 40)
        got = store.embedding_retrieval(query_dense, top_k=40)
        assert_same_results(got, fresh.embedding_retrieval(query_dense, top_k=40), 40)
        search = HybridSearch(fusion="dbsf", prefetch_limit=40)
        got = store.hybrid_retrieval(query_dense, query_sparse, top_k=40, search=search)
        assert_same_results(got, fresh.hybrid_retrieval(query_dense, query_sparse, top_k=40, search=search), 40)
    store.close()
    fresh.close()


def test_collection_file_records_the_sparse_setting_and_recreating_keeps_it(tmp_path: Path) -> None:
    store = edge_document_store("minilm", embedding_dim=4, path=str(tmp_path), index="h", use_sparse_embeddings=True)
    assert store.use_sparse_embeddings and EdgeDocumentStore.from_dict(store.to_dict()).use_sparse_embeddings
    document = Document(id="a", embedding=[1.0, 0, 0, 0], sparse_embedding=SparseEmbedding(indices=[7], values=[1.0]))
    store.write_documents([document])
    store.delete_all_documents(recreate_index=True)
    assert store.count_documents() == 0
    store.write_documents([document])
    assert [d.id for d in store.sparse_retrieval(SparseEmbedding(indices=[7], values=[1.0]))] == ["a"]
    store.close()
    assert json.loads((tmp_path / "h" / "collection.json").read_text()) == {
        "engine": "qdrant-edge",
        "embedding_dim": 4,
        "similarity": "cosine",
        "use_sparse_embeddings": True,
    }


def test_the_edge_and_the_server_hybrid_retrievers_take_the_same_run_overrides() -> None:
    from simlm_haystack.stores import qdrant_document_store
    from simlm_haystack.stores.fusion import RUN_OVERRIDES
    from simlm_haystack.stores.qdrant_hybrid import QdrantHybridSearchRetriever

    def run_parameters(cls: type) -> list[str]:
        return list(inspect.signature(cls.run).parameters)

    assert run_parameters(EdgeHybridRetriever) == run_parameters(QdrantHybridSearchRetriever)
    assert set(RUN_OVERRIDES) <= set(run_parameters(EdgeHybridRetriever))
    search = HybridSearch(fusion="rrf", rrf_k=60, prefetch_limit=20)
    assert search.overridden() == search
    assert search.overridden(rrf_k=2, rrf_weights=[1.0, 3.0]) == HybridSearch(
        fusion="rrf", rrf_k=2, rrf_weights=(1.0, 3.0), prefetch_limit=20
    )
    with pytest.raises(SettingsError):
        search.overridden(rrf_k=0)

    # The server retriever (here on qdrant-client's local mode) applies a run's overrides: weighing the sparse
    # side 0 leaves the dense ranking.
    store = qdrant_document_store("simlm", embedding_dim=2, use_sparse_embeddings=True)
    store.write_documents(
        [
            Document(
                id=str(i),
                content=str(i),
                embedding=[1.0, float(i)],
                sparse_embedding=SparseEmbedding(indices=[i % 3], values=[1.0]),
            )
            for i in range(6)
        ]
    )
    support = store_support(store)
    hybrid = support.retriever("hybrid", top_k=3, search=search)
    assert isinstance(hybrid, QdrantHybridSearchRetriever)
    query = {"query_embedding": [1.0, 2.0], "query_sparse_embedding": SparseEmbedding(indices=[1], values=[1.0])}
    dense_only = hybrid.run(**query, rrf_k=2, rrf_weights=[0.0, 1.0])["documents"]
    dense = support.retriever("dense", top_k=3).run(query_embedding=query["query_embedding"])["documents"]
    assert [d.id for d in dense_only] == [d.id for d in dense]
    assert [d.id for d in hybrid.run(**query)["documents"]] != [d.id for d in dense_only]
