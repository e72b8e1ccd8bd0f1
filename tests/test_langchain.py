"""The LangChain half: the same vectors as the model cards and the Haystack embedders, the same collections."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import MINILM
from haystack import Document as HaystackDocument
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from qdrant_client import QdrantClient, models
from test_exactness import DOCUMENTS, QUERIES, _assert_same_vectors, _reference_simlm, _reference_tas_b, _title

from simlm_haystack import (
    CollectionMismatchError,
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    build_query_pipeline,
    index_documents,
    qdrant_document_store,
)
from simlm_haystack.corpus import read_documents
from simlm_haystack.langchain import HAYSTACK_LAYOUT, DualEncoderEmbeddings, DualEncoderQdrantVectorStore

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [document.content for document in DOCUMENTS]
TITLES = [None if document.meta.get("title") is None else str(document.meta["title"]) for document in DOCUMENTS]


def _stored_vectors(store: DualEncoderQdrantVectorStore) -> dict[str, np.ndarray]:
    """Every point's vector by the id LangChain gives it (``Document.id``)."""
    records, _ = store.client.scroll(store.collection_name, limit=1000, with_vectors=True, with_payload=True)
    return {
        store._document_from_point(
            record, store.collection_name, store.content_payload_key, store.metadata_payload_key
        ).id: np.array(record.vector if isinstance(record.vector, list) else record.vector[""])
        for record in records
    }


# --- 1. Exactness: the model cards' code and the Haystack embedders -----------------------------------


def test_simlm_embeddings_match_the_model_card_and_the_haystack_embedders(tiny_bert: str) -> None:
    encode_passages, encode_queries = _reference_simlm(tiny_bert)
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", batch_size=3)
    ours = np.array(embeddings.embed_documents(TEXTS, TITLES))
    _assert_same_vectors(ours, np.concatenate([encode_passages([_title(d)], [d.content]) for d in DOCUMENTS]))
    haystack = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", batch_size=3, progress_bar=False)
    from_haystack = np.array([d.embedding for d in haystack.run(DOCUMENTS)["documents"]])
    np.testing.assert_allclose(ours, from_haystack, rtol=0, atol=1e-6)

    queries = np.array([embeddings.embed_query(query) for query in QUERIES])
    _assert_same_vectors(queries, encode_queries(QUERIES))
    text_embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    np.testing.assert_allclose(queries, [text_embedder.run(q)["embedding"] for q in QUERIES], rtol=0, atol=1e-6)


def test_simlm_documents_without_titles_get_the_dash_title(tiny_bert: str) -> None:
    encode_passages, _ = _reference_simlm(tiny_bert)
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    untitled = np.array(embeddings.embed_documents(TEXTS))
    _assert_same_vectors(untitled, np.concatenate([encode_passages(["-"], [text]) for text in TEXTS]))
    np.testing.assert_allclose(untitled, embeddings.embed_documents(TEXTS, [None] * len(TEXTS)), rtol=0, atol=1e-6)
    titled = np.array(embeddings.embed_documents(TEXTS, TITLES))
    assert not np.allclose(untitled[0], titled[0])  # the title of document 0 reaches the encoder


def test_tas_b_embeddings_match_the_reference_and_the_haystack_embedders(tiny_distilbert: str) -> None:
    encode = _reference_tas_b(tiny_distilbert)
    embeddings = DualEncoderEmbeddings(model=tiny_distilbert, recipe="tas-b", batch_size=2)
    ours = np.array(embeddings.embed_documents(TEXTS, TITLES))
    joined = [f"{title} {text}" if title else text for title, text in zip(TITLES, TEXTS, strict=True)]
    _assert_same_vectors(ours, np.concatenate([encode([text], 200) for text in joined]))
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0)  # raw dot-product vectors
    haystack = DualEncoderDocumentEmbedder(model=tiny_distilbert, recipe="tas-b", batch_size=2, progress_bar=False)
    np.testing.assert_allclose(ours, [d.embedding for d in haystack.run(DOCUMENTS)["documents"]], rtol=0, atol=1e-6)
    queries = np.array([embeddings.embed_query(query) for query in QUERIES])
    _assert_same_vectors(queries, encode(QUERIES, 30))
    text_embedder = DualEncoderTextEmbedder(model=tiny_distilbert, recipe="tas-b")
    np.testing.assert_allclose(queries, [text_embedder.run(q)["embedding"] for q in QUERIES], rtol=0, atol=1e-6)


