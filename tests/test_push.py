"""push: an embedded collection copied into a Qdrant server or cluster collection, every point, resumably.

qdrant-client's local mode stands in for the server (the target is any QdrantClient); a test against a
real server runs when QDRANT_URL is set.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from haystack import Document
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from qdrant_client import QdrantClient
from qdrant_client.http import models
from qdrant_client.http.exceptions import ResponseHandlingException

from simlm_haystack.cli import main
from simlm_haystack.errors import CollectionMismatchError, StoreError
from simlm_haystack.stores import EdgeDocumentStore, qdrant_document_store
from simlm_haystack.stores.push import push_collection


def _documents(count: int, dim: int = 8, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    return [
        Document(
            id=f"doc-{i}",
            content=f"text {i}",
            meta={"title": f"title {i}", "n": i, "tags": ["a", str(i % 3)]},
            embedding=rng.standard_normal(dim).tolist() if i % 10 else None,  # every tenth has no vector
        )
        for i in range(count)
    ]


@pytest.fixture
def edge_collection(tmp_path: Path) -> tuple[str, list[Document]]:
    path = str(tmp_path / "edge")
    documents = _documents(95)
    store = EdgeDocumentStore(path=path, index="docs", embedding_dim=8, similarity="dot_product")
    store.write_documents(documents)
    store.close()
    return path, documents


def _source_points(path: str) -> dict[str, tuple[list[float] | None, dict]]:
    store = EdgeDocumentStore(path=path, index="docs", embedding_dim=8, similarity="dot_product")
    points = {
        str(record.id): (record.vector or None, record.payload)
        for batch in store.scroll_points(1000)
        for record in batch
    }
    store.close()
    return points


def _assert_target_holds_exactly(client: QdrantClient, name: str, source: dict) -> None:
    records, offset = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    assert offset is None
    assert {str(record.id) for record in records} == set(source)  # every id, nothing else, no duplicates
    for record in records:
        vector, payload = source[str(record.id)]
        assert record.payload == payload
        if vector is None:
            assert not record.vector
        elif client.get_collection(name).config.params.vectors.distance == models.Distance.COSINE:
            # A cosine collection stores unit vectors (local mode keeps what it was given and normalises later).
            np.testing.assert_allclose(record.vector, np.asarray(vector) / np.linalg.norm(vector), rtol=1e-5)
        else:
            np.testing.assert_allclose(record.vector, vector, rtol=1e-6)


def test_every_id_vector_and_payload_arrives_in_a_collection_of_the_same_size_and_distance(edge_collection) -> None:
    path, _ = edge_collection
    target = QdrantClient(":memory:")
    with mock.patch.object(target, "create_collection", wraps=target.create_collection) as create:
        report = push_collection(
            path, "docs", target, shard_number=3, replication_factor=2, batch_size=20, progress_bar=False
        )
    assert create.call_args.kwargs["shard_number"] == 3 and create.call_args.kwargs["replication_factor"] == 2
    assert report.source_points == report.copied == report.target_points == 95 and report.already_there == 0
    vectors = target.get_collection("docs").config.params.vectors
    assert (vectors.size, vectors.distance) == (8, models.Distance.DOT)
    _assert_target_holds_exactly(target, "docs", _source_points(path))

    # The server collection answers QdrantDocumentStore as the embedded one answered (same layout).
    server = QdrantDocumentStore(":memory:", index="docs", embedding_dim=8, similarity="dot_product")
    server._client = target
    edge = EdgeDocumentStore(path=path, index="docs", embedding_dim=8, similarity="dot_product")

    def readable(document: Document) -> tuple:  # QdrantDocumentStore gives [] where a document has no embedding
        return document.id, document.content, document.meta, document.embedding or None

    assert sorted(map(readable, server.filter_documents())) == sorted(map(readable, edge.filter_documents()))
    query = np.random.default_rng(1).standard_normal(8).tolist()
    expected = edge.embedding_retrieval(query, top_k=5)
    got = server._query_by_embedding(query, top_k=5)
    assert [d.id for d in got] == [d.id for d in expected]
    np.testing.assert_allclose([d.score for d in got], [d.score for d in expected], rtol=1e-5)
    edge.close()


def test_interrupted_push_resumes_to_exactly_the_collection(edge_collection) -> None:
    path, _ = edge_collection
    target = QdrantClient(":memory:")
    original_upsert = target.upsert
    calls = {"n": 0}

    def crash_on_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("connection lost")
        return original_upsert(*args, **kwargs)

    with (
        mock.patch.object(target, "upsert", side_effect=crash_on_third_batch),
        pytest.raises(StoreError, match=r"failed after 40 points were copied.*run the same push again"),
    ):
        push_collection(path, "docs", target, batch_size=20, progress_bar=False)
    assert target.count("docs").count == 40
    report = push_collection(path, "docs", target, batch_size=20, progress_bar=False)
    assert (report.copied, report.already_there, report.target_points) == (55, 40, 95)
    _assert_target_holds_exactly(target, "docs", _source_points(path))
    again = push_collection(path, "docs", target, batch_size=20, progress_bar=False)
    assert (again.copied, again.already_there, again.target_points) == (0, 95, 95)


def test_transient_target_errors_are_retried(edge_collection) -> None:
    path, _ = edge_collection
    target = QdrantClient(":memory:")
    original_upsert = target.upsert
    failures = iter([ResponseHandlingException(ConnectionError("reset"))])

    def flaky(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return original_upsert(*args, **kwargs)

    with mock.patch.object(target, "upsert", side_effect=flaky):
        report = push_collection(path, "docs", target, batch_size=50, backoff_seconds=0, progress_bar=False)
    assert report.target_points == 95


def test_local_mode_collection_is_pushed_too(tmp_path: Path) -> None:
    path = str(tmp_path / "local")
    store = qdrant_document_store("minilm", embedding_dim=8, path=path, index="docs")
    store.write_documents(_documents(30))
    store.close()
    target = QdrantClient(":memory:")
    report = push_collection(path, "docs", target, target_index="copy", progress_bar=False)
    assert report.target_points == report.copied == 30
    source = QdrantClient(path=path)
    records, _ = source.scroll("docs", limit=100, with_payload=True, with_vectors=True)
    source.close()
    _assert_target_holds_exactly(target, "copy", {str(r.id): (r.vector or None, r.payload) for r in records})
    assert target.get_collection("copy").config.params.vectors.distance == models.Distance.COSINE


def test_existing_target_of_another_size_or_distance_is_refused(edge_collection) -> None:
    path, _ = edge_collection
    target = QdrantClient(":memory:")
    target.create_collection("docs", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    with pytest.raises(CollectionMismatchError, match=r"cannot hold these vectors \(8-d, Dot\)"):
        push_collection(path, "docs", target, progress_bar=False)
    assert target.count("docs").count == 0
    with pytest.raises(StoreError, match="No collection 'nope'"):
        push_collection(path, "nope", target, progress_bar=False)


def test_cli_push(edge_collection, tmp_path: Path, capsys) -> None:
    path, _ = edge_collection
    server = QdrantClient(path=str(tmp_path / "server"))
    with mock.patch("qdrant_client.QdrantClient", return_value=server) as client_class:
        argv = ["push", "--qdrant-path", path, "--index", "docs", "--qdrant-url", "http://cluster:6333"]
        code = main([*argv, "--target-index", "moved", "--shard-number", "2", "--batch-size", "30", "--quiet"])
    assert code == 0
    assert client_class.call_args.kwargs["url"] == "http://cluster:6333"
    out = capsys.readouterr().out
    assert "95 points copied, 0 already there; the target holds 95 points, the source 95" in out
    server = QdrantClient(path=str(tmp_path / "server"))
    _assert_target_holds_exactly(server, "moved", _source_points(path))
    server.close()


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server at QDRANT_URL")
def test_push_to_a_qdrant_server(edge_collection) -> None:
    path, _ = edge_collection
    client = QdrantClient(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
    name = f"simlm_haystack_push_{uuid.uuid4().hex[:8]}"
    try:
        report = push_collection(path, "docs", client, target_index=name, batch_size=20, progress_bar=False)
        assert report.target_points == 95
        _assert_target_holds_exactly(client, name, _source_points(path))
        assert push_collection(path, "docs", client, target_index=name, progress_bar=False).copied == 0
    finally:
        client.delete_collection(name)
        client.close()
