"""LangChain's standard tests (``langchain-tests``) for the embeddings, the vector store and its retriever.

The vector-store and retriever suites run on three store layouts: ``location=":memory:"``, an embedded
``path=`` folder, and :data:`HAYSTACK_LAYOUT`. The suites' own embeddings are random vectors; the store takes
only :class:`DualEncoderEmbeddings`, so they run on the real all-MiniLM-L6-v2, whose recipe reads queries and
documents alike: a query equal to a stored text is its nearest document (cosine 1), which is what the
suites' orderings assume. The tests after the suites check that assumption and the ids against
qdrant-haystack and langchain-qdrant.

The suites' async tests are plain coroutines: anyio runs them here, as in ``test_edge_store.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MINILM
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import convert_id
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStoreRetriever
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

from simlm_haystack.langchain import (
    HAYSTACK_HYBRID_LAYOUT,
    HAYSTACK_LAYOUT,
    BM25SparseEmbeddings,
    DualEncoderEmbeddings,
    DualEncoderQdrantVectorStore,
)
from simlm_haystack.langchain.vectorstore import point_id

LAYOUTS = ("memory", "path", "haystack")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Generator[None]:
    """The suites embed a few words at a time: one thread does it in milliseconds, where torch's pool of two
    threads on two busy shared cores took seconds (one add-add-search round: 0.04 s against 1.9 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _minilm() -> DualEncoderEmbeddings:
    """all-MiniLM-L6-v2 with its recipe (found from the hub id); loaded once per process, however many times built."""
    return DualEncoderEmbeddings(model=MINILM)


def _empty_store(layout: str, folder: Path) -> DualEncoderQdrantVectorStore:
    """A new empty collection in ``layout``; a ``path`` store holds its folder locked until its client closes."""
    client_options = {"path": str(folder)} if layout == "path" else {"location": ":memory:"}
    payload_keys = HAYSTACK_LAYOUT if layout == "haystack" else {}
    return DualEncoderQdrantVectorStore.from_texts(
        [], _minilm(), collection_name="standard", **client_options, **payload_keys
    )


@pytest.fixture(params=LAYOUTS)
def empty_store(
    request: pytest.FixtureRequest, minilm_path: str, tmp_path: Path
) -> Generator[DualEncoderQdrantVectorStore]:
    store = _empty_store(request.param, tmp_path / "qdrant")
    try:
        yield store
    finally:
        store.client.close()


# --- LangChain's suites ------------------------------------------------------------------------------


class TestEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[DualEncoderEmbeddings]:
        return DualEncoderEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MINILM}


@pytest.mark.integration
@pytest.mark.anyio
class TestEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _needs_minilm(self, minilm_path: str) -> None:
        """Skips the suite where the offline MiniLM package is missing."""

    @property
    def embeddings_class(self) -> type[DualEncoderEmbeddings]:
        return DualEncoderEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": MINILM}


@pytest.mark.integration
@pytest.mark.anyio
class TestVectorStoreIntegration(VectorStoreIntegrationTests):
    @staticmethod
    def get_embeddings() -> DualEncoderEmbeddings:
        return _minilm()  # what empty_store builds its stores with

    @pytest.fixture
    def vectorstore(self, empty_store: DualEncoderQdrantVectorStore) -> DualEncoderQdrantVectorStore:
        return empty_store


@pytest.mark.integration
@pytest.mark.anyio
class TestHybridVectorStoreIntegration(VectorStoreIntegrationTests):
    """The same suite on a HYBRID store (MiniLM and BM25, fused by langchain-qdrant's query) in the Haystack
    hybrid layout: a text equal to the query is first on both sides, so first in the fusion too."""

    @staticmethod
    def get_embeddings() -> DualEncoderEmbeddings:
        return _minilm()

    @pytest.fixture
    def vectorstore(self, minilm_path: str) -> Generator[DualEncoderQdrantVectorStore]:
        store = DualEncoderQdrantVectorStore.from_texts(
            [],
            _minilm(),
            collection_name="standard",
            location=":memory:",
            retrieval_mode=RetrievalMode.HYBRID,
            sparse_embedding=BM25SparseEmbeddings(),
            **HAYSTACK_HYBRID_LAYOUT,
        )
        try:
            yield store
        finally:
            store.client.close()