def test_embeddings_share_the_loaded_model_with_the_haystack_embedders(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", device="cpu")
    haystack = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm")
    haystack.warm_up()
    assert embeddings.warm_up().loaded is haystack.encoder.loaded
    wrapped = DualEncoderEmbeddings.from_encoder(haystack.encoder)
    assert wrapped.encoder is haystack.encoder
    assert wrapped.embed_documents(["a text"], ["a title"]) == embeddings.embed_documents(["a text"], ["a title"])


def test_embeddings_have_what_the_store_helpers_read(tiny_distilbert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_distilbert, recipe="tas-b")
    assert (embeddings.model, embeddings.recipe.name, embeddings.local_files_only) == (tiny_distilbert, "tas-b", False)
    assert embeddings.embedding_dim == 32 and embeddings.encoder is None  # read from the config, not loaded
    store = qdrant_document_store(embeddings)
    assert (store.embedding_dim, store.similarity) == (32, "dot_product")


def test_token_is_kept_as_a_secret(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", token="hf_very_secret")
    assert embeddings.token.resolve_value() == "hf_very_secret"
    assert "hf_very_secret" not in repr(embeddings) and "hf_very_secret" not in repr(vars(embeddings))
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    assert DualEncoderEmbeddings(model=tiny_bert, recipe="simlm").token.resolve_value() == "hf_from_environment"


# --- 3. Input checks, async ---------------------------------------------------------------------------


def test_empty_input_and_wrong_types_name_the_item(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    assert embeddings.embed_documents([]) == []
    assert embeddings.embed_documents([], titles=[]) == []
    with pytest.raises(TypeError, match="item 3 of texts is NoneType"):
        embeddings.embed_documents(["a", "b", "c", None])
    with pytest.raises(TypeError, match="texts must be a list of strings, not str"):
        embeddings.embed_documents("one string")
    with pytest.raises(TypeError, match="item 1 of titles is int"):
        embeddings.embed_documents(["a", "b"], ["t", 7])
    with pytest.raises(ValueError, match="Got 1 titles for 2 texts"):
        embeddings.embed_documents(["a", "b"], ["t"])
    with pytest.raises(TypeError, match="expects a string, got list"):
        embeddings.embed_query(["a"])
    with pytest.raises(ValueError, match="batch_size"):
        DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", precision="fp8")


def test_async_methods_give_the_same_vectors(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")

    async def both() -> tuple[list[list[float]], list[float]]:
        return await asyncio.gather(embeddings.aembed_documents(TEXTS, TITLES), embeddings.aembed_query(QUERIES[0]))

    documents, query = asyncio.run(both())
    np.testing.assert_allclose(documents, embeddings.embed_documents(TEXTS, TITLES), rtol=0, atol=1e-6)
    np.testing.assert_allclose(query, embeddings.embed_query(QUERIES[0]), rtol=0, atol=1e-6)


# --- 3. The vector store ------------------------------------------------------------------------------

LC_DOCUMENTS = [
    Document(
        page_content=text, metadata={"title": title, "year": 2000 + i} if title is not None else {"year": 2000 + i}
    )
    for i, (text, title) in enumerate(zip(TEXTS, TITLES, strict=True))
]


def test_store_feeds_titles_to_the_encoder_and_takes_distance_from_the_recipe(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(len(LC_DOCUMENTS))]
    store = DualEncoderQdrantVectorStore.from_documents(
        LC_DOCUMENTS, embeddings, ids=ids, location=":memory:", collection_name="docs", batch_size=3
    )
    params = store.client.get_collection("docs").config.params.vectors
    assert (params.size, params.distance) == (32, models.Distance.COSINE)
    stored = _stored_vectors(store)
    expected = embeddings.embed_documents(TEXTS, TITLES)
    for i, vector in zip(ids, expected, strict=True):
        np.testing.assert_allclose(stored[i], vector, rtol=0, atol=1e-6)
    # Search scores are the recipe's similarity between the query and the stored vectors.
    results = store.similarity_search_with_score(QUERIES[0], k=3)
    query = np.array(embeddings.embed_query(QUERIES[0]))
    for document, score in results:
        assert score == pytest.approx(float(stored[document.id] @ query), abs=1e-5)
    assert [d.page_content for d, _ in results] == [d.page_content for d in store.similarity_search(QUERIES[0], k=3)]


def test_title_key_and_documents_without_titles(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    documents = [
        Document(page_content="text one", metadata={"headline": "Headline"}, id="00000000-0000-0000-0000-000000000001"),
        Document(page_content="text two", id="00000000-0000-0000-0000-000000000002"),
    ]
    store = DualEncoderQdrantVectorStore.from_documents(
        documents, embeddings, location=":memory:", collection_name="docs", title_key="headline"
    )
    stored = _stored_vectors(store)
    np.testing.assert_allclose(
        stored[documents[0].id], embeddings.embed_documents(["text one"], ["Headline"])[0], atol=1e-6
    )
    np.testing.assert_allclose(stored[documents[1].id], embeddings.embed_documents(["text two"])[0], atol=1e-6)
    untitled = DualEncoderQdrantVectorStore.from_documents(
        documents[:1], embeddings, location=":memory:", collection_name="docs", title_key=None
    )
    np.testing.assert_allclose(
        _stored_vectors(untitled)[documents[0].id], embeddings.embed_documents(["text one"])[0], atol=1e-6
    )


def test_tas_b_collection_is_dot_product(tiny_distilbert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_distilbert, recipe="tas-b")
    store = DualEncoderQdrantVectorStore.from_texts(["alpha", "beta"], embeddings, location=":memory:")
    params = store.client.get_collection(store.collection_name).config.params.vectors
    assert (params.size, params.distance) == (32, models.Distance.DOT)
    [(document, score)] = store.similarity_search_with_score("alpha beta", k=1)
    vector = np.array(embeddings.embed_documents([document.page_content])[0])
    assert score == pytest.approx(float(vector @ np.array(embeddings.embed_query("alpha beta"))), rel=1e-5)
    with pytest.raises(ValueError, match="disagrees with recipe 'tas-b'"):
        DualEncoderQdrantVectorStore(store.client, store.collection_name, embeddings, distance=models.Distance.COSINE)


def test_other_size_or_distance_is_refused_before_writing(tiny_bert: str, tiny_distilbert: str, tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant")
    tas_b = DualEncoderEmbeddings(model=tiny_distilbert, recipe="tas-b")
    simlm = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    DualEncoderQdrantVectorStore.from_texts(["one", "two"], tas_b, path=path, collection_name="dot").client.close()
    with pytest.raises(CollectionMismatchError, match=r"'dot' holds 32-d Dot vectors.*32-d Cosine vectors of model"):
        DualEncoderQdrantVectorStore.from_texts(["three"], simlm, path=path, collection_name="dot")
    with pytest.raises(CollectionMismatchError, match="32-d Cosine"):
        DualEncoderQdrantVectorStore.from_existing_collection("dot", simlm, path=path)
    client = QdrantClient(path=path)  # the refusals closed their clients: the folder is free again
    client.create_collection("small", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    client.create_collection("named", vectors_config={"other": models.VectorParams(size=32, distance="Cosine")})
    client.close()
    with pytest.raises(CollectionMismatchError, match="'small' holds 8-d Cosine vectors"):
        DualEncoderQdrantVectorStore.from_texts(["three"], simlm, path=path, collection_name="small")
    with pytest.raises(CollectionMismatchError, match=r"no dense vector named ''.*'other'"):
        DualEncoderQdrantVectorStore.from_texts(["three"], simlm, path=path, collection_name="named")
    store = DualEncoderQdrantVectorStore.from_existing_collection("dot", tas_b, path=path)
    assert store.client.count("dot").count == 2 and store.client.count("small").count == 0  # nothing written
    store.client.close()
    recreated = DualEncoderQdrantVectorStore.from_texts(
        ["three"], simlm, path=path, collection_name="dot", force_recreate=True
    )
    assert recreated.client.count("dot").count == 1
    recreated.client.close()


def test_path_mode_persists_and_from_existing_collection_reads_it(tiny_bert: str, tmp_path: Path) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    path = str(tmp_path / "qdrant")
    store = DualEncoderQdrantVectorStore.from_documents(LC_DOCUMENTS, embeddings, path=path, collection_name="docs")
    before = store.similarity_search_with_score(QUERIES[0], k=4)
    store.client.close()
    reopened = DualEncoderQdrantVectorStore.from_existing_collection("docs", embeddings, path=path)
    after = reopened.similarity_search_with_score(QUERIES[0], k=4)
    assert [(d.id, pytest.approx(s)) for d, s in before] == [(d.id, s) for d, s in after]
    with pytest.raises(ValueError, match="'missing' does not exist"):
        DualEncoderQdrantVectorStore(reopened.client, "missing", embeddings)
    reopened.client.close()


def test_filters_add_documents_delete_and_async(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    store = DualEncoderQdrantVectorStore.from_documents(LC_DOCUMENTS, embeddings, location=":memory:")
    year = models.Filter(must=[models.FieldCondition(key="metadata.year", match=models.MatchValue(value=2003))])
    [only] = store.similarity_search(QUERIES[0], k=5, filter=year)
    assert only.page_content == TEXTS[3] and only.metadata["title"] == TITLES[3]

    async def run() -> tuple[list, list, list]:
        added = await store.aadd_documents([Document(page_content="async text", metadata={"title": "A", "year": 1})])
        found = await store.asimilarity_search_with_score(QUERIES[1], k=3)
        retrieved = await store.as_retriever(search_kwargs={"k": 3}).ainvoke(QUERIES[1])
        return added, found, retrieved

    added, found, retrieved = asyncio.run(run())
    assert store.client.count(store.collection_name).count == len(LC_DOCUMENTS) + 1
    sync = store.similarity_search_with_score(QUERIES[1], k=3)
    assert [(d.page_content, pytest.approx(s, abs=1e-6)) for d, s in sync] == [(d.page_content, s) for d, s in found]
    assert [d.page_content for d in retrieved] == [d.page_content for d, _ in sync]
    assert store.get_by_ids(added)[0].page_content == "async text"
    assert store.delete(added) and store.client.count(store.collection_name).count == len(LC_DOCUMENTS)


def test_store_input_checks(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    store = DualEncoderQdrantVectorStore.from_texts([], embeddings, location=":memory:", collection_name="empty")
    assert store.client.count("empty").count == 0 and store.add_texts([]) == []
    with pytest.raises(TypeError, match="item 1 of texts is int"):
        store.add_texts(["a", 3])
    with pytest.raises(TypeError, match="item 0 of metadatas is str"):
        store.add_texts(["a"], metadatas=["not a dict"])
    with pytest.raises(ValueError, match="Got 2 metadatas for 1 texts"):
        store.add_texts(["a"], metadatas=[{}, {}])
    assert store.client.count("empty").count == 0  # a bad batch writes nothing
    with pytest.raises(TypeError, match="needs DualEncoderEmbeddings"):
        DualEncoderQdrantVectorStore.from_texts(["a"], embedding=mock.Mock(), location=":memory:")
    with pytest.raises(TypeError, match=r"retrieval_mode=HYBRID needs sparse_embedding=.*not NoneType"):
        DualEncoderQdrantVectorStore.from_texts(["a"], embeddings, location=":memory:", retrieval_mode="hybrid")


def test_server_gets_the_api_key_from_the_environment(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    monkeypatch.setenv("QDRANT_API_KEY", "key-from-env")
    with mock.patch("simlm_haystack.langchain.client.QdrantClient") as client_class:
        DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", embeddings, url="https://cluster.example:6333", validate_collection_config=False
        )
        DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", embeddings, url="https://cluster.example:6333", api_key="given", validate_collection_config=False
        )
        DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", embeddings, path="local", validate_collection_config=False
        )
    assert client_class.call_args_list == [
        mock.call(url="https://cluster.example:6333", api_key="key-from-env"),
        mock.call(url="https://cluster.example:6333", api_key="given"),
        mock.call(path="local"),
    ]


# --- 4. An LCEL chain ---------------------------------------------------------------------------------


def test_retriever_runs_inside_an_lcel_chain(tiny_bert: str) -> None:
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    store = DualEncoderQdrantVectorStore.from_documents(LC_DOCUMENTS, embeddings, location=":memory:")
    retriever = store.as_retriever(search_kwargs={"k": 2})
    assert isinstance(retriever, BaseRetriever)
    prompt = ChatPromptTemplate.from_messages([("human", "Context:\n{context}\n\nQuestion: {question}")])

    def format_documents(documents: list[Document]) -> str:
        return "\n".join(f"[{d.metadata.get('title', '-')}] {d.page_content}" for d in documents)

    inputs = {"context": retriever | format_documents, "question": RunnablePassthrough()}
    chain = inputs | prompt | FakeListChatModel(responses=["a fake answer"]) | StrOutputParser()
    assert chain.invoke(QUERIES[0]) == "a fake answer"
    [message] = (inputs | prompt).invoke(QUERIES[0]).to_messages()
    assert message.content == (
        f"Context:\n{format_documents(store.similarity_search(QUERIES[0], k=2))}\n\nQuestion: {QUERIES[0]}"
    )
    assert asyncio.run(chain.ainvoke(QUERIES[0])) == "a fake answer"


# --- 2. One collection, both frameworks (SciFact sample, MiniLM) --------------------------------------


@pytest.fixture(scope="module")
def scifact_collections(minilm_path: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sample indexed once through Haystack and once through LangChain, each in its own embedded Qdrant."""
    root = tmp_path_factory.mktemp("interop")
    corpus = sample_dir / "corpus.jsonl"
    embedder = DualEncoderDocumentEmbedder(model=MINILM, progress_bar=False)
    store = qdrant_document_store(embedder, path=str(root / "haystack"), index="scifact")
    index_documents(read_documents(corpus), embedder, store, progress_bar=False)
    store.close()
    documents = [Document(page_content=d.content, metadata=d.meta, id=d.id) for d in read_documents(corpus)]
    embeddings = DualEncoderEmbeddings(model=MINILM)
    DualEncoderQdrantVectorStore.from_documents(
        documents, embeddings, path=str(root / "langchain"), collection_name="scifact", **HAYSTACK_LAYOUT
    ).client.close()
    queries = [json.loads(line)["text"] for line in (sample_dir / "queries.jsonl").read_text().splitlines()[:5]]
    return {"haystack": str(root / "haystack"), "langchain": str(root / "langchain"), "queries": queries}


def _search_with_haystack(path: str, queries: list[str]) -> list[list[tuple[str, float]]]:
    store = qdrant_document_store(DualEncoderTextEmbedder(model=MINILM), path=path, index="scifact")
    pipeline = build_query_pipeline(DualEncoderTextEmbedder(model=MINILM), store, top_k=10)
    try:
        results = [pipeline.run({"retriever": {"query": q}})["retriever"]["documents"] for q in queries]
        return [[(d.id, d.score) for d in documents] for documents in results]
    finally:
        store.close()


def _search_with_langchain(path: str, queries: list[str]) -> list[list[tuple[str, float]]]:
    store = DualEncoderQdrantVectorStore.from_existing_collection(
        "scifact", DualEncoderEmbeddings(model=MINILM), path=path, **HAYSTACK_LAYOUT
    )
    try:
        results = [store.similarity_search_with_score(q, k=10) for q in queries]
        # Haystack's ids as Document.id; the meta as Haystack stored it, no langchain-qdrant "_id" added.
        assert all(d.id and d.metadata["title"] and "_id" not in d.metadata for found in results for d, _ in found)
        return [[(d.id, s) for d, s in found] for found in results]
    finally:
        store.client.close()


def _assert_same_results(ours: list[list[tuple[str, float]]], reference: list[list[tuple[str, float]]]) -> None:
    for found, expected in zip(ours, reference, strict=True):
        assert len(found) == 10
        assert [i for i, _ in found] == [i for i, _ in expected]
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=0, atol=1e-5)


@pytest.mark.integration
def test_haystack_indexed_collection_is_searched_from_langchain(scifact_collections: dict) -> None:
    path, queries = scifact_collections["haystack"], scifact_collections["queries"]
    _assert_same_results(_search_with_langchain(path, queries), _search_with_haystack(path, queries))


@pytest.mark.integration
def test_langchain_indexed_collection_is_searched_from_haystack(scifact_collections: dict) -> None:
    queries = scifact_collections["queries"]
    reference = _search_with_haystack(scifact_collections["haystack"], queries)  # indexed and searched by Haystack
    _assert_same_results(_search_with_haystack(scifact_collections["langchain"], queries), reference)
    _assert_same_results(_search_with_langchain(scifact_collections["langchain"], queries), reference)
    # Haystack reads LangChain's points as its own Documents: id, content and meta.
    store = qdrant_document_store(
        DualEncoderTextEmbedder(model=MINILM), path=scifact_collections["langchain"], index="scifact"
    )
    try:
        expected = {d.id: d for d in read_documents(ROOT / "examples/data/scifact-sample/corpus.jsonl")}
        stored = store.filter_documents()
        assert len(stored) == len(expected) == 300
        assert all(
            isinstance(d, HaystackDocument) and (d.content, d.meta) == (expected[d.id].content, expected[d.id].meta)
            for d in stored
        )
    finally:
        store.close()


@pytest.mark.integration
def test_example_chain_prints_the_prompt_offline_without_library_noise(minilm_path: str) -> None:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    environment.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langchain_rag.py"), "Does aspirin lower the risk of heart attack?"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=True,
    )
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Answer the question from these abstracts only."
    assert [line[:4] for line in lines[1:4]] == ["[1] ", "[2] ", "[3] "]
    assert any("aspirin" in line.lower() for line in lines[1:4])  # retrieval found the subject
    assert "Question: Does aspirin lower the risk of heart attack?" in lines
    assert lines[-1].startswith("[No chat model configured")


# --- 5. The package imports without LangChain ---------------------------------------------------------

WITHOUT_LANGCHAIN = """
import sys

class BlockLangChain:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("langchain", "langchain_core", "langchain_qdrant"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockLangChain())
import simlm_haystack
assert not [m for m in sys.modules if m.startswith(("langchain_core", "langchain_qdrant"))]
print("imported", simlm_haystack.__version__)
try:
    import simlm_haystack.langchain
except ImportError as error:
    print("ImportError:", error)
"""


def test_package_imports_without_langchain() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LANGCHAIN],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported 0.1.0",
        "ImportError: simlm_haystack.langchain needs LangChain (langchain_core is not installed): "
        'pip install "simlm-haystack[langchain]"',
    ]


def test_a_constructor_that_fails_closes_its_client(tiny_bert: str, tmp_path: Path) -> None:
    """An embedded folder is locked while a client holds it: a failed from_texts must not keep it."""
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm")
    path = str(tmp_path / "qdrant")
    with pytest.raises(TypeError, match="item 1 of texts is int"):
        DualEncoderQdrantVectorStore.from_texts(["a", 3], embeddings, path=path, collection_name="docs")
    store = DualEncoderQdrantVectorStore.from_texts(["a"], embeddings, path=path, collection_name="docs")
    assert store.client.count("docs").count == 1
    store.client.close()
