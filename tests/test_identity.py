"""A collection remembers what filled it: the encoder identity recorded with it, and refused mismatches.

The issue's scenario: SciFact indexed with the ``minilm`` recipe, then searched with ``--recipe simlm``.
Same size, same distance, so only the recorded identity can stop it, and it must stop it before a
single query is encoded.
"""

from __future__ import annotations

import json
import logging
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from conftest import write_jsonl
from haystack import Document

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    EmptyQueryError,
    EncoderMismatchError,
    build_indexing_pipeline,
    build_query_pipeline,
    index_documents,
)
from simlm_haystack.cli import main
from simlm_haystack.corpus import read_documents
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.errors import StoreError
from simlm_haystack.fingerprint import cached_model_fingerprint, model_fingerprint
from simlm_haystack.stores import edge_document_store, qdrant_document_store, read_identity
from simlm_haystack.stores.edge.collection import COLLECTION_FILE
from simlm_haystack.stores.identity import METADATA_KEY, EncoderIdentity

ENGINES = ("local", "edge")


def _store(engine: str, embedder: Any, path: Path, index: str = "docs") -> Any:
    if engine == "edge":
        return edge_document_store(embedder, path=str(path), index=index)
    return qdrant_document_store(embedder, path=str(path), index=index)


class _ForwardSpy:
    """Counts the encoder's forward passes (every backend and precision goes through ``_embed_batch``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = DualEncoder._embed_batch

        def spy(encoder: DualEncoder, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(encoder, *args, **kwargs)

        monkeypatch.setattr(DualEncoder, "_embed_batch", spy)


def _docs(count: int = 6) -> list[Document]:
    return [
        Document(id=f"d{i}", content=f"document {i} about topic {i % 3}", meta={"title": f"T{i}"}) for i in range(count)
    ]


def _forget_record(engine: str, store: Any) -> None:
    """Make the collection look as an older version left it: documents, no record."""
    if engine == "edge":
        path = store.collection_path / COLLECTION_FILE
        record = json.loads(path.read_text())
        del record[METADATA_KEY]
        path.write_text(json.dumps(record))
    else:
        store._client.update_collection(store.index, metadata={METADATA_KEY: None})
    assert read_identity(store) is None


# --- the scenario, with the real MiniLM and the SciFact sample ---------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("engine", ENGINES)
def test_minilm_collection_refuses_simlm_queries_before_encoding(
    engine: str, minilm_path: str, sample_dir: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    documents = list(islice(read_documents(sample_dir / "corpus.jsonl"), 40))
    writer = DualEncoderDocumentEmbedder(model=minilm_path, recipe="minilm", progress_bar=False)
    store = _store(engine, writer, tmp_path / "q")
    assert index_documents(documents, writer, store, progress_bar=False) == 40
    recorded = read_identity(store)
    assert recorded is not None and recorded.recipe["name"] == "minilm" and recorded.recipe["pooling"] == "mean"
    assert recorded.model == minilm_path
    assert recorded.fingerprint == model_fingerprint(writer.encoder.loaded.model, writer.encoder.loaded.tokenizer)

    spy = _ForwardSpy(monkeypatch)
    retriever = DualEncoderRetriever(model=minilm_path, recipe="simlm", document_store=store)
    with pytest.raises(EncoderMismatchError) as refused:
        retriever.run(query="Vitamin D deficiency and bone density")
    assert spy.calls == 0
    message = str(refused.value)
    short = recorded.fingerprint[:12]
    assert f"Collection: model {minilm_path!r}, recipe 'minilm', weights {short}" in message
    assert f"This encoder: model {minilm_path!r}, recipe 'simlm', weights {short}" in message
    assert (
        "differ in the recipe's pooling ('mean' vs 'cls'), query_max_length (256 vs 32)" in message
        and "model weights" not in message
    )
    assert "--index NEW" in message and "allow_other_encoder=True" in message and "--allow-other-encoder" in message

    same = DualEncoderRetriever(model=minilm_path, recipe="minilm", document_store=store)
    assert len(same.run(query="Vitamin D deficiency and bone density")["documents"]) == 10
    assert spy.calls == 1

    caplog.set_level(logging.WARNING, logger="simlm_haystack")
    override = DualEncoderRetriever(model=minilm_path, recipe="simlm", document_store=store, allow_other_encoder=True)
    assert len(override.run(query="Vitamin D deficiency and bone density")["documents"]) == 10
    assert [r for r in caplog.records if "allow_other_encoder=True" in r.getMessage()]
    store.close()

    reopened = _store(engine, writer, tmp_path / "q")  # the record outlives the process's store object
    assert read_identity(reopened) == recorded
    reopened.close()


# --- the same with the tiny checkpoints: writers, backends, old collections -------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_writer_with_another_recipe_is_refused_and_an_emptied_collection_takes_the_new_one(
    engine: str, tiny_bert: str, tmp_path: Path, monkeypatch
) -> None:
    minilm = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = _store(engine, minilm, tmp_path / "q")
    index_documents(_docs(), minilm, store, progress_bar=False)
    simlm = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    spy = _ForwardSpy(monkeypatch)
    with pytest.raises(EncoderMismatchError, match="cannot be written to with this one"):
        index_documents(_docs(8), simlm, store, progress_bar=False)
    with pytest.raises(EncoderMismatchError):
        build_indexing_pipeline(simlm, store).run({"embedder": {"documents": _docs(8)}})
    assert spy.calls == 0 and store.count_documents() == 6

    store.delete_all_documents()
    assert index_documents(_docs(8), simlm, store, progress_bar=False) == 8
    assert read_identity(store).recipe["name"] == "simlm"
    store.close()


def test_other_backend_and_precision_of_the_same_weights_are_accepted(
    tiny_bert: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SIMLM_HAYSTACK_ONNX_CACHE", str(tmp_path / "onnx"))
    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = edge_document_store(writer, path=str(tmp_path / "q"))
    index_documents(_docs(), writer, store, progress_bar=False)
    for backend, precision in (("onnx", "int8"), ("onnx", "exact"), ("torch", "fast")):
        retriever = DualEncoderRetriever(
            model=tiny_bert, recipe="simlm", document_store=store, top_k=3, backend=backend, precision=precision
        )
        assert len(retriever.run(query="topic 1")["documents"]) == 3
        assert retriever.text_embedder.encoder.backend == backend
    other_recipe = DualEncoderTextEmbedder(model=tiny_bert, recipe="minilm", backend="onnx")
    with pytest.raises(EncoderMismatchError):  # the backend does not make another recipe acceptable
        build_query_pipeline(other_recipe, store).run({"retriever": {"query": "topic 1"}})
    store.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_collection_of_an_older_version_works_with_one_warning(
    engine: str, tiny_bert: str, tmp_path: Path, caplog
) -> None:
    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = _store(engine, writer, tmp_path / engine)
    index_documents(_docs(), writer, store, progress_bar=False)
    _forget_record(engine, store)
    caplog.set_level(logging.WARNING, logger="simlm_haystack")
    for query in ("topic 1", "topic 2"):
        retriever = DualEncoderRetriever(model=tiny_bert, recipe="minilm", document_store=store, top_k=2)
        assert len(retriever.run(query=query)["documents"]) == 2
    index_documents(_docs(7), writer, store, progress_bar=False)  # a writer too: no second warning
    warnings = [r for r in caplog.records if "keeps no identity of the encoder" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert read_identity(store) is None  # what filled it is unknown: no record is invented
    store.close()


def test_weights_changed_in_place_get_a_new_fingerprint(tiny_bert: str) -> None:
    import torch

    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    embedder.warm_up()
    loaded = embedder.encoder.loaded
    first = cached_model_fingerprint(loaded.model, loaded.tokenizer)
    identity = EncoderIdentity.of(embedder.model, embedder.encoder)
    assert identity.fingerprint == first == model_fingerprint(loaded.model, loaded.tokenizer)
    parameter = next(loaded.model.parameters())
    saved = parameter.detach().clone()
    with torch.no_grad():
        parameter.add_(1.0)
    try:
        assert cached_model_fingerprint(loaded.model, loaded.tokenizer) != first
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
    assert cached_model_fingerprint(loaded.model, loaded.tokenizer) == first


def test_retriever_serialises_the_override(tiny_bert: str, tmp_path: Path) -> None:
    store = edge_document_store("simlm", embedding_dim=32, path=str(tmp_path / "q"), check_collection=False)
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store, allow_other_encoder=True)
    data = retriever.to_dict()
    assert data["init_parameters"]["allow_other_encoder"] is True
    assert DualEncoderRetriever.from_dict(data).allow_other_encoder is True
    assert (
        DualEncoderRetriever(model=tiny_bert, document_store=store, recipe="simlm").to_dict()["init_parameters"][
            "allow_other_encoder"
        ]
        is False
    )


def test_evaluation_refuses_a_query_encoder_of_another_recipe(tiny_bert: str, tmp_path: Path, monkeypatch) -> None:
    from conftest import write_beir

    from simlm_haystack.evaluation import evaluate

    beir = write_beir(
        tmp_path / "beir",
        [{"_id": d.id, "title": d.meta["title"], "text": d.content} for d in _docs()],
        [{"_id": "q1", "text": "topic 1"}],
        {"test": ["query-id\tcorpus-id\tscore", "q1\td1\t1"]},
    )
    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = qdrant_document_store(writer, index="eval")
    queries = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    with pytest.raises(EncoderMismatchError, match="cannot be searched with this one"):
        evaluate(writer, queries, store, beir, progress_bar=False)
    result = evaluate(writer, queries, store, beir, progress_bar=False, allow_other_encoder=True)
    assert result.reused_index
    same = DualEncoderTextEmbedder(model=tiny_bert, recipe="minilm")
    assert evaluate(writer, same, store, beir, progress_bar=False, top_k=5).reused_index


# --- LangChain -------------------------------------------------------------------------------------------------------


def test_langchain_store_checks_the_same_record(tiny_bert: str, tmp_path: Path, monkeypatch) -> None:
    from simlm_haystack.langchain import DualEncoderEmbeddings, DualEncoderQdrantVectorStore

    path = str(tmp_path / "q")
    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = qdrant_document_store(writer, path=path, index="docs")
    index_documents(_docs(), writer, store, progress_bar=False)
    recorded = read_identity(store)
    store.close()

    spy = _ForwardSpy(monkeypatch)
    with pytest.raises(EncoderMismatchError):
        DualEncoderQdrantVectorStore.from_existing_collection(
            "docs", DualEncoderEmbeddings(model=tiny_bert, recipe="simlm"), path=path
        )
    assert spy.calls == 0
    same = DualEncoderQdrantVectorStore.from_existing_collection(
        "docs", DualEncoderEmbeddings(model=tiny_bert, recipe="minilm"), path=path
    )
    assert len(same.similarity_search("topic 1", k=2)) == 2
    same.client.close()

    created = DualEncoderQdrantVectorStore.from_texts(
        ["a text", "another"], DualEncoderEmbeddings(model=tiny_bert, recipe="simlm"), path=str(tmp_path / "lc")
    )
    identity = created.client.get_collection(created.collection_name).config.metadata[METADATA_KEY]
    assert EncoderIdentity.from_dict(identity, "x").recipe["name"] == "simlm"
    assert EncoderIdentity.from_dict(identity, "x").fingerprint == recorded.fingerprint  # same weights
    created.client.close()


# --- empty queries ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   \n\t "])
def test_empty_query_is_one_clear_error(tiny_bert: str, query: str) -> None:
    from simlm_haystack.langchain import DualEncoderEmbeddings

    with pytest.raises(EmptyQueryError, match="nothing to search for") as raised:
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm").run(query)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(EmptyQueryError):
        DualEncoderEmbeddings(model=tiny_bert, recipe="simlm").embed_query(query)
    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    embedder.warm_up()
    with pytest.raises(EmptyQueryError, match="Query 2 of 2"):
        embedder.encoder.encode("query", ["fine", query])


# --- the command line ------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_cli_refuses_simlm_search_on_a_minilm_collection(
    minilm_path: str, sample_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    where = ["--qdrant-path", str(tmp_path / "q"), "--index", "scifact", "--model", minilm_path]
    assert main(["index", str(sample_dir / "corpus.jsonl"), *where, "--recipe", "minilm", "--quiet"]) == 0
    capsys.readouterr()
    spy = _ForwardSpy(monkeypatch)
    assert main(["search", "Vitamin D and bone density", *where, "--recipe", "simlm"]) == 2
    error = capsys.readouterr().err
    assert spy.calls == 0
    assert error.startswith("simlm-haystack search: error: Qdrant Edge collection 'scifact'")
    assert "recipe 'minilm'" in error and "recipe 'simlm'" in error and "--allow-other-encoder" in error
    print(error, file=__import__("sys").stderr)  # shown with -s: the message a user sees

    long_query = "vitamin D " * 10_000
    code = main(["search", long_query, *where, "--recipe", "simlm", "--allow-other-encoder", "--top-k", "3"])
    out = capsys.readouterr().out
    assert code == 0 and len(out) < 2_000 and "… (100000 characters)" in out
    assert main(["search", "Vitamin D and bone density", *where, "--recipe", "minilm", "--top-k", "3"]) == 0


def test_cli_reindex_replaces_a_collection_of_another_recipe(tiny_bert: str, tmp_path: Path, capsys) -> None:
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl", [{"_id": d.id, "title": d.meta["title"], "text": d.content} for d in _docs()]
    )
    for engine in ENGINES:
        where = ["--qdrant-path", str(tmp_path / engine), "--engine", engine, "--model", tiny_bert, "--quiet"]
        assert main(["index", str(corpus), *where, "--recipe", "minilm"]) == 0
        assert main(["index", str(corpus), *where, "--recipe", "simlm"]) == 2
        assert "--reindex" in capsys.readouterr().err
        assert main(["index", str(corpus), *where, "--recipe", "simlm", "--reindex"]) == 0
        assert "Wrote 6 documents" in capsys.readouterr().out
        search = ["search", "topic 1", *where[:-1], "--recipe", "simlm", "--top-k", "2"]
        assert main(search) == 0 and capsys.readouterr().out.count("  1. ") == 1


@pytest.mark.parametrize("query", ["", "  "])
def test_cli_empty_query_is_refused_before_a_model_is_loaded(query: str, capsys) -> None:
    assert main(["search", "fine", query, "--model", "no/such-model", "--recipe", "simlm"]) == 2
    assert "Query 2 of 2 is" in capsys.readouterr().err


def test_push_carries_the_record_and_refuses_a_target_of_another_encoder(tiny_bert: str, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    from simlm_haystack.stores.push import push_collection

    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = edge_document_store(writer, path=str(tmp_path / "edge"), index="docs")
    index_documents(_docs(), writer, store, progress_bar=False)
    recorded = read_identity(store)
    store.close()
    target = QdrantClient(":memory:")
    push_collection(str(tmp_path / "edge"), "docs", target, progress_bar=False)
    assert target.get_collection("docs").config.metadata[METADATA_KEY] == recorded.to_dict()
    push_collection(str(tmp_path / "edge"), "docs", target, progress_bar=False)  # resumed: same record, fine

    other = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = qdrant_document_store(other, index="x", location=":memory:")
    index_documents(_docs(), other, store, progress_bar=False)
    target.create_collection("taken", vectors_config=target.get_collection("docs").config.params.vectors)
    target.update_collection("taken", metadata={METADATA_KEY: read_identity(store).to_dict()})
    target.upsert("taken", points=[models.PointStruct(id=1, vector=[0.1] * 32)])
    with pytest.raises(EncoderMismatchError, match="Target collection 'taken' was filled by another encoder"):
        push_collection(str(tmp_path / "edge"), "docs", target, target_index="taken", progress_bar=False)


def test_differences_name_the_weights_and_each_recipe_field() -> None:
    fields = {"name": "a", "pooling": "cls", "normalize": True, "similarity": "cosine", "query_max_length": 32}
    first = EncoderIdentity(model="m", fingerprint="0" * 32, recipe=fields)
    assert (
        first.differences(EncoderIdentity(model="elsewhere/m", fingerprint="0" * 32, recipe={**fields, "name": "b"}))
        == []
    )
    second = EncoderIdentity(model="m", fingerprint="1" * 32, recipe={**fields, "pooling": "mean"})
    assert first.differences(second) == ["the model weights", "the recipe's pooling ('cls' vs 'mean')"]
    assert first.describe() == "model 'm', recipe 'a', weights 000000000000"
    assert EncoderIdentity.from_dict(first.to_dict(), "x") == first
    with pytest.raises(StoreError, match="malformed"):
        EncoderIdentity.from_dict({"model": "m"}, "Collection 'c'")


def test_fingerprint_ignores_the_pooler_no_encoder_reads(tiny_bert: str) -> None:
    """tiny_bert, like SimLM-shaped checkpoints, is saved without a pooler: transformers initialises one at
    random on every load, so hashing it would give the same weights another fingerprint in every process."""
    import torch

    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    embedder.warm_up()
    loaded = embedder.encoder.loaded
    before = model_fingerprint(loaded.model, loaded.tokenizer)
    pooler = loaded.model.pooler.dense.weight
    saved = pooler.detach().clone()
    with torch.no_grad():
        pooler.add_(1.0)
    try:
        assert model_fingerprint(loaded.model, loaded.tokenizer) == before
    finally:
        with torch.no_grad():
            pooler.copy_(saved)


def test_a_retriever_built_on_an_empty_collection_checks_again_once_another_encoder_fills_it(
    tiny_bert: str, tmp_path: Path
) -> None:
    store = edge_document_store("simlm", embedding_dim=32, path=str(tmp_path / "q"))
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store, top_k=2)
    assert retriever.run(query="topic 1")["documents"] == []
    writer = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    index_documents(_docs(), writer, store, progress_bar=False)
    with pytest.raises(EncoderMismatchError):
        retriever.run(query="topic 1")
    store.close()


# --- the sparse side (issue 18): a hybrid collection keeps its BM25 settings in its identity ----------------


def _hybrid_store(engine: str, embedder: Any, path: Path, index: str = "docs") -> Any:
    if engine == "edge":
        return edge_document_store(embedder, path=str(path), index=index, use_sparse_embeddings=True)
    return qdrant_document_store(embedder, path=str(path), index=index, use_sparse_embeddings=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dense_only_writer_into_a_hybrid_collection_is_refused_before_encoding(
    tiny_bert: str, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = _hybrid_store(engine, embedder, tmp_path)
    index_documents(_docs(), embedder, store, retrieval="hybrid", progress_bar=False)
    assert read_identity(store).sparse == {
        "k": 1.2,
        "b": 0.75,
        "avg_len": 256.0,
        "language": "english",
        "stemmer": True,
        "stopwords": True,
        "max_token_len": 40,
    }
    spy = _ForwardSpy(monkeypatch)
    with pytest.raises(EncoderMismatchError, match=r"differ in the BM25 sparse side \(.*k=1\.2.* vs none\)"):
        index_documents(_docs(8), embedder, store, progress_bar=False)  # dense only: no BM25 vectors
    with pytest.raises(EncoderMismatchError, match=r"BM25 sparse side"):  # other BM25 settings
        index_documents(_docs(8), embedder, store, retrieval="hybrid", bm25={"k": 0.9}, progress_bar=False)
    with pytest.raises(EncoderMismatchError, match=r"BM25 sparse side"):
        build_indexing_pipeline(embedder, store).run({"embedder": {"documents": _docs(8)}})
    assert spy.calls == 0
    assert store.count_documents() == 6
    store.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_readers_are_compared_on_the_sides_they_search(
    tiny_bert: str, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    hybrid = _hybrid_store(engine, embedder, tmp_path / "hybrid")
    index_documents(_docs(), embedder, hybrid, retrieval="hybrid", progress_bar=False)
    # The same model searches a hybrid collection densely, by BM25 alone, and hybrid.
    for retrieval in ("dense", "sparse", "hybrid"):
        retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=hybrid, retrieval=retrieval)
        assert len(retriever.run(query="topic 1")["documents"]) == 6
    # BM25 alone needs no dense model: another recipe's does not matter to it, and nothing is encoded.
    spy = _ForwardSpy(monkeypatch)
    sparse_only = DualEncoderRetriever(model=tiny_bert, recipe="minilm", document_store=hybrid, retrieval="sparse")
    assert sparse_only.run(query="topic 1")["documents"]
    assert spy.calls == 0
    with pytest.raises(EncoderMismatchError, match=r"BM25 sparse side"):  # BM25 of other settings
        DualEncoderRetriever(
            model=tiny_bert, recipe="simlm", document_store=hybrid, retrieval="sparse", bm25={"stemmer": False}
        ).run(query="topic 1")
    hybrid.close()

    # A hybrid query on a collection indexed dense-only (in a layout that could hold BM25 vectors) is refused.
    dense = _hybrid_store(engine, embedder, tmp_path / "dense")
    index_documents(_docs(), embedder, dense, progress_bar=False)
    spy.calls = 0
    with pytest.raises(EncoderMismatchError, match=r"BM25 sparse side \(none vs"):
        DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=dense, retrieval="hybrid").run(
            query="topic 1"
        )
    assert spy.calls == 0
    dense.close()


def test_cli_refuses_a_hybrid_search_of_a_dense_collection_in_one_line(
    tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl", [{"_id": d.id, "title": d.meta["title"], "text": d.content} for d in _docs()]
    )
    common = ["--model", tiny_bert, "--recipe", "simlm", "--qdrant-path", str(tmp_path / "q"), "--index", "docs"]
    assert main(["index", str(corpus), *common, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "topic 1", *common, "--retrieval", "hybrid"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "sparse vectors" in error, error
    assert main(["index", str(corpus), *common, "--index", "hybrid", "--retrieval", "hybrid", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "topic 1", *common, "--index", "hybrid", "--retrieval", "hybrid"]) == 0
    assert "T1" in capsys.readouterr().out