RETRIEVER_DOCUMENTS = [
    Document(page_content="Mars is called the red planet because of iron oxide on its surface.", id="mars"),
    Document(page_content="Jupiter is the largest planet of the solar system.", id="jupiter"),
    Document(page_content="Venus is the hottest planet, hotter than Mercury.", id="venus"),
    Document(page_content="Scurvy is caused by a lack of vitamin C.", id="scurvy"),
    Document(page_content="The Eiffel Tower is in Paris.", id="eiffel"),
]


@pytest.fixture(scope="module")
def filled_stores(minilm_path: str, tmp_path_factory: pytest.TempPathFactory) -> Generator[dict]:
    """One store per layout holding :data:`RETRIEVER_DOCUMENTS`, shared by the retriever suite's tests."""
    root = tmp_path_factory.mktemp("retriever")
    stores = {layout: _empty_store(layout, root / layout) for layout in LAYOUTS}
    try:
        for store in stores.values():
            store.add_documents(RETRIEVER_DOCUMENTS)
        yield stores
    finally:
        for store in stores.values():
            store.client.close()


@pytest.mark.integration
@pytest.mark.anyio
class TestRetrieverIntegration(RetrieversIntegrationTests):
    """``store.as_retriever(search_kwargs={"k": k})``, as a user builds it; per call, ``invoke(query, k=1)``."""

    @pytest.fixture(autouse=True, params=LAYOUTS)
    def _store(self, request: pytest.FixtureRequest, filled_stores: dict) -> None:
        self.store: DualEncoderQdrantVectorStore = filled_stores[request.param]

    @property
    def retriever_constructor(self) -> Callable[..., VectorStoreRetriever]:  # type: ignore[override]
        def as_retriever(k: int = 4) -> VectorStoreRetriever:
            return self.store.as_retriever(search_kwargs={"k": k})

        return as_retriever

    @property
    def retriever_query_example(self) -> str:
        return "which planet is red?"


# --- What the suites take for granted -----------------------------------------------------------------


@pytest.mark.integration
def test_the_suites_orderings_hold_because_minilm_reads_queries_as_documents(
    empty_store: DualEncoderQdrantVectorStore,
) -> None:
    texts = ["foo", "bar", "baz", "new foo"]
    embeddings = empty_store.embeddings
    documents = np.array(embeddings.embed_documents(texts))
    queries = np.array([embeddings.embed_query(text) for text in texts])
    np.testing.assert_allclose(queries, documents, rtol=0, atol=1e-6)  # the same reading on both sides
    empty_store.add_texts(texts, ids=texts)
    for query, query_vector in zip(texts, queries, strict=True):
        found = empty_store.similarity_search_with_score(query, k=len(texts))
        cosines = documents @ query_vector / np.linalg.norm(documents, axis=1) / np.linalg.norm(query_vector)
        expected = sorted(zip(texts, cosines, strict=True), key=lambda pair: -pair[1])
        assert [d.id for d, _ in found] == [text for text, _ in expected]
        np.testing.assert_allclose([s for _, s in found], [c for _, c in expected], rtol=0, atol=1e-5)
        assert found[0][0].page_content == query and found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert found[1][1] < 0.99  # the next text is not a tie


# --- Ids: qdrant-haystack's and langchain-qdrant's ------------------------------------------------------

A_UUID = uuid.UUID("0f0f0f0f-1111-4222-8333-444455556666")
IDS = ["doc-a", "7", 8, A_UUID.hex, str(A_UUID).upper().replace("0F0F0F0F", "1F0F0F0F"), "007", 2**64]


def test_point_ids_in_langchains_layout_keep_what_qdrant_takes() -> None:
    expected = [
        convert_id("doc-a"),  # qdrant-haystack's uuid5, as in the Haystack layout
        7,
        8,
        str(A_UUID),
        "1f0f0f0f-1111-4222-8333-444455556666",
        convert_id("007"),  # not the integer 7: "007" and "7" are different documents
        convert_id(str(2**64)),  # beyond Qdrant's unsigned 64-bit integers
    ]
    assert [point_id(i, haystack_layout=False) for i in IDS] == expected
    assert [point_id(i, haystack_layout=True) for i in IDS] == [convert_id(str(i)) for i in IDS]


def _hyphenated(point: str | int) -> str | int:
    return str(uuid.UUID(point)) if isinstance(point, str) else point


