"""Issue 27: pseudo-relevance feedback queries are what their definition says, on a small planted collection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.dataclasses import SparseEmbedding

from simlm_haystack.errors import SettingsError
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.feedback import PseudoRelevanceFeedback, expanded_sparse, rocchio


def _unit(vector: list[float]) -> list[float]:
    array = np.asarray(vector, dtype=np.float64)
    return (array / np.linalg.norm(array)).tolist()


def _planted(tmp_path: Path) -> EdgeDocumentStore:
    # a and b answer the query (term 1, dense near e0); c shares their other terms (7, 8) and their dense
    # direction (e1) but not the query's term or vector, so only feedback can bring it up.
    documents = [
        Document(id="a", embedding=_unit([1, 0.6, 0, 0]), sparse_embedding=SparseEmbedding([1, 7, 8], [1.0, 1.5, 0.5])),
        Document(id="b", embedding=_unit([1, 0.5, 0, 0]), sparse_embedding=SparseEmbedding([1, 7, 9], [1.0, 1.0, 0.2])),
        Document(id="c", embedding=_unit([0, 1, 0, 0]), sparse_embedding=SparseEmbedding([7, 8], [1.0, 1.0])),
        Document(id="d", embedding=_unit([0, 0, 1, 0]), sparse_embedding=SparseEmbedding([2, 3], [1.0, 1.0])),
        Document(id="e", embedding=_unit([0.5, 0, 0, 1]), sparse_embedding=SparseEmbedding([4], [1.0])),
    ]
    store = EdgeDocumentStore(path=str(tmp_path), index="docs", embedding_dim=4, use_sparse_embeddings=True)
    store.write_documents(documents)
    return store


def test_feedback_queries_follow_their_definitions_and_bring_up_the_planted_document(tmp_path: Path) -> None:
    store = _planted(tmp_path)
    dense, sparse = _unit([1, 0, 0, 0.1]), SparseEmbedding([1], [1.0])
    first = store.hybrid_retrieval(dense, sparse, top_k=2, return_embedding=True)
    assert {d.id for d in first} == {"a", "b"}
    feedback = PseudoRelevanceFeedback(documents=2, beta=1.0, terms=1, lam=0.5)
    queries = feedback.moved({"query_embedding": dense, "query_sparse_embedding": sparse}, first)
    moved, grown = queries["query_embedding"], queries["query_sparse_embedding"]
    # Rocchio: q + beta * mean(d), at the query's length (here 1).
    centroid = np.mean([d.embedding for d in first], axis=0)
    np.testing.assert_allclose(moved, _unit((np.asarray(dense) + centroid).tolist()), rtol=1e-6)
    # RM3-style: term 7 has the highest summed weight (1.5 + 1.0) of the new terms; weight lam * w / max(w) = lam.
    assert grown.indices == [1, 7] and grown.values == pytest.approx([1.0, 0.5])
    # Searched: c is found by the expanded BM25 query and not by the original; dense moves towards it.
    assert "c" not in {d.id for d in store.sparse_retrieval(sparse, top_k=5)}
    assert "c" in {d.id for d in store.sparse_retrieval(grown, top_k=5)}
    scores = {
        name: {d.id: d.score for d in store.embedding_retrieval(q, top_k=5)} for name, q in (("q", dense), ("r", moved))
    }
    assert scores["r"]["c"] > scores["q"]["c"] and scores["r"]["c"] > scores["r"]["d"]
    store.close()


def test_feedback_edge_cases_and_settings() -> None:
    query = SparseEmbedding([1, 5], [1.0, 1.0])
    documents = [
        Document(id="x", embedding=[0.0, 2.0], sparse_embedding=SparseEmbedding([1, 2, 3], [9.0, 2.0, 2.0])),
        Document(id="y", sparse_embedding=SparseEmbedding([3, 4], [1.0, 0.5])),
    ]
    # New terms by summed weight (3: 3.0, 2: 2.0, 4: 0.5); the query's own term 1 is never re-weighted.
    grown = expanded_sparse(query, documents, terms=2, lam=0.3)
    assert grown.indices == [1, 2, 3, 5] and grown.values == pytest.approx([1.0, 0.3 * 2 / 3, 0.3, 1.0])
    assert expanded_sparse(query, documents, terms=0, lam=0.3) is query
    assert rocchio([1.0, 0.0], documents, beta=0.0) == [1.0, 0.0]
    assert rocchio([1.0, 0.0], documents[1:], beta=1.0) == [1.0, 0.0]  # no embedding: nothing to add
    np.testing.assert_allclose(rocchio([1.0, 0.0], documents, beta=0.5), _unit([1.0, 1.0]))
    np.testing.assert_allclose(rocchio([3.0, 0.0], documents, beta=1.5), 3 * np.asarray(_unit([1.0, 1.0])))  # dot
    assert PseudoRelevanceFeedback.of(PseudoRelevanceFeedback(beta=1.0).to_dict()) == PseudoRelevanceFeedback(beta=1.0)
    for bad in ({"documents": 0}, {"terms": -1}, {"beta": -0.1}, {"lam": float("nan")}):
        with pytest.raises(SettingsError):
            PseudoRelevanceFeedback(**bad)


@pytest.mark.parametrize("retrieval", ["dense", "hybrid"])
def test_retriever_with_feedback_searches_with_moved_queries(tiny_bert: str, tmp_path: Path, retrieval: str) -> None:
    from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderRetriever, edge_document_store, index_documents

    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    hybrid = retrieval == "hybrid"
    store = edge_document_store(embedder, path=str(tmp_path), index="docs", use_sparse_embeddings=hybrid)
    words = ["scurvy vitamin", "vitamin citrus", "citrus sailors", "sailors ships", "ships ports", "ports trade"]
    documents = [Document(id=str(i), content=f"{text} {i}", meta={"title": f"T{i}"}) for i, text in enumerate(words)]
    index_documents(documents, embedder, store, retrieval=retrieval, progress_bar=False)
    feedback = PseudoRelevanceFeedback(documents=2, beta=1.0, terms=2 if hybrid else 0, lam=0.5)
    retriever = DualEncoderRetriever(
        model=tiny_bert, recipe="simlm", document_store=store, retrieval=retrieval, top_k=4, feedback=feedback
    )
    plain = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store, retrieval=retrieval, top_k=4)
    # By hand: the first search's two best, with their vectors, move the query vectors for the second search.
    vectors = plain._query_vectors("vitamin scurvy")
    first = plain.retriever.run(**vectors, top_k=2, return_embedding=True)["documents"]
    moved = feedback.moved(vectors, first)
    assert moved["query_embedding"] != vectors["query_embedding"]
    if hybrid:
        assert len(moved["query_sparse_embedding"].indices) > len(vectors["query_sparse_embedding"].indices)
    expected = plain.retriever.run(**moved, top_k=4)["documents"]
    found = retriever.run(query="vitamin scurvy")["documents"]
    assert [(d.id, d.score) for d in found] == [(d.id, d.score) for d in expected]
    # Serialised with its feedback, and the same search after a round trip (the folder reopened).
    data = retriever.to_dict()
    store.close()
    again = DualEncoderRetriever.from_dict(data)
    assert again.feedback == feedback
    assert [(d.id, d.score) for d in again.run(query="vitamin scurvy")["documents"]] == [(d.id, d.score) for d in found]
    again.close()
