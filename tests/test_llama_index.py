"""The LlamaIndex half: the model cards' vectors, titles read from node metadata, filters, the retriever over a
collection written from LlamaIndex (Qdrant Edge), inside a query engine and a chat engine."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from haystack import Document as HaystackDocument
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.chat_engine import ContextChatEngine
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from test_exactness import DOCUMENTS, QUERIES, _assert_same_vectors, _reference_simlm, _reference_tas_b, _title

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    EncoderMismatchError,
    edge_document_store,
)
from simlm_haystack.errors import SettingsError
from simlm_haystack.llama_index import DualEncoderEmbedding, DualEncoderRetriever, haystack_filters, index_nodes
from simlm_haystack.llama_index.nodes import REF_DOC_ID_KEY, node_document

ROOT = Path(__file__).resolve().parent.parent


def _nodes() -> list[TextNode]:
    return [TextNode(id_=f"n{i}", text=d.content, metadata=dict(d.meta)) for i, d in enumerate(DOCUMENTS)]


def _vectors(nodes: list) -> np.ndarray:
    return np.array([node.embedding for node in nodes])


# --- 1. Exactness: the model cards' code, the Haystack embedders, titles from node metadata ----------------------


def test_simlm_nodes_texts_and_queries_match_the_model_card(sensitive_bert: str) -> None:
    encode_passages, encode_queries = _reference_simlm(sensitive_bert)
    embedding = DualEncoderEmbedding(model=sensitive_bert, recipe="simlm", embed_batch_size=3)
    # As a transformation: each node's text alone, its metadata["title"] as SimLM's first segment.
    nodes = IngestionPipeline(transformations=[embedding]).run(nodes=_nodes())
    reference = np.concatenate([encode_passages([_title(d)], [d.content]) for d in DOCUMENTS])
    _assert_same_vectors(_vectors(nodes), reference)
    haystack = DualEncoderDocumentEmbedder(model=sensitive_bert, recipe="simlm", batch_size=3, progress_bar=False)
    from_haystack = [d.embedding for d in haystack.run(DOCUMENTS)["documents"]]
    np.testing.assert_allclose(_vectors(nodes), from_haystack, rtol=0, atol=1e-6)
    # A text alone has no title: SimLM's "-".
    texts = [d.content for d in DOCUMENTS]
    untitled = np.array(embedding.get_text_embedding_batch(texts))
    _assert_same_vectors(untitled, np.concatenate([encode_passages(["-"], [text]) for text in texts]))
    assert not np.allclose(untitled[0], _vectors(nodes)[0])  # the title of node 0 reached the encoder
    queries = np.array([embedding.get_query_embedding(query) for query in QUERIES])
    _assert_same_vectors(queries, encode_queries(QUERIES))
    text_embedder = DualEncoderTextEmbedder(model=sensitive_bert, recipe="simlm")
    np.testing.assert_allclose(queries, [text_embedder.run(q)["embedding"] for q in QUERIES], rtol=0, atol=1e-6)


def test_tas_b_nodes_and_queries_match_the_reference(sensitive_distilbert: str) -> None:
    encode = _reference_tas_b(sensitive_distilbert)
    embedding = DualEncoderEmbedding(model=sensitive_distilbert, recipe="tas-b", title_key="heading")
    nodes = [TextNode(text=d.content, metadata={"heading": d.meta["title"]}) for d in DOCUMENTS if d.meta.get("title")]
    embedding(nodes)
    joined = [f"{node.metadata['heading']} {node.text}" for node in nodes]
    _assert_same_vectors(_vectors(nodes), np.concatenate([encode([text], 200) for text in joined]))
    assert not np.allclose(np.linalg.norm(_vectors(nodes), axis=1), 1.0)  # raw dot-product vectors
    _assert_same_vectors([embedding.get_query_embedding(q) for q in QUERIES], encode(QUERIES, 30))


def test_async_methods_give_the_same_vectors_and_the_model_is_shared(tiny_bert: str) -> None:
    embedding = DualEncoderEmbedding(model=tiny_bert, recipe="simlm", device="cpu")
    texts = [d.content for d in DOCUMENTS]

    async def run() -> tuple:
        nodes = await IngestionPipeline(transformations=[embedding]).arun(nodes=_nodes())
        return (
            await embedding.aget_query_embedding(QUERIES[0]),
            await embedding.aget_text_embedding(texts[0]),
            await embedding.aget_text_embedding_batch(texts),
            _vectors(nodes),
        )

    query, text, batch, nodes = asyncio.run(run())
    np.testing.assert_allclose(query, embedding.get_query_embedding(QUERIES[0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(text, embedding.get_text_embedding(texts[0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(batch, embedding.get_text_embedding_batch(texts), rtol=0, atol=1e-6)
    np.testing.assert_allclose(nodes, _vectors(embedding(_nodes())), rtol=0, atol=1e-6)
    haystack = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm")
    haystack.warm_up()
    assert embedding.warm_up().loaded is haystack.encoder.loaded  # one model in memory
    wrapped = DualEncoderEmbedding.from_encoder(haystack.encoder)
    assert wrapped.encoder is haystack.encoder and wrapped.recipe.name == "simlm"
    assert (embedding.embedding_dim, embedding.class_name()) == (32, "DualEncoderEmbedding")


def test_vector_store_index_reads_titles_when_the_embedding_is_a_transformation(
    tiny_bert: str, caplog: pytest.LogCaptureFixture
) -> None:
    embedding = DualEncoderEmbedding(model=tiny_bert, recipe="simlm")
    documents = [Document(id_=f"d{i}", text=d.content, metadata=dict(d.meta)) for i, d in enumerate(DOCUMENTS[:2])]
    titled = embedding.embed_documents([d.text for d in documents], ["Aspirin and the heart", None])
    index = VectorStoreIndex.from_documents(documents, embed_model=embedding, transformations=[embedding])
    stored = index.vector_store.to_dict()["embedding_dict"]
    np.testing.assert_allclose([stored[d.id_] for d in documents], titled, rtol=0, atol=1e-6)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Given only as embed_model, the index embeds LlamaIndex's metadata string with the text: said once.
    fresh = [Document(id_=f"d{i}", text=d.content, metadata=dict(d.meta)) for i, d in enumerate(DOCUMENTS[:2])]
    VectorStoreIndex.from_documents(fresh + fresh, embed_model=embedding)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "metadata string ('title: '" in warnings[0]


def test_to_json_and_back_is_an_embedding_of_the_same_settings(tiny_bert: str) -> None:
    embedding = DualEncoderEmbedding(
        model=tiny_bert, recipe="simlm", device="cpu", embed_batch_size=7, title_key="heading", precision="fast"
    )
    written = embedding.to_json()
    again = DualEncoderEmbedding.from_json(written)
    assert again.to_json() == written
    read = (again.recipe.name, again.precision, again.embed_batch_size, again.title_key)
    assert read == ("simlm", "fast", 7, "heading")
    np.testing.assert_array_equal(again.get_query_embedding(QUERIES[0]), embedding.get_query_embedding(QUERIES[0]))
    assert DualEncoderEmbedding.from_dict(embedding.to_dict(), title_key=None).title_key is None
    secret = DualEncoderEmbedding(model=tiny_bert, recipe="simlm", token="hf_secret")
    assert secret.to_dict()["token"] is None and "hf_secret" not in secret.to_json()  # hashed by ingestion caches
    assert embedding.to_dict()["token"]["env_vars"] == ["HF_API_TOKEN", "HF_TOKEN"]  # the variables' names
    other = DualEncoderEmbedding(model=tiny_bert, recipe="tas-b", device="cpu", embed_batch_size=7, title_key="heading")
    assert other.to_json() != embedding.to_json()  # an ingestion cache tells two readings of one model apart


def test_wrong_input_is_named(tiny_bert: str) -> None:
    embedding = DualEncoderEmbedding(model=tiny_bert, recipe="simlm")
    with pytest.raises(TypeError, match="item 1 of texts is int"):
        embedding.get_text_embedding_batch(["a", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="query string, got list"):
        embedding.get_query_embedding(["a"])  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="exactly one: got neither"):
        DualEncoderEmbedding(recipe="simlm")
    with pytest.raises(SettingsError, match="batch_size must be a positive integer"):
        DualEncoderEmbedding(model=tiny_bert, recipe="simlm", embed_batch_size=0)


# --- 2. Filters ---------------------------------------------------------------------------------------------------


def test_metadata_filters_become_haystack_filters() -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="year", value=2020, operator=FilterOperator.GTE),
            MetadataFilters(
                filters=[
                    MetadataFilter(key="journal", value="Nature"),
                    MetadataFilter(key="topic", value=["a", "b"], operator=FilterOperator.NIN),
                ],
                condition=FilterCondition.OR,
            ),
        ]
    )
    assert haystack_filters(filters) == {
        "operator": "AND",
        "conditions": [
            {"field": "meta.year", "operator": ">=", "value": 2020},
            {
                "operator": "OR",
                "conditions": [
                    {"field": "meta.journal", "operator": "==", "value": "Nature"},
                    {"field": "meta.topic", "operator": "not in", "value": ["a", "b"]},
                ],
            },
        ],
    }
    assert haystack_filters(None) is None and haystack_filters(MetadataFilters(filters=[])) is None
    haystack = {"field": "meta.year", "operator": "==", "value": 1}
    assert haystack_filters(haystack) is haystack
    with pytest.raises(SettingsError, match="'text_match' has no Haystack counterpart"):
        haystack_filters(MetadataFilters(filters=[MetadataFilter(key="t", value="x", operator="text_match")]))
    with pytest.raises(TypeError, match="not list"):
        haystack_filters([haystack])  # type: ignore[arg-type]


# --- 3. Writing from LlamaIndex, the retriever, engines (Qdrant Edge, tiny SimLM) ----------------------------------

CORPUS = [
    ("aspirin", "Aspirin", "Aspirin lowers the risk of a second heart attack.", 2019),
    ("statins", "Statins", "Statins lower cholesterol and cardiovascular risk.", 2021),
    ("vitamin-d", "Vitamin D", "Vitamin D deficiency is associated with a higher cancer risk.", 2018),
    ("paris", "Paris", "Paris is the capital of France.", 2022),
    ("tokyo", "Tokyo", "Tokyo is the capital of Japan.", 2023),
]


@pytest.fixture
def written(tiny_bert: str, tmp_path: Path) -> dict:
    """The corpus written from LlamaIndex into a hybrid Edge collection, then the store closed."""
    embedding = DualEncoderEmbedding(model=tiny_bert, recipe="simlm")
    documents = [Document(id_=i, text=text, metadata={"title": t, "year": y}) for i, t, text, y in CORPUS]
    path = str(tmp_path / "edge")
    store = edge_document_store(embedding, path=path, index="docs", use_sparse_embeddings=True)
    assert index_nodes(documents, embedding, store, retrieval="hybrid") == len(CORPUS)
    assert index_nodes(documents, embedding, store, retrieval="hybrid") == 0  # a rerun skips what is stored
    store.close()
    return {"embedding": embedding, "path": path, "documents": documents}


def _retriever(written: dict, **kwargs: object) -> DualEncoderRetriever:
    store = edge_document_store(written["embedding"], path=written["path"], index="docs")
    return DualEncoderRetriever.from_embedding(written["embedding"], store, **kwargs)


def test_retriever_returns_the_nearest_nodes_with_id_text_title_and_metadata(written: dict) -> None:
    embedding, query = written["embedding"], "heart attack risk"
    retriever = _retriever(written, top_k=3)
    try:
        found = retriever.retrieve(query)
        documents = written["documents"]
        vectors = np.array(
            embedding.embed_documents([d.text for d in documents], [d.metadata["title"] for d in documents])
        )
        query_vector = np.array(embedding.get_query_embedding(query))
        cosines = vectors @ query_vector / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query_vector)
        expected = [documents[i].id_ for i in np.argsort(-cosines)[:3]]
        assert [n.node.node_id for n in found] == expected
        np.testing.assert_allclose([n.score for n in found], np.sort(cosines)[::-1][:3], rtol=0, atol=1e-5)
        by_id = {d.id_: d for d in documents}
        assert all(
            (n.node.text, n.node.metadata) == (by_id[n.node.node_id].text, by_id[n.node.node_id].metadata)
            for n in found
        )
        assert [(n.node_id, n.score) for n in asyncio.run(retriever.aretrieve(query))] == [
            (n.node_id, n.score) for n in found
        ]
    finally:
        retriever.close()


@pytest.mark.parametrize("retrieval", ["dense", "sparse", "hybrid"])
def test_filters_and_top_k_in_every_mode(written: dict, retrieval: str) -> None:
    recent = MetadataFilters(filters=[MetadataFilter(key="year", value=2020, operator=FilterOperator.GT)])
    # BM25 leads the fusion (RRF k=1, weights [sparse 3, dense 1]): with RRF's defaults a tiny random dense side
    # that ranks paris over tokyo ties them exactly (each first on one side, second on the other), and the engine
    # breaks the tie either way; Qdrant's weights divide the rank, so they decide only with a small k.
    leading = {"fusion": "rrf", "rrf_k": 1, "rrf_weights": [3.0, 1.0]}
    retriever = _retriever(written, top_k=2, filters=recent, retrieval=retrieval, **leading)
    try:
        found = retriever.retrieve("the capital of Japan")
        assert 0 < len(found) <= 2 and all(n.node.metadata["year"] > 2020 for n in found)
        if retrieval != "dense":  # BM25 finds the one document with "japan"
            assert found[0].node.node_id == "tokyo"
    finally:
        retriever.close()


def test_retriever_in_a_query_engine_and_a_chat_engine(written: dict) -> None:
    retriever = _retriever(written, top_k=2)
    try:
        nodes = retriever.retrieve("capital of France")
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
        response = engine.query("capital of France")
        assert [n.node_id for n in response.source_nodes] == [n.node_id for n in nodes]
        assert nodes[0].node.text in str(response)  # MockLLM echoes the prompt: the retrieved text reached it
        chat = ContextChatEngine.from_defaults(retriever=retriever, llm=MockLLM())
        reply = chat.chat("capital of France")
        assert [n.node_id for n in reply.source_nodes] == [n.node_id for n in nodes]
        assert [n.node_id for n in asyncio.run(engine.aquery("capital of France")).source_nodes] == [
            n.node_id for n in nodes
        ]
    finally:
        retriever.close()


def test_another_encoder_is_refused_before_the_first_query(written: dict, sensitive_bert: str) -> None:
    store = edge_document_store(written["embedding"], path=written["path"], index="docs")
    retriever = DualEncoderRetriever(model=sensitive_bert, recipe="simlm", document_store=store)  # same size
    try:
        with pytest.raises(EncoderMismatchError):
            retriever.retrieve("capital of France")
    finally:
        retriever.close()


def test_split_nodes_keep_their_source_document(tiny_bert: str) -> None:
    document = Document(id_="doc-1", text="First sentence here. " * 40, metadata={"title": "Long"})
    nodes = SentenceSplitter(chunk_size=64, chunk_overlap=0).get_nodes_from_documents([document])
    assert len(nodes) > 1
    stored = node_document(nodes[1])
    assert (stored.id, stored.meta) == (nodes[1].node_id, {"title": "Long", REF_DOC_ID_KEY: "doc-1"})
    assert stored.content == nodes[1].get_content()  # the text alone, no metadata string
    embedding = DualEncoderEmbedding(model=tiny_bert, recipe="simlm")
    store = edge_document_store(embedding, index="docs")
    try:
        index_nodes(nodes, embedding, store)
        retriever = DualEncoderRetriever.from_embedding(embedding, store, top_k=1)
        [found] = retriever.retrieve(nodes[1].text)
        assert found.node.metadata == {"title": "Long"}
        assert found.node.relationships[NodeRelationship.SOURCE].node_id == "doc-1"
    finally:
        store.close()
    clashing = TextNode(text="x", metadata={REF_DOC_ID_KEY: "other"})
    clashing.relationships[NodeRelationship.SOURCE] = document.as_related_node_info()
    with pytest.raises(ValueError, match="keeps the source document's id"):
        node_document(clashing)
    assert isinstance(node_document(document), HaystackDocument)


# --- 4. The package imports without LlamaIndex --------------------------------------------------------------------

WITHOUT_LLAMA_INDEX = """
import sys

class BlockLlamaIndex:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "llama_index":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockLlamaIndex())
import simlm_haystack
assert not [m for m in sys.modules if m.startswith("llama_index")]
try:
    import simlm_haystack.llama_index
except ImportError as error:
    print("ImportError:", error)
"""


def test_package_imports_without_llama_index() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LLAMA_INDEX],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ImportError: simlm_haystack.llama_index needs LlamaIndex (llama_index is not installed): "
        'pip install "simlm-haystack[llama-index]"'
    ]