def test_any_id_round_trips_in_both_layouts(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    texts = [f"text {i}" for i in range(len(IDS))]
    metadatas = [{"id": 100 + i, "_id": "the caller's own"} for i in range(len(IDS))]
    for payload_keys in ({}, HAYSTACK_LAYOUT):
        store = DualEncoderQdrantVectorStore.from_texts(
            texts, embeddings, metadatas=metadatas, ids=IDS, location=":memory:", **payload_keys
        )
        haystack = bool(payload_keys)
        records, _ = store.client.scroll(store.collection_name, limit=100, with_payload=True)
        by_point = {record.id: record.payload for record in records}
        assert set(by_point) == {_hyphenated(point_id(i, haystack_layout=haystack)) for i in IDS}
        assert sorted(payload["id"] for payload in by_point.values()) == sorted(str(i) for i in IDS)
        found = store.get_by_ids(IDS)
        assert sorted((d.id, d.page_content) for d in found) == sorted(
            (str(i), text) for i, text in zip(IDS, texts, strict=True)
        )
        assert all(d.metadata == metadatas[texts.index(d.page_content)] for d in found)  # as written
        searched = store.similarity_search("text", k=len(IDS))
        assert sorted((d.id, d.page_content) for d in searched) == sorted((d.id, d.page_content) for d in found)
        assert all(d.metadata == metadatas[texts.index(d.page_content)] for d in searched)
        store.delete(["doc-a", 8])
        assert sorted(d.id for d in store.get_by_ids(IDS)) == sorted(str(i) for i in IDS if i not in ("doc-a", 8))
    with pytest.raises(ValueError, match="'id' holds document ids"):
        DualEncoderQdrantVectorStore(store.client, store.collection_name, embeddings, content_payload_key="id")


def test_haystack_finds_langchain_written_documents_by_their_ids(tiny_bert: str, tmp_path: Path) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    path = str(tmp_path / "qdrant")
    ids = ["doc-a", "7", str(A_UUID)]
    documents = [Document(page_content=f"text {i}", metadata={"n": i}, id=i) for i in ids]
    DualEncoderQdrantVectorStore.from_documents(
        documents, embeddings, path=path, collection_name="docs", **HAYSTACK_LAYOUT
    ).client.close()
    store = QdrantDocumentStore(path=path, index="docs", embedding_dim=32, progress_bar=False)
    try:  # qdrant-haystack's own id conversion is the reference
        found = store.get_documents_by_id(ids)
        assert sorted((d.id, d.content, d.meta) for d in found) == sorted((i, f"text {i}", {"n": i}) for i in ids)
    finally:
        store.close()


def test_langchain_qdrant_collections_keep_their_point_ids(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    # Written by langchain-qdrant itself: its default uuid4().hex ids and an integer id.
    theirs = QdrantVectorStore.from_texts(
        ["alpha", "beta", "gamma"], embeddings, metadatas=[{"n": 1}, {"n": 2}, {"n": 3}], location=":memory:"
    )
    theirs.add_texts(["delta"], metadatas=[{"n": 4}], ids=[42])
    [alpha] = [d for d in theirs.similarity_search("alpha", k=4) if d.page_content == "alpha"]
    alpha_id = alpha.metadata["_id"]  # langchain-qdrant's id of it: the point id
    ours = DualEncoderQdrantVectorStore(theirs.client, theirs.collection_name, embeddings)
    for alpha_and_delta in ([alpha_id, 42], [uuid.UUID(alpha_id).hex, "42"]):
        found = ours.get_by_ids(alpha_and_delta)
        assert sorted((d.id, d.page_content, d.metadata) for d in found) == sorted(
            [("42", "delta", {"n": 4}), (alpha_id, "alpha", {"n": 1})]
        )
    searched = ours.similarity_search("alpha", k=4)
    ids_by_text = {d.page_content: d.id for d in searched}
    assert (ids_by_text["alpha"], ids_by_text["delta"]) == (alpha_id, "42")
    assert sorted(ours.get_by_ids(list(ids_by_text.values())), key=repr) == sorted(searched, key=repr)
    ours.delete(["42", uuid.UUID(alpha_id).hex])
    assert sorted(d.page_content for d in theirs.similarity_search("alpha", k=4)) == ["beta", "gamma"]
    # And langchain-qdrant reads what this store writes (the payload's "id" is one key more).
    ours.add_texts(["epsilon"], metadatas=[{"n": 5}], ids=["not-a-uuid"])
    [epsilon] = [d for d in theirs.similarity_search("epsilon", k=3) if d.page_content == "epsilon"]
    assert epsilon.metadata == {
        "n": 5,
        "_id": str(uuid.UUID(convert_id("not-a-uuid"))),
        "_collection_name": theirs.collection_name,
    }
