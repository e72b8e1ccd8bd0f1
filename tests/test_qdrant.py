"""Qdrant wiring: stores sized and distanced from the recipe, the pipelines, the drop-in retriever."""

from __future__ import annotations

import os

import numpy as np
import pytest
from haystack import Document, Pipeline

from simlm_haystack import (
    CollectionMismatchError,
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    build_query_pipeline,
    index_documents,
    qdrant_document_store,
)
from simlm_haystack.corpus import read_documents

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def test_store_takes_size_from_the_model_and_distance_from_the_recipe(tiny_bert: str, tiny_distilbert: str) -> None:
    simlm_store = qdrant_document_store(DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm"))
    assert (simlm_store.embedding_dim, simlm_store.similarity) == (32, "cosine")
    tas_b_store = qdrant_document_store(DualEncoderTextEmbedder(model=tiny_distilbert, recipe="tas-b"))
    assert (tas_b_store.embedding_dim, tas_b_store.similarity) == (32, "dot_product")
    assert qdrant_document_store("simlm", embedding_dim=768).similarity == "cosine"
    with pytest.raises(ValueError, match="embedding_dim is required"):
        qdrant_document_store("tas-b")
    with pytest.raises(ValueError, match="only one of"):
        qdrant_document_store("tas-b", embedding_dim=8, location=":memory:", path="x")


def test_existing_collection_with_other_size_or_distance_is_refused_before_writing(tiny_bert: str, tmp_path) -> None:
    path = str(tmp_path / "qdrant")
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder, path=path, index="docs")
    index_documents([Document(id="a", content="x")], embedder, store, progress_bar=False)
    store.close()
    with pytest.raises(CollectionMismatchError, match=r"384-d.*vector size '32'"):
        qdrant_document_store("simlm", embedding_dim=384, path=path, index="docs")
    with pytest.raises(CollectionMismatchError, match=r"dot_product.*COSINE"):
        qdrant_document_store("tas-b", embedding_dim=32, path=path, index="docs")
    reopened = qdrant_document_store(embedder, path=path, index="docs")
    assert reopened.count_documents() == 1  # nothing was lost by the refusals


def test_reindexing_the_same_ids_overwrites_instead_of_duplicating(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder)
    documents = [Document(id=str(i), content=f"text {i}") for i in range(10)]
    assert index_documents(documents, embedder, store, chunk_size=3, progress_bar=False) == 10
    index_documents(documents[:5], embedder, store, chunk_size=3, progress_bar=False)
    assert store.count_documents() == 10


@pytest.fixture(scope="module")
def scifact_index(minilm_path: str, sample_dir) -> tuple:
    embedder = DualEncoderDocumentEmbedder(model=MINILM, progress_bar=False, batch_size=64)
    store = qdrant_document_store(embedder, index="scifact")
    documents = list(read_documents(sample_dir / "corpus.jsonl"))
    index_documents(documents, embedder, store, progress_bar=False)
    return embedder, store, documents


@pytest.mark.integration
def test_pipeline_top10_equals_exact_search_over_the_same_vectors(scifact_index, sample_dir) -> None:
    from simlm_haystack.corpus import read_jsonl

    embedder, store, documents = scifact_index
    assert store.count_documents() == len(documents) == 300
    # The vectors as Qdrant holds them (get_documents_by_id returns them): exact search over these.
    stored = store.get_documents_by_id([d.id for d in documents])
    assert {d.id for d in stored} == {d.id for d in documents}
    matrix = np.array([d.embedding for d in stored])
    ids = [d.id for d in stored]
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)
    fresh = embedder.run(documents[:5])["documents"]  # what was stored is what the embedder gives
    np.testing.assert_allclose([d.embedding for d in fresh], matrix[:5], rtol=1e-5, atol=1e-6)

    text_embedder = DualEncoderTextEmbedder(model=MINILM)
    pipeline = build_query_pipeline(text_embedder, store, top_k=10)
    queries = [record["text"] for _, record in read_jsonl(sample_dir / "queries.jsonl")][:20]
    for query in queries:
        retrieved = pipeline.run({"retriever": {"query": query}})["retriever"]["documents"]
        scores = matrix @ np.asarray(text_embedder.run(query)["embedding"])
        exact = [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
        assert [d.id for d in retrieved] == exact
        np.testing.assert_allclose([d.score for d in retrieved], np.sort(scores)[::-1][:10], rtol=1e-4, atol=1e-5)
        assert retrieved[0].meta["title"]  # titles come back with the documents


@pytest.mark.integration
def test_drop_in_retriever_in_a_pipeline_and_yaml(scifact_index) -> None:
    _, store, _ = scifact_index
    retriever = DualEncoderRetriever(model=MINILM, document_store=store, top_k=5)
    result = retriever.run(query="Vitamin D deficiency and cancer risk")
    assert len(result["documents"]) == 5
    assert result["documents"][0].score >= result["documents"][-1].score
    assert len(retriever.run(query="x", top_k=2)["documents"]) == 2

    data = retriever.to_dict()
    assert data["type"] == "simlm_haystack.components.retriever.DualEncoderRetriever"
    assert data["init_parameters"]["document_store"]["init_parameters"]["similarity"] == "cosine"
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    restored = Pipeline.loads(pipeline.dumps()).get_component("retriever")
    assert restored.to_dict() == data


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server at QDRANT_URL")
def test_qdrant_server_round_trip(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(
        embedder, url=os.environ["QDRANT_URL"], index="simlm_haystack_test", recreate_index=True
    )
    index_documents([Document(id=str(i), content=f"text {i}") for i in range(5)], embedder, store)
    assert store.count_documents() == 5
    result = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store, top_k=3).run(query="text 1")
    assert len(result["documents"]) == 3
