"""Qdrant Edge as a Haystack document store: Haystack's own contract tests, the point layout shared with
QdrantDocumentStore, filters against QdrantDocumentStore's, exact and HNSW search, the lock, interruption."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import (
    CountDocumentsByFilterTest,
    DocumentStoreBaseExtendedTests,
    create_filterable_docs,
)
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import convert_haystack_documents_to_qdrant_points

from simlm_haystack import (
    CollectionMismatchError,
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    build_query_pipeline,
    index_documents,
)
from simlm_haystack.components.pipelines import embedding_retriever
from simlm_haystack.corpus import read_documents, read_jsonl
from simlm_haystack.errors import StoreError
from simlm_haystack.stores import EdgeDocumentStore, edge_document_store, embedded_engine
from simlm_haystack.stores.edge import EdgeEmbeddingRetriever
from simlm_haystack.stores.edge.collection import read_collection_file

with warnings.catch_warnings():  # its tests are marked for pytest-asyncio; anyio runs them here (see below)
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from haystack.testing.document_store_async import (
        CountDocumentsAsyncTest,
        CountDocumentsByFilterAsyncTest,
        DeleteAllAsyncTest,
        DeleteByFilterAsyncTest,
        DeleteDocumentsAsyncTest,
        FilterDocumentsAsyncTest,
        UpdateByFilterAsyncTest,
        WriteDocumentsAsyncTest,
    )

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def assert_same_documents(received: list[Document], expected: list[Document]) -> None:
    """Same ids, content, meta and blob; embeddings as stored (cosine normalises them: compare directions)."""
    assert sorted(d.id for d in received) == sorted(d.id for d in expected)
    by_id = {d.id: d for d in received}
    for document in expected:
        got = by_id[document.id]
        assert (got.content, got.meta, got.blob) == (document.content, document.meta, document.blob)
        assert (got.embedding is None) == (document.embedding is None)
        if document.embedding is not None:
            a, b = np.asarray(got.embedding), np.asarray(document.embedding)
            assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) == pytest.approx(1.0, abs=1e-6)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio  # runs the async contract tests (they are marked for pytest-asyncio, which is not needed here)
class TestEdgeDocumentStoreContract(
    DocumentStoreBaseExtendedTests,
    CountDocumentsByFilterTest,
    CountDocumentsAsyncTest,
    WriteDocumentsAsyncTest,
    DeleteDocumentsAsyncTest,
    FilterDocumentsAsyncTest,
    DeleteAllAsyncTest,
    CountDocumentsByFilterAsyncTest,
    DeleteByFilterAsyncTest,
    UpdateByFilterAsyncTest,
):
    """Haystack's document-store tests; the contract's 768-d random embeddings, compared as directions."""

    @pytest.fixture
    def document_store(self):
        store = EdgeDocumentStore(embedding_dim=768)
        yield store
        store.close()

    def assert_documents_are_equal(self, received: list[Document], expected: list[Document]) -> None:
        assert_same_documents(received, expected)

    def test_write_documents(self, document_store: EdgeDocumentStore) -> None:
        # The default policy is QdrantDocumentStore's: FAIL.
        documents = [Document(id="1", content="one")]
        assert document_store.write_documents(documents) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents(documents)
        assert_same_documents(document_store.filter_documents(), documents)

    async def test_write_documents_async(self, document_store: EdgeDocumentStore) -> None:
        documents = [Document(id="1", content="one")]
        assert await document_store.write_documents_async(documents) == 1
        with pytest.raises(DuplicateDocumentError):
            await document_store.write_documents_async(documents)
        assert_same_documents(await document_store.filter_documents_async(), documents)

    # Comparisons with None: Haystack's specification matches missing fields; qdrant-haystack's filter
    # conversion (which this store reuses, as QdrantDocumentStore does) refuses None as a value.
    @pytest.mark.parametrize("operator", ["==", "!=", ">", ">=", "<", "<="])
    def test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store(
        self, document_store: EdgeDocumentStore, filterable_docs: list[Document], operator: str
    ) -> None:
        document_store.write_documents(filterable_docs)
        none_filter = {"field": "meta.number", "operator": operator, "value": None}
        with pytest.raises(FilterError):
            document_store.filter_documents(filters=none_filter)
        qdrant = QdrantDocumentStore(":memory:", embedding_dim=768, progress_bar=False)
        with pytest.raises(FilterError):
            qdrant.filter_documents(filters=none_filter)

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_equal_with_none(self) -> None: ...

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_not_equal_with_none(self) -> None: ...

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_greater_than_with_none(self) -> None: ...

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_greater_than_equal_with_none(self) -> None: ...

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_less_than_with_none(self) -> None: ...

    @pytest.mark.skip(reason="replaced by test_comparison_with_none_is_a_filter_error_as_in_qdrant_document_store")
    def test_comparison_less_than_equal_with_none(self) -> None: ...


# --- the same collection under either engine ----------------------------------------------------------------------


def test_points_are_laid_out_as_qdrant_document_store_lays_them_out() -> None:
    documents = [
        Document(id="a", content="x", meta={"title": "T", "nested": {"k": [1, 2]}}, embedding=[0.6, 0.8, 0.0]),
        Document(content="no embedding", meta={"n": 3}),
    ]
    store = EdgeDocumentStore(embedding_dim=3)
    store.write_documents(documents)
    records = [record for batch in store.scroll_points(10) for record in batch]
    expected = {
        point.id: point for point in convert_haystack_documents_to_qdrant_points(documents, use_sparse_embeddings=False)
    }
    assert {str(record.id).replace("-", "") for record in records} == set(expected)
    for record in records:
        point = expected[str(record.id).replace("-", "")]
        assert record.payload == point.payload
        assert (record.vector or {}) == pytest.approx(point.vector or {})  # already unit length: stored as given
    store.close()


def test_what_edge_stores_reads_back_unchanged(tmp_path: Path) -> None:
    documents = [Document(id=str(i), content=f"text {i}", meta={"i": i, "tags": ["a", "b"]}) for i in range(5)]
    store = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=3)
    store.write_documents(
        [Document(id=d.id, content=d.content, meta=d.meta, embedding=[1.0, 2.0, 2.0]) for d in documents]
    )
    store.close()
    reopened = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=3)
    stored = sorted(reopened.filter_documents(), key=lambda d: int(d.id))
    assert [(d.id, d.content, d.meta) for d in stored] == [(d.id, d.content, d.meta) for d in documents]
    np.testing.assert_allclose([d.embedding for d in stored], [[1 / 3, 2 / 3, 2 / 3]] * 5, rtol=1e-6)  # cosine: unit
    assert reopened.get_documents_by_id(["3", "missing"])[0].content == "text 3"
    reopened.close()


# --- filters: the same answers as QdrantDocumentStore -------------------------------------------------------------

FILTERS = [
    {"field": "meta.chapter", "operator": "==", "value": "intro"},
    {"field": "meta.number", "operator": "!=", "value": 2},
    {"field": "meta.number", "operator": ">", "value": 0},
    {"field": "meta.number", "operator": "<=", "value": -2},
    {"field": "meta.date", "operator": ">=", "value": "1972-12-11T19:54:58"},
    {"field": "meta.date", "operator": "<", "value": "1989-11-09T17:53:00"},
    {"field": "meta.chapter", "operator": "in", "value": ["intro", "abstract"]},
    {"field": "meta.name", "operator": "not in", "value": ["name_0", "zeros_doc"]},
    {"field": "content", "operator": "==", "value": "A Foo Document 1"},
    {"field": "meta.no_embedding", "operator": "==", "value": True},
    {
        "operator": "OR",
        "conditions": [
            {"field": "meta.chapter", "operator": "==", "value": "conclusion"},
            {
                "operator": "AND",
                "conditions": [
                    {"field": "meta.number", "operator": "<", "value": 0},
                    {"field": "meta.name", "operator": "==", "value": "name_2"},
                ],
            },
        ],
    },
    {"operator": "NOT", "conditions": [{"field": "meta.page", "operator": "==", "value": "100"}]},
]


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_filters_select_what_qdrant_document_store_selects(filters: dict) -> None:
    documents = create_filterable_docs()
    edge = EdgeDocumentStore(embedding_dim=768)
    qdrant = QdrantDocumentStore(":memory:", embedding_dim=768, progress_bar=False)
    edge.write_documents(documents)
    qdrant.write_documents(documents)
    expected = {d.id for d in qdrant.filter_documents(filters)}
    assert expected, "a filter that selects nothing proves little"
    assert {d.id for d in edge.filter_documents(filters)} == expected
    assert edge.count_documents_by_filter(filters) == len(expected)
    edge.close()


def test_not_negates_the_conjunction_of_its_conditions() -> None:
    # Haystack: NOT(a, b) = not (a and b). qdrant-haystack reads it as (not a) and (not b); this store follows Haystack.
    documents = create_filterable_docs()
    store = EdgeDocumentStore(embedding_dim=768)
    store.write_documents(documents)
    conditions = [
        {"field": "meta.chapter", "operator": "==", "value": "intro"},
        {"field": "meta.name", "operator": "==", "value": "name_0"},
    ]
    result = store.filter_documents({"operator": "NOT", "conditions": conditions})
    expected = [d for d in documents if not (d.meta.get("chapter") == "intro" and d.meta.get("name") == "name_0")]
    assert {d.id for d in result} == {d.id for d in expected} and len(expected) == len(documents) - 1
    store.close()


def test_bad_filters_are_filter_errors() -> None:
    store = EdgeDocumentStore(embedding_dim=4)
    store.write_documents([Document(content="x", meta={"f": 1.5})])
    with pytest.raises(FilterError, match="cannot be expressed in Qdrant"):
        store.filter_documents({"field": "meta.f", "operator": "==", "value": 1.5})  # Qdrant matches no floats
    with pytest.raises(FilterError):
        store.filter_documents({"conditions": []})
    with pytest.raises(FilterError):
        store.filter_documents("meta.f == 1")  # type: ignore[arg-type]
    store.close()


# --- writing ------------------------------------------------------------------------------------------------------


def test_duplicate_policies() -> None:
    store = EdgeDocumentStore(embedding_dim=2)
    first = [Document(id="a", content="1"), Document(id="b", content="1")]
    assert store.write_documents(first, DuplicatePolicy.FAIL) == 2
    with pytest.raises(DuplicateDocumentError, match="a, b"):
        store.write_documents([Document(id="c", content="2"), *first], DuplicatePolicy.FAIL)
    assert store.count_documents() == 2  # FAIL writes nothing
    assert (
        store.write_documents([Document(id="a", content="2"), Document(id="c", content="2")], DuplicatePolicy.SKIP) == 1
    )
    assert store.get_documents_by_id(["a"])[0].content == "1"
    assert store.write_documents([Document(id="a", content="3")], DuplicatePolicy.OVERWRITE) == 1
    assert store.write_documents([Document(id="b", content="3")], DuplicatePolicy.NONE) == 1  # as QdrantDocumentStore
    assert {d.id: d.content for d in store.filter_documents()} == {"a": "3", "b": "3", "c": "2"}
    # Within one call, SKIP keeps the first of repeated ids.
    assert (
        store.write_documents([Document(id="d", content="x"), Document(id="d", content="y")], DuplicatePolicy.SKIP) == 1
    )
    assert store.get_documents_by_id(["d"])[0].content == "x"
    store.close()


def test_wrong_embedding_size_names_the_document_before_writing() -> None:
    store = EdgeDocumentStore(embedding_dim=3, index="docs")
    with pytest.raises(
        CollectionMismatchError, match=r"Document 'bad' has a 2-d embedding; collection 'docs' holds 3-d"
    ):
        store.write_documents([Document(id="ok", embedding=[1.0, 0, 0]), Document(id="bad", embedding=[1.0, 0])])
    assert store.count_documents() == 0
    with pytest.raises(ValueError, match="2 dimensions"):
        store.embedding_retrieval([1.0, 0.0])
    store.close()


# --- collections on disk ------------------------------------------------------------------------------------------


def test_factory_takes_size_and_distance_and_refuses_another_collection(tiny_bert: str, tmp_path: Path) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = edge_document_store(embedder, path=str(tmp_path), index="docs")
    assert (store.embedding_dim, store.similarity) == (32, "cosine")
    assert edge_document_store("tas-b", embedding_dim=8).similarity == "dot_product"
    index_documents([Document(id="a", content="x")], embedder, store, progress_bar=False)
    store.close()
    record = read_collection_file(tmp_path / "docs")
    encoder = record.pop("simlm_haystack_encoder")  # the encoder that filled it (tests/test_identity.py)
    assert record == {
        "engine": "qdrant-edge",
        "embedding_dim": 32,
        "similarity": "cosine",
        "use_sparse_embeddings": False,
    }
    assert encoder["model"] == tiny_bert and encoder["recipe"]["name"] == "simlm"
    assert embedded_engine(tmp_path, "docs") == "edge" and embedded_engine(tmp_path, "other") is None
    with pytest.raises(CollectionMismatchError, match=r"cannot hold this model's vectors \(384-d, cosine\).*32-d"):
        edge_document_store("simlm", embedding_dim=384, path=str(tmp_path), index="docs")
    with pytest.raises(CollectionMismatchError, match=r"\(32-d, dot_product\).*cosine"):
        edge_document_store("tas-b", embedding_dim=32, path=str(tmp_path), index="docs")
    reopened = edge_document_store(embedder, path=str(tmp_path), index="docs")
    assert reopened.count_documents() == 1  # the refusals changed nothing
    reopened.close()


def test_temporary_store_is_removed_on_close() -> None:
    store = EdgeDocumentStore(embedding_dim=2)
    store.write_documents([Document(content="x")])
    folder = store.collection_path
    assert folder is not None and folder.is_dir()
    store.close()
    assert not folder.exists()
    store.close()  # idempotent


def test_delete_all_with_recreate_keeps_the_settings(tmp_path: Path) -> None:
    store = EdgeDocumentStore(path=str(tmp_path), embedding_dim=2, similarity="dot_product")
    store.write_documents([Document(content="x", embedding=[1.0, 2.0])])
    store.delete_all_documents(recreate_index=True)
    assert store.count_documents() == 0
    store.write_documents([Document(id="y", embedding=[3.0, 4.0])])
    assert store.embedding_retrieval([1.0, 1.0])[0].score == pytest.approx(7.0)  # still dot product
    store.close()


LOCK_HOLDER = textwrap.dedent(
    """
    import sys
    from simlm_haystack.stores import EdgeDocumentStore

    store = EdgeDocumentStore(path=sys.argv[1], index="docs", embedding_dim=2)
    store.open()
    print("open", flush=True)
    sys.stdin.readline()  # hold the store until told to go
    """
)


def test_a_second_process_gets_a_clear_error_not_a_corrupt_store(tmp_path: Path) -> None:
    store = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=2)
    store.write_documents([Document(id="kept", embedding=[1.0, 0.0])])
    store.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError) as raised:
            EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=2).count_documents()
        message = str(raised.value)
        assert str(tmp_path / "docs") in message and f"in another process (pid {holder.pid})" in message
    finally:
        holder.communicate("go\n", timeout=60)
    reopened = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=2)
    assert [d.id for d in reopened.filter_documents()] == ["kept"]  # the refused opener changed nothing
    with pytest.raises(StoreError, match="in this process already"):
        EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=2).open()
    reopened.close()


# --- search: exact below the threshold, HNSW above it -------------------------------------------------------------


def _clustered_vectors(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    vectors = centres[rng.integers(0, 20, count)] + 0.5 * rng.standard_normal((count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("exact_search_threshold", [10_000, 100])
def test_search_is_exact_below_the_threshold_and_hnsw_above(exact_search_threshold: int) -> None:
    vectors = _clustered_vectors(2000, 16)
    documents = [Document(id=str(i), embedding=vector.tolist()) for i, vector in enumerate(vectors)]
    store = EdgeDocumentStore(embedding_dim=16, exact_search_threshold=exact_search_threshold, hnsw_ef=256)
    store.write_documents(documents)
    queries = _clustered_vectors(20, 16, seed=1)
    hits = 0
    for query in queries:
        found = [int(d.id) for d in store.embedding_retrieval(query.tolist(), top_k=10)]
        exact = list(np.argsort(-(vectors @ query), kind="stable")[:10])
        hits += len(set(found) & set(exact))
        if exact_search_threshold > len(vectors):
            assert found == exact
    indexed = store._open_shard().info().indexed_vectors_count  # the first search built what the store needs
    if exact_search_threshold > len(vectors):
        assert indexed == 0  # no graph is built for a collection searched exactly
    else:
        assert indexed == len(vectors) and hits >= 0.98 * 10 * len(queries)
    store.close()


def test_scores_thresholds_and_embeddings_as_qdrant_gives_them() -> None:
    documents = [Document(id=str(i), content=str(i), embedding=[1.0, float(i)]) for i in range(5)]
    edge = EdgeDocumentStore(embedding_dim=2)
    qdrant = QdrantDocumentStore(":memory:", embedding_dim=2, progress_bar=False)
    for store in (edge, qdrant):
        store.write_documents(documents)
    for arguments in ({}, {"scale_score": True}, {"score_threshold": 0.9}, {"top_k": 2, "return_embedding": True}):
        got = edge.embedding_retrieval([1.0, 1.0], **arguments)
        expected = qdrant._query_by_embedding([1.0, 1.0], **arguments)
        assert [d.id for d in got] == [d.id for d in expected]
        np.testing.assert_allclose([d.score for d in got], [d.score for d in expected], rtol=1e-6)
        assert [d.embedding is None for d in got] == [d.embedding is None for d in expected]
    edge.close()


# --- components ---------------------------------------------------------------------------------------------------


def test_edge_retriever_runs_filters_serialises_and_runs_async(tmp_path: Path) -> None:
    store = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=2)
    store.write_documents(
        [Document(id=str(i), content=str(i), meta={"even": i % 2 == 0}, embedding=[1.0, float(i)]) for i in range(6)]
    )
    retriever = EdgeEmbeddingRetriever(
        document_store=store, top_k=3, filters={"field": "meta.even", "operator": "==", "value": True}
    )
    documents = retriever.run(query_embedding=[0.0, 1.0])["documents"]
    assert [d.id for d in documents] == ["4", "2", "0"]
    assert [
        d.id
        for d in retriever.run(
            query_embedding=[0.0, 1.0], filters={"field": "meta.even", "operator": "==", "value": False}, top_k=1
        )["documents"]
    ] == ["5"]
    assert asyncio.run(retriever.run_async(query_embedding=[0.0, 1.0]))["documents"] == documents

    data = retriever.to_dict()
    assert (
        data["init_parameters"]["document_store"]["type"]
        == "simlm_haystack.stores.edge.document_store.EdgeDocumentStore"
    )
    assert data["init_parameters"]["document_store"]["init_parameters"]["path"] == str(tmp_path)
    store.close()
    restored = EdgeEmbeddingRetriever.from_dict(data)
    assert restored.to_dict() == data
    assert [d.id for d in restored.run(query_embedding=[0.0, 1.0])["documents"]] == ["4", "2", "0"]
    restored.document_store.close()
    assert isinstance(embedding_retriever(restored.document_store), EdgeEmbeddingRetriever)
    with pytest.raises(ValueError, match="EdgeDocumentStore"):
        EdgeEmbeddingRetriever(document_store=QdrantDocumentStore(":memory:"))  # type: ignore[arg-type]


def test_store_round_trips_through_its_dict(tmp_path: Path) -> None:
    store = EdgeDocumentStore(path=str(tmp_path), index="i", embedding_dim=5, similarity="l2", hnsw_ef=64, on_disk=True)
    assert EdgeDocumentStore.from_dict(store.to_dict()).to_dict() == store.to_dict()
    with pytest.raises(ValueError, match="similarity"):
        EdgeDocumentStore(similarity="manhattan")


@pytest.fixture(scope="module", params=["minilm", "tas-b"])  # cosine over unit vectors, and a raw dot product
def edge_scifact(minilm_path: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory, request) -> tuple:
    recipe = request.param
    document_embedder = DualEncoderDocumentEmbedder(model=MINILM, recipe=recipe, progress_bar=False, batch_size=64)
    store = edge_document_store(document_embedder, path=str(tmp_path_factory.mktemp("edge")), index="scifact")
    assert store.similarity == ("cosine" if recipe == "minilm" else "dot_product")
    documents = list(read_documents(sample_dir / "corpus.jsonl"))
    index_documents(documents, document_embedder, store, progress_bar=False)
    yield recipe, document_embedder, store, documents
    store.close()


@pytest.mark.integration
def test_edge_top10_equals_exact_numpy_search_on_scifact(edge_scifact, sample_dir: Path) -> None:
    recipe, document_embedder, store, documents = edge_scifact
    text_embedder = DualEncoderTextEmbedder(model=MINILM, recipe=recipe)
    stored = store.get_documents_by_id([d.id for d in documents])  # exact search over the vectors Edge holds
    matrix, ids = np.array([d.embedding for d in stored]), [d.id for d in stored]
    fresh = document_embedder.run(documents[:5])["documents"]  # which are the embedder's vectors
    np.testing.assert_allclose(
        np.array([d.embedding for d in fresh]), matrix[[ids.index(d.id) for d in fresh]], rtol=1e-5, atol=1e-6
    )
    pipeline = build_query_pipeline(text_embedder, store, top_k=10)
    queries = [record["text"] for _, record in read_jsonl(sample_dir / "queries.jsonl")][:30]
    for query in queries:
        retrieved = pipeline.run({"retriever": {"query": query}})["retriever"]["documents"]
        scores = matrix @ np.asarray(text_embedder.run(query)["embedding"])
        assert [d.id for d in retrieved] == [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
        np.testing.assert_allclose([d.score for d in retrieved], np.sort(scores)[::-1][:10], rtol=1e-4, atol=1e-5)


@pytest.mark.integration
def test_drop_in_retriever_on_edge_in_a_pipeline_and_yaml(edge_scifact) -> None:
    recipe, _, store, _ = edge_scifact
    retriever = DualEncoderRetriever(model=MINILM, recipe=recipe, document_store=store, top_k=5)
    result = retriever.run(query="Vitamin D deficiency and cancer risk")
    assert len(result["documents"]) == 5 and result["documents"][0].meta["title"]
    data = retriever.to_dict()
    assert data["init_parameters"]["document_store"]["type"].endswith("EdgeDocumentStore")
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    yaml = pipeline.dumps()
    store.close()  # the restored pipeline opens the same collection (one holder at a time)
    restored = Pipeline.loads(yaml).get_component("retriever")
    assert restored.to_dict() == data
    assert [d.id for d in restored.run(query="Vitamin D deficiency and cancer risk")["documents"]] == [
        d.id for d in result["documents"]
    ]
    restored.document_store.close()


# --- command line: --engine, and the engine already holding a collection ------------------------------------------


def test_cli_indexes_into_edge_by_default_and_keeps_the_engine_of_an_existing_collection(
    tiny_bert: str, tmp_path: Path, capsys
) -> None:
    from conftest import write_jsonl

    from simlm_haystack.cli import main

    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": str(i), "text": f"document {i}"} for i in range(3)])
    model = ["--model", tiny_bert, "--recipe", "simlm"]
    path = str(tmp_path / "q")
    assert main(["index", str(corpus), "--qdrant-path", path, "--index", "new", *model, "--quiet"]) == 0
    assert embedded_engine(path, "new") == "edge"
    assert main(["index", str(corpus), "--qdrant-path", path, "--index", "old", "--engine", "local", *model]) == 0
    assert embedded_engine(path, "old") == "local"
    capsys.readouterr()
    assert main(["search", "document 1", "--qdrant-path", path, "--index", "old", *model, "--top-k", "1"]) == 0
    assert "  1. " in capsys.readouterr().out  # found in local mode without --engine
    assert main(["search", "document 1", "--qdrant-path", path, "--index", "new", *model, "--top-k", "1"]) == 0
    assert "  1. " in capsys.readouterr().out

    assert main(["search", "q", "--qdrant-url", "http://127.0.0.1:9", "--engine", "edge", *model]) == 2
    assert "--qdrant-url is a server" in capsys.readouterr().err
    assert main(["search", "q", "--qdrant-path", path, "--index", "new", "--shard-number", "2", *model]) == 2
    assert "use them with --qdrant-url, or with `simlm-haystack push`" in capsys.readouterr().err
