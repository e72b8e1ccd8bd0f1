"""LangChain's SPARSE and HYBRID modes: BM25 beside the dual encoder, through langchain-qdrant's own hybrid query.

Every search is compared with a computation by hand from the encoders' own vectors: the dense side's cosines
(numpy), BM25 as Qdrant's IDF modifier makes it (``idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`` times the
document's term-frequency weight), and langchain-qdrant's fusion (each side's ``k`` best, reciprocal rank fusion
``1 / (position + k_rrf)`` with qdrant's ``k_rrf = 2``, position from 1). The collections are written by LangChain
(``location=":memory:"`` and ``path=``), by Haystack's hybrid indexing (qdrant-haystack with
``use_sparse_embeddings=True``) and by Qdrant Edge then pushed; the refusals are the encoder identity's.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import zlib
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import replace
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import MINILM
from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.components.writers import DocumentWriter
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from langchain_core.documents import Document
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
from qdrant_client import QdrantClient, models

from simlm_haystack import (
    CollectionMismatchError,
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    EncoderMismatchError,
)
from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder
from simlm_haystack.corpus import read_documents
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.langchain import (
    HAYSTACK_HYBRID_LAYOUT,
    BM25SparseEmbeddings,
    DualEncoderEmbeddings,
    DualEncoderQdrantVectorStore,
)
from simlm_haystack.sparse import BM25Encoder, BM25Settings, document_text
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.identity import (
    METADATA_KEY,
    CollectionCheck,
    EncoderIdentity,
)
from simlm_haystack.stores.support import store_support

HYBRID = RetrievalMode.HYBRID
SPARSE = RetrievalMode.SPARSE
#: qdrant's reciprocal rank fusion constant when the query names none (``Fusion.RRF``).
QDRANT_RRF_K = 2
K = 5


# --- The corpus and the searches by hand --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(sample_dir: Path) -> dict[str, Any]:
    """30 SciFact abstracts with their titles, each cut to its first 60 words (MiniLM encodes them several
    times here, on shared cores), and four SciFact claims as queries."""
    documents = [
        replace(document, content=" ".join(document.content.split()[:60]))
        for document in islice(read_documents(sample_dir / "corpus.jsonl"), 30)
    ]
    queries = [json.loads(line)["text"] for line in (sample_dir / "queries.jsonl").read_text().splitlines()]
    return {
        "haystack": documents,
        "langchain": [Document(page_content=d.content, metadata=d.meta, id=d.id) for d in documents],
        "ids": [d.id for d in documents],
        "texts": [d.content for d in documents],
        "titles": [d.meta.get("title") for d in documents],
        # Claims that share terms with 6 to 20 of these abstracts, none tied in BM25 score
        "queries": [queries[i] for i in (3, 7, 9, 11)],
    }


@pytest.fixture(scope="module")
def minilm(minilm_path: str) -> DualEncoderEmbeddings:
    """all-MiniLM-L6-v2: a real model, whose cosines rank the abstracts without near-ties (a tiny random
    checkpoint's cosines all lie within 1e-4 of each other)."""
    return DualEncoderEmbeddings(model=MINILM)


def subset(corpus: dict, count: int) -> dict[str, Any]:
    """The corpus's first ``count`` documents, with its queries."""
    return {key: values if key == "queries" else values[:count] for key, values in corpus.items()}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Generator[None]:
    """MiniLM encodes small batches here; one torch thread is faster than two on the two shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _ranked(scores: dict[str, float], limit: int) -> list[str]:
    """The ``limit`` best ids, refusing a tie that would make the order (and so the fusion) ambiguous."""
    ordered = sorted(scores, key=lambda i: -scores[i])
    values = [scores[i] for i in ordered[: limit + 1]]
    assert all(a - b > 1e-6 for a, b in pairwise(values)), f"tied scores: {values}"
    return ordered[:limit]


_document_vectors: dict[tuple, np.ndarray] = {}


def document_vectors(embeddings: DualEncoderEmbeddings, corpus: dict) -> np.ndarray:
    """The corpus embedded by ``embeddings``, each document with its title (once per model and corpus)."""
    key = (embeddings.model, embeddings.recipe.name, tuple(corpus["ids"]))
    if key not in _document_vectors:
        _document_vectors[key] = np.array(embeddings.embed_documents(corpus["texts"], corpus["titles"]))
    return _document_vectors[key]


def dense_scores(embeddings: DualEncoderEmbeddings, corpus: dict, query: str) -> dict[str, float]:
    """Cosine of the query with every document, each read with its title."""
    documents = document_vectors(embeddings, corpus)
    vector = np.array(embeddings.embed_query(query))
    cosines = documents @ vector / np.linalg.norm(documents, axis=1) / np.linalg.norm(vector)
    return dict(zip(corpus["ids"], cosines.tolist(), strict=True))


def bm25_scores(corpus: dict, query: str, settings: BM25Settings | None = None) -> dict[str, float]:
    """BM25 of the documents that share a term with the query: the encoder's term-frequency weights times
    the IDF over the documents with a sparse vector, as Qdrant's IDF modifier computes it."""
    encoder = BM25Encoder(settings)
    documents = [
        dict(zip(v.indices, v.values, strict=True)) for v in encoder.encode_documents(corpus["texts"], corpus["titles"])
    ]
    count = sum(1 for d in documents if d)
    frequency = Counter(term for d in documents for term in d)
    terms = encoder.encode_query(query).indices
    idf = {t: math.log(1 + (count - frequency[t] + 0.5) / (frequency[t] + 0.5)) for t in terms}
    return {
        document_id: sum(idf[t] * weights[t] for t in terms if t in weights)
        for document_id, weights in zip(corpus["ids"], documents, strict=True)
        if any(t in weights for t in terms)
    }


def fused(rankings: Sequence[list[str]], rrf_k: int = QDRANT_RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion of the rankings: every candidate with its score."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, document_id in enumerate(ranking, start=1):
            scores[document_id] = scores.get(document_id, 0.0) + 1.0 / (position + rrf_k - 1)
    return scores


def expected_hybrid(
    embeddings: DualEncoderEmbeddings, corpus: dict, query: str, k: int, rrf_k: int = QDRANT_RRF_K
) -> dict[str, float]:
    """langchain-qdrant's hybrid search by hand: each side's ``k`` best, fused."""
    dense = _ranked(dense_scores(embeddings, corpus, query), k)
    sparse = _ranked(bm25_scores(corpus, query), k)
    return fused([dense, sparse], rrf_k)


def assert_top_k(found: list[tuple[str, float]], expected: dict[str, float], k: int, *, rtol: float = 1e-9) -> None:
    """``found`` are the ``k`` best of ``expected`` with their scores (ids tied in score may come in either order)."""
    assert len(found) == min(k, len(expected))
    for document_id, score in found:
        assert score == pytest.approx(expected[document_id], rel=rtol, abs=1e-7), document_id
    best = sorted(expected.values(), reverse=True)[:k]
    np.testing.assert_allclose([score for _, score in found], best, rtol=rtol, atol=1e-7)


def search(store: DualEncoderQdrantVectorStore, query: str, k: int = K, **kwargs: Any) -> list[tuple[str, float]]:
    return [(str(d.id), s) for d, s in store.similarity_search_with_score(query, k=k, **kwargs)]


def stored_points(client: QdrantClient, collection: str) -> dict[str, Any]:
    """Every point's vectors by the document id in its payload."""
    records, _ = client.scroll(collection, limit=1000, with_vectors=True, with_payload=True)
    return {record.payload["id"]: record.vector for record in records}


class _ForwardSpy:
    """Counts the dense encoder's forward passes (every backend goes through ``_embed_batch``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = DualEncoder._embed_batch

        def spy(encoder: DualEncoder, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(encoder, *args, **kwargs)

        monkeypatch.setattr(DualEncoder, "_embed_batch", spy)


# --- LangChain writes and searches: location=":memory:" and path= --------------------------------------------------


def _hybrid_store(minilm: DualEncoderEmbeddings, corpus: dict, **options: Any) -> DualEncoderQdrantVectorStore:
    return DualEncoderQdrantVectorStore.from_documents(
        corpus["langchain"],
        minilm,
        collection_name="docs",
        retrieval_mode=HYBRID,
        sparse_embedding=BM25SparseEmbeddings(),
        batch_size=16,
        **options,
    )


@pytest.mark.parametrize("where", ["memory", "path"])
def test_hybrid_search_is_langchain_qdrants_fusion_of_the_dual_encoder_and_bm25(
    where: str, minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path
) -> None:
    client_options = {"path": str(tmp_path / "qdrant")} if where == "path" else {"location": ":memory:"}
    store = _hybrid_store(minilm, corpus, **client_options)
    params = store.client.get_collection("docs").config.params
    assert (params.vectors.size, params.vectors.distance) == (384, models.Distance.COSINE)  # unnamed, as Haystack's
    assert params.sparse_vectors["langchain-sparse"].modifier == models.Modifier.IDF  # langchain-qdrant sets none
    # Both sides got each document's title: SimLM's (title, text) pair, BM25's title + " " + text.
    points = stored_points(store.client, "docs")
    dense = document_vectors(minilm, corpus)
    sparse = BM25Encoder().encode_documents(corpus["texts"], corpus["titles"])
    for document_id, dense_vector, sparse_vector in zip(corpus["ids"], dense, sparse, strict=True):
        np.testing.assert_allclose(points[document_id][""], dense_vector, rtol=0, atol=1e-6)
        stored = points[document_id]["langchain-sparse"]
        assert list(stored.indices) == list(sparse_vector.indices)
        np.testing.assert_allclose(stored.values, sparse_vector.values, rtol=1e-6)
    assert BM25Encoder().encode_documents(corpus["texts"][:1]) != sparse[:1]  # the title changed the vector

    for query in corpus["queries"]:
        assert_top_k(search(store, query), expected_hybrid(minilm, corpus, query, K), K)
    query = corpus["queries"][0]
    # langchain-qdrant's hybrid_fusion: here RRF with another k; the retriever searches the same way.
    other_k = models.RrfQuery(rrf=models.Rrf(k=60))
    assert_top_k(search(store, query, hybrid_fusion=other_k), expected_hybrid(minilm, corpus, query, K, 60), K)
    retrieved = store.as_retriever(search_kwargs={"k": K}).invoke(query)
    assert [d.id for d in retrieved] == [i for i, _ in search(store, query)]
    assert [d.page_content for d in retrieved] == [corpus["texts"][corpus["ids"].index(d.id)] for d in retrieved]
    if where == "path":
        before = search(store, query)
        store.client.close()
        reopened = DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", minilm, HYBRID, sparse_embedding=BM25SparseEmbeddings(), **client_options
        )
        assert search(reopened, query) == before
        reopened.client.close()


def test_sparse_mode_is_bm25_and_needs_no_dense_model(
    minilm: DualEncoderEmbeddings, corpus: dict, tiny_bert: str
) -> None:
    store = DualEncoderQdrantVectorStore.from_documents(
        corpus["langchain"], None, location=":memory:", retrieval_mode=SPARSE, sparse_embedding=BM25SparseEmbeddings()
    )
    params = store.client.get_collection(store.collection_name).config.params
    assert params.vectors == {} and params.sparse_vectors["langchain-sparse"].modifier == models.Modifier.IDF
    for query in corpus["queries"]:
        assert_top_k(search(store, query), bm25_scores(corpus, query), K, rtol=1e-5)
    # A dense model given to a SPARSE store is not loaded; the same collection searched through it.
    unloaded = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", batch_size=7)
    again = DualEncoderQdrantVectorStore(
        store.client, store.collection_name, unloaded, retrieval_mode="sparse", sparse_embedding=BM25SparseEmbeddings()
    )
    assert search(again, corpus["queries"][0]) == search(store, corpus["queries"][0])
    assert unloaded.encoder is None
    # A SPARSE reader of a hybrid collection searches its sparse vector alone.
    small = subset(corpus, 8)
    hybrid = _hybrid_store(minilm, small, location=":memory:")
    sparse_reader = DualEncoderQdrantVectorStore(
        hybrid.client, "docs", retrieval_mode=SPARSE, sparse_embedding=BM25SparseEmbeddings()
    )
    for query in corpus["queries"]:
        assert_top_k(search(sparse_reader, query), bm25_scores(small, query), K, rtol=1e-5)


def test_each_mode_asks_for_its_embeddings(minilm: DualEncoderEmbeddings) -> None:
    client = QdrantClient(location=":memory:")
    client.create_collection("docs", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    with pytest.raises(ValueError, match="only used in the SPARSE and HYBRID retrieval modes"):
        DualEncoderQdrantVectorStore(client, "docs", minilm, sparse_embedding=BM25SparseEmbeddings())
    with pytest.raises(TypeError, match="needs DualEncoderEmbeddings, not NoneType, in HYBRID mode"):
        DualEncoderQdrantVectorStore(
            client, "docs", None, retrieval_mode=HYBRID, sparse_embedding=BM25SparseEmbeddings()
        )
    with pytest.raises(TypeError, match=r"retrieval_mode=SPARSE needs sparse_embedding=.*not DualEncoderEmbeddings"):
        DualEncoderQdrantVectorStore(client, "docs", retrieval_mode=SPARSE, sparse_embedding=minilm)
    with pytest.raises(ValueError, match="'nope' is not a valid RetrievalMode"):
        DualEncoderQdrantVectorStore(client, "docs", minilm, retrieval_mode="nope")


class WordCounts(SparseEmbeddings):
    """A sparse encoder that is not BM25: each lowercased word's count, under its CRC32."""

    def _vector(self, text: str) -> SparseVector:
        counts = Counter(zlib.crc32(word.encode()) for word in text.lower().split())
        indices = sorted(counts)
        return SparseVector(indices=indices, values=[float(counts[i]) for i in indices])

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> SparseVector:
        return self._vector(text)


def test_other_sparse_embeddings_read_the_title_and_are_recorded_by_their_class(
    minilm: DualEncoderEmbeddings, corpus: dict
) -> None:
    documents = corpus["langchain"][:6]
    store = DualEncoderQdrantVectorStore.from_documents(
        documents,
        minilm,
        location=":memory:",
        retrieval_mode=HYBRID,
        sparse_embedding=WordCounts(),
        sparse_vector_params={"modifier": None},  # counts, not BM25: no IDF, as asked
    )
    config = store.client.get_collection(store.collection_name).config
    assert config.params.sparse_vectors["langchain-sparse"].modifier is None
    points = stored_points(store.client, store.collection_name)
    for document in documents:
        expected = WordCounts().embed_query(document_text(document.page_content, document.metadata["title"]))
        stored = points[document.id]["langchain-sparse"]
        assert (stored.indices, stored.values) == (expected.indices, expected.values)
    assert config.metadata[METADATA_KEY]["sparse"] == {"embeddings": f"{__name__}.WordCounts"}
    with pytest.raises(EncoderMismatchError, match="sparse side"):
        DualEncoderQdrantVectorStore(
            store.client, store.collection_name, minilm, retrieval_mode=HYBRID, sparse_embedding=BM25SparseEmbeddings()
        )
    default = DualEncoderQdrantVectorStore.from_texts(
        ["a text"], minilm, location=":memory:", retrieval_mode=HYBRID, sparse_embedding=WordCounts()
    )
    assert (
        default.client.get_collection(default.collection_name).config.params.sparse_vectors["langchain-sparse"].modifier
        == models.Modifier.IDF
    )


def test_bm25_is_refused_a_sparse_vector_without_idf(
    minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path
) -> None:
    path = str(tmp_path / "qdrant")
    with pytest.raises(ValueError, match="BM25SparseEmbeddings needs the sparse vector's IDF modifier"):
        DualEncoderQdrantVectorStore.from_texts(
            ["a text"],
            minilm,
            path=path,
            collection_name="docs",
            retrieval_mode=HYBRID,
            sparse_embedding=BM25SparseEmbeddings(),
            sparse_vector_params={"modifier": None},
        )
    client = QdrantClient(path=path)  # the refusal closed its client
    assert not client.collection_exists("docs")  # refused before it was created
    client.close()
    # langchain-qdrant's own hybrid collection: no IDF modifier unless asked for; texts without titles.
    six = {**subset(corpus, 6), "titles": [None] * 6}
    theirs = QdrantVectorStore.from_texts(
        six["texts"],
        minilm,
        location=":memory:",
        collection_name="docs",
        retrieval_mode=HYBRID,
        sparse_embedding=BM25SparseEmbeddings(),
    )
    client = theirs.client
    assert client.get_collection("docs").config.params.sparse_vectors["langchain-sparse"].modifier is None
    with pytest.raises(CollectionMismatchError, match=r"'langchain-sparse'.*has no IDF modifier") as refusal:
        DualEncoderQdrantVectorStore(
            client, "docs", minilm, retrieval_mode=HYBRID, sparse_embedding=BM25SparseEmbeddings()
        )
    assert "client.update_collection('docs', sparse_vectors_config=" in str(refusal.value)
    # The repair the message names works, and the points langchain-qdrant wrote are then scored as BM25.
    client.update_collection(
        "docs", sparse_vectors_config={"langchain-sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)}
    )
    ours = DualEncoderQdrantVectorStore(client, "docs", retrieval_mode=SPARSE, sparse_embedding=BM25SparseEmbeddings())
    id_of_text = dict(zip(six["texts"], six["ids"], strict=True))
    for query in corpus["queries"][:2]:
        found = [(id_of_text[d.page_content], score) for d, score in ours.similarity_search_with_score(query, k=K)]
        assert_top_k(found, bm25_scores(six, query), K, rtol=1e-5)


# --- The encoder identity: writers on both sides, readers on the sides they search --------------------------------


def test_writers_match_both_sides_and_readers_the_sides_they_search(
    minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    path = str(tmp_path / "qdrant")
    small = subset(corpus, 8)
    _hybrid_store(minilm, small, path=path).client.close()  # "docs": hybrid
    DualEncoderQdrantVectorStore.from_documents(
        small["langchain"], minilm, path=path, collection_name="dense"
    ).client.close()
    spy = _ForwardSpy(monkeypatch)
    bm25 = BM25SparseEmbeddings

    # Writers must match on both sides: a dense-only writer would leave hybrid points without a sparse vector.
    with pytest.raises(EncoderMismatchError, match=r"'docs'.*cannot be written to.*the BM25 sparse side \(.*vs none\)"):
        DualEncoderQdrantVectorStore.from_texts(["new"], minilm, path=path, collection_name="docs")
    with pytest.raises(EncoderMismatchError, match=r"cannot be written to.*the dense side"):
        DualEncoderQdrantVectorStore.from_texts(
            ["new"], None, path=path, collection_name="docs", retrieval_mode=SPARSE, sparse_embedding=bm25()
        )
    with pytest.raises(EncoderMismatchError, match=r"the BM25 sparse side \(k=1.2 vs 0.9\)"):
        DualEncoderQdrantVectorStore.from_texts(
            ["new"], minilm, path=path, collection_name="docs", retrieval_mode=HYBRID, sparse_embedding=bm25(k=0.9)
        )
    # A hybrid writer of a dense-only collection: it has no sparse vector to write (a writer's vectors are
    # checked before the record, which an empty collection would take).
    with pytest.raises(CollectionMismatchError, match=r"'dense' has no sparse vector named 'langchain-sparse'"):
        DualEncoderQdrantVectorStore.from_texts(
            ["new"], minilm, path=path, collection_name="dense", retrieval_mode=HYBRID, sparse_embedding=bm25()
        )
    # Readers: a sparse or hybrid search of a dense-only collection is told what filled it, with or without a
    # dense model; another BM25 reading of a hybrid one is refused.
    for mode, embedding in ((HYBRID, minilm), (SPARSE, None)):
        with pytest.raises(EncoderMismatchError, match=r"'dense'.*cannot be searched.*BM25 sparse side \(none vs"):
            DualEncoderQdrantVectorStore.from_existing_collection(
                "dense", embedding, mode, sparse_embedding=bm25(), path=path
            )
    with pytest.raises(EncoderMismatchError, match=r"'docs'.*cannot be searched.*BM25 sparse side"):
        DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", None, SPARSE, sparse_embedding=bm25(stemmer=False), path=path
        )
    assert spy.calls == 0  # every refusal came before anything was encoded

    with caplog.at_level(logging.WARNING, logger="simlm_haystack.stores.identity"):
        forced = DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", None, SPARSE, sparse_embedding=bm25(stemmer=False), path=path, allow_other_encoder=True
        )
    assert "as allow_other_encoder=True asks" in caplog.text
    forced.client.close()

    client = QdrantClient(path=path)
    try:
        # A dense search of the hybrid collection compares the dense side only: it is the cosine ranking.
        dense_reader = DualEncoderQdrantVectorStore(client, "docs", minilm)
        query = small["queries"][2]
        cosines = dense_scores(minilm, small, query)
        assert_top_k(search(dense_reader, query), {i: cosines[i] for i in _ranked(cosines, K)}, K, rtol=1e-5)
        # ...and it checks as a writer before it writes: refused before the text is encoded.
        calls = spy.calls
        with pytest.raises(EncoderMismatchError, match="cannot be written to"):
            dense_reader.add_texts(["a dense-only point"])
        assert spy.calls == calls and client.count("docs").count == len(small["ids"])
        # The encoder that filled it writes on.
        hybrid_writer = DualEncoderQdrantVectorStore(
            client, "docs", minilm, retrieval_mode=HYBRID, sparse_embedding=bm25()
        )
        hybrid_writer.add_texts(["a hybrid point"], ids=["new"])
        assert client.count("docs").count == len(small["ids"]) + 1
        assert set(stored_points(client, "docs")["new"]) == {"", "langchain-sparse"}
    finally:
        client.close()


# --- One collection, both frameworks: Haystack's hybrid indexing and QdrantHybridRetriever --------------------------

#: qdrant-haystack's hybrid search prefetches 10 candidates a side (a Prefetch without a limit); langchain-qdrant
#: prefetches k, so the two fuse the same candidates at k = 10.
HAYSTACK_PREFETCH = 10


def _haystack_hybrid_store(path: str) -> QdrantDocumentStore:
    return QdrantDocumentStore(
        path=path,
        index="docs",
        embedding_dim=384,
        similarity="cosine",
        use_sparse_embeddings=True,
        sparse_idf=True,
        progress_bar=False,
    )


def _haystack_hybrid_search(store: QdrantDocumentStore, query: str) -> list[HaystackDocument]:
    retriever = QdrantHybridRetriever(document_store=store, top_k=HAYSTACK_PREFETCH)
    return retriever.run(
        query_embedding=DualEncoderTextEmbedder(model=MINILM).run(query)["embedding"],
        query_sparse_embedding=BM25SparseTextEmbedder().run(query)["sparse_embedding"],
    )["documents"]


def _identity(encoder: DualEncoder) -> EncoderIdentity:
    """The record of a hybrid collection of MiniLM and default BM25."""
    return EncoderIdentity.of(MINILM, encoder, sparse=BM25Settings().to_dict())


def test_haystack_hybrid_indexing_is_searched_from_langchain(
    minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path
) -> None:
    path = str(tmp_path / "qdrant")
    store = _haystack_hybrid_store(path)
    dense = DualEncoderDocumentEmbedder(model=MINILM, progress_bar=False)
    dense.warm_up()
    # The record Haystack's hybrid indexing keeps, taken by the empty collection before anything is written.
    CollectionCheck(store_support(store).collection_identity(), writes=True).run(_identity(dense.encoder))
    indexing = Pipeline()
    indexing.add_component("dense", dense)
    indexing.add_component("sparse", BM25SparseDocumentEmbedder())
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("dense.documents", "sparse.documents")
    indexing.connect("sparse.documents", "writer.documents")
    indexing.run({"dense": {"documents": corpus["haystack"]}})
    haystack_found = {q: _haystack_hybrid_search(store, q) for q in corpus["queries"]}
    store.close()

    langchain = DualEncoderQdrantVectorStore.from_existing_collection(
        "docs", minilm, HYBRID, sparse_embedding=BM25SparseEmbeddings(), path=path, **HAYSTACK_HYBRID_LAYOUT
    )
    try:
        for query in corpus["queries"]:
            expected = expected_hybrid(minilm, corpus, query, HAYSTACK_PREFETCH)
            assert_top_k([(d.id, d.score) for d in haystack_found[query]], expected, HAYSTACK_PREFETCH)
            found = langchain.similarity_search_with_score(query, k=HAYSTACK_PREFETCH)
            assert_top_k([(d.id, s) for d, s in found], expected, HAYSTACK_PREFETCH)
            by_id = {d.id: d for d in corpus["haystack"]}
            assert all((d.page_content, d.metadata) == (by_id[d.id].content, by_id[d.id].meta) for d, _ in found)
        # The Haystack side's record is the one LangChain reads: another BM25 is refused.
        with pytest.raises(EncoderMismatchError, match="cannot be searched"):
            DualEncoderQdrantVectorStore(
                langchain.client,
                "docs",
                minilm,
                retrieval_mode=HYBRID,
                sparse_embedding=BM25SparseEmbeddings(b=0.5),
                **HAYSTACK_HYBRID_LAYOUT,
            )
    finally:
        langchain.client.close()


def test_langchain_hybrid_collection_is_haystacks_hybrid_layout(
    minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path
) -> None:
    path = str(tmp_path / "qdrant")
    _hybrid_store(minilm, corpus, path=path, **HAYSTACK_HYBRID_LAYOUT).client.close()
    store = _haystack_hybrid_store(path)  # qdrant-haystack checks the collection's layout when it opens it
    try:
        params = store_support(store).client.get_collection("docs").config.params
        dense = params.vectors["text-dense"]
        assert (dense.size, dense.distance) == (384, models.Distance.COSINE)
        assert params.sparse_vectors["text-sparse"].modifier == models.Modifier.IDF
        assert store_support(store).collection_identity().identity() == _identity(minilm.load_encoder())
        by_id = {d.id: d for d in corpus["haystack"]}
        stored = store.filter_documents()
        assert sorted(d.id for d in stored) == sorted(by_id)
        assert all((d.content, d.meta) == (by_id[d.id].content, by_id[d.id].meta) for d in stored)
        for query in corpus["queries"]:
            found = _haystack_hybrid_search(store, query)
            expected = expected_hybrid(minilm, corpus, query, HAYSTACK_PREFETCH)
            assert_top_k([(d.id, d.score) for d in found], expected, HAYSTACK_PREFETCH)
            assert all(d.content == by_id[d.id].content for d in found)
    finally:
        store.close()


# --- A Qdrant Edge hybrid collection, pushed to Qdrant ----------------------------------------------------------------

EDGE_HYBRID = "use_sparse_embeddings" in inspect.signature(EdgeDocumentStore.__init__).parameters


@pytest.mark.skipif(
    not EDGE_HYBRID, reason="EdgeDocumentStore has no use_sparse_embeddings yet (branch i18-edge-hybrid)"
)
def test_edge_hybrid_collection_pushed_to_qdrant_is_searched_from_langchain(
    minilm: DualEncoderEmbeddings, corpus: dict, tmp_path: Path
) -> None:
    from simlm_haystack.stores.push import push_collection

    edge_path = str(tmp_path / "edge")
    edge = EdgeDocumentStore(
        path=edge_path, index="docs", embedding_dim=384, similarity="cosine", use_sparse_embeddings=True
    )
    dense = DualEncoderDocumentEmbedder(model=MINILM, progress_bar=False)
    dense.warm_up()
    CollectionCheck(edge.collection_identity(), writes=True).run(_identity(dense.encoder))
    documents = BM25SparseDocumentEmbedder().run(dense.run(corpus["haystack"])["documents"])["documents"]
    assert all(d.embedding is not None and d.sparse_embedding is not None for d in documents)
    edge.write_documents(documents)
    edge.close()

    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        push_collection(edge_path, "docs", client, progress_bar=False)
        params = client.get_collection("docs").config.params
        assert params.vectors["text-dense"].size == 384
        assert params.sparse_vectors["text-sparse"].modifier == models.Modifier.IDF
        store = DualEncoderQdrantVectorStore(
            client,
            "docs",
            minilm,
            retrieval_mode=HYBRID,
            sparse_embedding=BM25SparseEmbeddings(),
            **HAYSTACK_HYBRID_LAYOUT,
        )
        by_id = {d.id: d for d in corpus["haystack"]}
        for query in corpus["queries"]:
            found = store.similarity_search_with_score(query, k=K)
            assert_top_k([(d.id, s) for d, s in found], expected_hybrid(minilm, corpus, query, K), K)
            assert all((d.page_content, d.metadata) == (by_id[d.id].content, by_id[d.id].meta) for d, _ in found)
    finally:
        client.close()
