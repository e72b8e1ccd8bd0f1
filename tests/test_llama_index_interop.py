"""One collection, three frameworks (SciFact sample, MiniLM): written from LlamaIndex through the ``index`` write
path, searched from Haystack, LangChain and LlamaIndex with the same top-10 ids and scores, dense and hybrid; a
LlamaIndex ``IngestionPipeline`` + ``VectorStoreIndex`` run gives the vectors and the ranking the collection has."""

from __future__ import annotations

import importlib.util
import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from conftest import MINILM
from langchain_qdrant import RetrievalMode
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline

from simlm_haystack import DualEncoderRetriever as HaystackRetriever
from simlm_haystack import qdrant_document_store
from simlm_haystack.corpus import read_documents
from simlm_haystack.langchain import (
    HAYSTACK_HYBRID_LAYOUT,
    BM25SparseEmbeddings,
    DualEncoderEmbeddings,
    DualEncoderQdrantVectorStore,
)
from simlm_haystack.llama_index import DualEncoderEmbedding, DualEncoderRetriever, index_nodes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
#: SciFact abstracts written (MiniLM encodes each twice here, on shared cores: the collection, the pipeline).
COUNT = 50
#: Hybrid search as langchain-qdrant makes it: each side's k best, Qdrant's RRF with k=2.
HYBRID = {"retrieval": "hybrid", "fusion": "rrf", "rrf_k": 2, "prefetch_limit": 10}

Found = list[tuple[str, float]]


@pytest.fixture(scope="module")
def collection(minilm_path: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first abstracts as LlamaIndex Documents, written from LlamaIndex into a hybrid collection (local mode)."""
    documents = [
        Document(id_=d.id, text=d.content, metadata=d.meta)
        for d in islice(read_documents(sample_dir / "corpus.jsonl"), COUNT)
    ]
    embedding = DualEncoderEmbedding(model=MINILM)
    path = str(tmp_path_factory.mktemp("three") / "qdrant")
    store = qdrant_document_store(embedding, path=path, index="scifact", use_sparse_embeddings=True)
    try:
        assert index_nodes(documents, embedding, store, retrieval="hybrid") == COUNT
    finally:
        store.close()
    queries = [json.loads(line)["text"] for line in (sample_dir / "queries.jsonl").read_text().splitlines()[:3]]
    return {"path": path, "documents": documents, "embedding": embedding, "queries": queries}


def _store(collection: dict):  # a QdrantDocumentStore
    return qdrant_document_store(collection["embedding"], path=collection["path"], index="scifact")


def _haystack(collection: dict, **search: object) -> list[Found]:
    retriever = HaystackRetriever(model=MINILM, document_store=_store(collection), top_k=10, **search)
    try:
        return [[(d.id, d.score) for d in retriever.run(query=q)["documents"]] for q in collection["queries"]]
    finally:
        retriever.close()


def _llama_index(collection: dict, **search: object) -> list[Found]:
    retriever = DualEncoderRetriever(model=MINILM, document_store=_store(collection), top_k=10, **search)
    try:
        found = [retriever.retrieve(q) for q in collection["queries"]]
        by_id = {d.id_: d for d in collection["documents"]}
        assert all(
            (n.node.text, n.node.metadata) == (by_id[n.node_id].text, by_id[n.node_id].metadata)
            and n.node.metadata["title"]
            for nodes in found
            for n in nodes
        )
        return [[(n.node_id, n.score) for n in nodes] for nodes in found]
    finally:
        retriever.close()


def _langchain(collection: dict, mode: RetrievalMode) -> list[Found]:
    sparse = BM25SparseEmbeddings() if mode == RetrievalMode.HYBRID else None
    store = DualEncoderQdrantVectorStore.from_existing_collection(
        "scifact",
        DualEncoderEmbeddings(model=MINILM),
        mode,
        sparse_embedding=sparse,
        path=collection["path"],
        **HAYSTACK_HYBRID_LAYOUT,
    )
    try:
        return [[(d.id, s) for d, s in store.similarity_search_with_score(q, k=10)] for q in collection["queries"]]
    finally:
        store.client.close()


def assert_same_results(ours: list[Found], reference: list[Found]) -> None:
    """The same scores, best first; the same ids with them (ids tied in score may come in either order, and one
    tied with the tenth may be left out instead of another)."""
    for found, expected in zip(ours, reference, strict=True):
        assert len(found) == len(expected) == 10
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=0, atol=1e-5)
        last = expected[-1][1]
        assert {i for i, s in found if s > last + 1e-5} == {i for i, s in expected if s > last + 1e-5}
        scores = dict(expected)
        assert all(abs(scores[i] - s) <= 1e-5 for i, s in found if i in scores)


def test_three_frameworks_find_the_same_documents_dense(collection: dict) -> None:
    reference = _haystack(collection)
    assert_same_results(_llama_index(collection), reference)
    assert_same_results(_langchain(collection, RetrievalMode.DENSE), reference)
    assert [i for i, _ in _llama_index(collection)[0]] == [i for i, _ in reference[0]]


def test_three_frameworks_find_the_same_documents_hybrid(collection: dict) -> None:
    reference = _langchain(collection, RetrievalMode.HYBRID)
    assert_same_results(_haystack(collection, **HYBRID), reference)
    assert_same_results(_llama_index(collection, **HYBRID), reference)
    dbsf = _llama_index(collection, retrieval="hybrid")  # the default fusion, in Qdrant
    assert_same_results(dbsf, _haystack(collection, retrieval="hybrid"))


def test_ingestion_pipeline_and_vector_store_index_rank_as_the_collection(collection: dict) -> None:
    """LlamaIndex's own in-memory index over nodes embedded by the pipeline: the vectors the write path stored
    (titles read as the recipe says), so its cosine top 10 is the collection's."""
    embedding = collection["embedding"]
    fresh = [Document(id_=d.id_, text=d.text, metadata=d.metadata) for d in collection["documents"]]
    nodes = IngestionPipeline(transformations=[embedding]).run(documents=fresh)
    index = VectorStoreIndex(nodes, embed_model=embedding)
    retriever = index.as_retriever(similarity_top_k=10)
    in_memory = [[(n.node_id, n.score) for n in retriever.retrieve(q)] for q in collection["queries"]]
    assert_same_results(in_memory, _llama_index(collection))


def test_example_answers_offline(minilm_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("llama_index_rag", ROOT / "examples" / "llama_index_rag.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main("Does aspirin lower the risk of heart attack?", limit=20) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Sources:"
    assert [line[:4] for line in lines[1:4]] == ["[1] ", "[2] ", "[3] "]
    assert any(line.startswith("Answer") for line in lines)
