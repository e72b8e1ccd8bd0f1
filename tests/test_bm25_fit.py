"""Issue 27: BM25's ``avg_len="corpus"`` is measured at indexing in Bm25's own tokens, kept in the collection's
encoder record, adopted by later writes, checked on query, carried by ``push``, and refused when it disagrees;
a record written before the field existed still opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document
from qdrant_client import QdrantClient

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    EncoderMismatchError,
    build_indexing_pipeline,
    index_documents,
)
from simlm_haystack.errors import SettingsError
from simlm_haystack.sparse import BM25Encoder, BM25Settings
from simlm_haystack.stores import edge_document_store, read_identity
from simlm_haystack.stores.identity import EncoderIdentity, check_identity, qdrant_collection_identity
from simlm_haystack.stores.push import push_collection

CORPUS = {"avg_len": "corpus"}


def _docs(count: int = 6, words: int = 4) -> list[Document]:
    return [
        Document(
            id=f"d{i}",
            content=" ".join(f"topic{i} word{j}" for j in range(words)),
            meta={"title": f"Title {i}"},
        )
        for i in range(count)
    ]


def _lengths(documents: list[Document]) -> list[int]:
    return BM25Encoder().document_lengths([d.content for d in documents], [d.meta["title"] for d in documents])


def test_lengths_are_bm25_tokens_after_stopwords_and_measured_settings_say_on_how_many() -> None:
    # fox x3, jumps, lazy (the, over, the are stopwords) = 5; the title adds "paris" (and "the" is stopped).
    assert BM25Encoder().document_lengths(["The fox jumps over the lazy fox, FOX!"], ["The Paris"]) == [6]
    settings = BM25Settings(avg_len="corpus").measured(["a fox", "fox fox jumps high"], None)
    assert (settings.avg_len, settings.avg_len_documents) == (2.5, 2)
    assert BM25Settings(avg_len=100).measured(["x"]) == BM25Settings(avg_len=100)  # a number stays
    with pytest.raises(SettingsError, match="measured on the documents"):
        BM25Encoder(BM25Settings(avg_len="corpus")).encode_documents(["a fox"])
    with pytest.raises(SettingsError, match="avg_len must be a finite number or 'corpus'"):
        BM25Settings(avg_len="mean")
    # A query's vector does not depend on it.
    assert BM25Encoder(BM25Settings(avg_len="corpus")).encode_query("fox") == BM25Encoder().encode_query("fox")


def test_avg_len_is_measured_stored_adopted_checked_and_refused(tiny_bert: str, tmp_path: Path) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = edge_document_store(embedder, path=str(tmp_path), index="docs", use_sparse_embeddings=True)
    documents = _docs()
    index_documents(documents, embedder, store, retrieval="hybrid", bm25=CORPUS, progress_bar=False)
    lengths = _lengths(documents)
    sparse = read_identity(store).sparse
    assert sparse["avg_len"] == pytest.approx(sum(lengths) / len(lengths)) and sparse["avg_len_documents"] == 6
    measured = BM25Settings.from_dict(sparse)
    [stored] = store.get_documents_by_id(["d0"])
    [expected] = BM25Encoder(measured).encode_documents([documents[0].content], [documents[0].meta["title"]])
    assert stored.sparse_embedding.indices == list(expected.indices)
    assert stored.sparse_embedding.values == pytest.approx(list(expected.values))
    # A later write with "corpus" adopts the kept value (longer documents do not move it) ...
    longer = [Document(id=f"l{i}", content=" ".join(["growth"] * 40), meta={"title": "x"}) for i in range(3)]
    index_documents(longer, embedder, store, retrieval="hybrid", bm25=CORPUS, progress_bar=False)
    assert read_identity(store).sparse == sparse
    [grown] = store.get_documents_by_id(["l0"])
    [expected] = BM25Encoder(measured).encode_documents([longer[0].content], ["x"])
    assert grown.sparse_embedding.values == pytest.approx(list(expected.values))
    # ... the measured number itself is the same settings; another avg_len (the default 256) is refused.
    index_documents(
        _docs(2), embedder, store, retrieval="hybrid", bm25={"avg_len": measured.avg_len}, progress_bar=False
    )
    with pytest.raises(EncoderMismatchError, match=r"BM25 sparse side \(avg_len=.* vs 256\.0\)"):
        index_documents(_docs(2), embedder, store, retrieval="hybrid", progress_bar=False)
    # Queries: "corpus" (or the number) searches it; another avg_len is refused before anything is encoded.
    for bm25 in (CORPUS, {"avg_len": measured.avg_len}):
        retriever = DualEncoderRetriever(
            model=tiny_bert, recipe="minilm", document_store=store, retrieval="hybrid", bm25=bm25
        )
        assert retriever.run(query="topic1 word2")["documents"]
    with pytest.raises(EncoderMismatchError, match=r"avg_len="):
        DualEncoderRetriever(model=tiny_bert, recipe="minilm", document_store=store, retrieval="sparse").run(
            query="topic1"
        )
    # An indexing pipeline with "corpus" adopts the kept value too.
    pipeline = build_indexing_pipeline(embedder, store, retrieval="hybrid", bm25=CORPUS)
    pipeline.run({"embedder": {"documents": _docs(1)}})
    store.close()

    # push carries the value: the target's record holds it, and refuses a writer of another avg_len.
    client = QdrantClient(":memory:")
    push_collection(str(tmp_path), "docs", client, target_index="pushed", progress_bar=False)
    target = qdrant_collection_identity(client, "pushed")
    assert target.identity().sparse == sparse
    other = EncoderIdentity.from_dict(read_identity_dict(sparse, avg_len=256.0), "x")
    with pytest.raises(EncoderMismatchError, match="avg_len"):
        check_identity(target, other, writes=False)
    client.close()


def read_identity_dict(sparse: dict, **changes: object) -> dict:
    return {"model": None, "fingerprint": None, "recipe": None, "sparse": {**sparse, **changes}}


def test_a_pipeline_cannot_measure_an_empty_collection_and_old_records_read_as_256(
    tiny_bert: str, tmp_path: Path
) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="minilm", progress_bar=False)
    store = edge_document_store(embedder, path=str(tmp_path), index="docs", use_sparse_embeddings=True)
    with pytest.raises(SettingsError, match="first documents written into an empty collection"):
        build_indexing_pipeline(embedder, store, retrieval="hybrid", bm25=CORPUS).run(
            {"embedder": {"documents": _docs()}}
        )
    assert store.count_documents() == 0
    store.close()
    # A record written before avg_len was kept: read as the old default, 256; never refused for lacking it.
    old = {"k": 1.2, "b": 0.75, "language": "english", "stemmer": True, "stopwords": True, "max_token_len": 40}
    recorded = EncoderIdentity(model=None, fingerprint=None, recipe=None, sparse=old)
    assert recorded.differences(EncoderIdentity(None, None, None, BM25Settings().to_dict()), reading=True) == []
    found = recorded.differences(EncoderIdentity(None, None, None, BM25Settings(avg_len=100).to_dict()))
    assert found == ["the BM25 sparse side (avg_len=256.0 vs 100.0)"]
    # "corpus" agrees only with a measured value, not with a fixed 256.
    assert recorded.differences(EncoderIdentity(None, None, None, BM25Settings(avg_len="corpus").to_dict()))
