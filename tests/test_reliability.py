"""Nothing lost, nothing crashes: interrupted indexing, store failures, concurrency, secrets, scale."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.utils import Secret

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    index_documents,
    qdrant_document_store,
)
from simlm_haystack.errors import StoreError
from simlm_haystack.stores import edge_document_store
from simlm_haystack.stores import qdrant as qdrant_module

KILLABLE_INDEXER = textwrap.dedent(
    """
    import sys
    from haystack import Document
    from simlm_haystack import DualEncoderDocumentEmbedder, edge_document_store, index_documents, qdrant_document_store

    model, path, engine, retrieval = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    embedder = DualEncoderDocumentEmbedder(model=model, recipe="simlm", progress_bar=False)
    open_store = edge_document_store if engine == "edge" else qdrant_document_store
    store = open_store(embedder, path=path, index="docs", use_sparse_embeddings=retrieval == "hybrid")
    original_run = embedder.run

    encoded_chunks = 0

    def run_and_report(documents):
        global encoded_chunks
        result = original_run(documents)
        encoded_chunks += 1
        print("encoded", len(documents), flush=True)
        if encoded_chunks == 3:  # wait here for the test's SIGKILL: a fast machine would otherwise finish first
            sys.stdin.readline()
        return result

    embedder.run = run_and_report

    def documents():
        for i in range(40):
            yield Document(id=f"doc-{i}", content=f"document number {i}", meta={"title": f"t{i}"})

    index_documents(documents(), embedder, store, retrieval=retrieval, chunk_size=4, progress_bar=False)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize(("engine", "retrieval"), [("local", "dense"), ("edge", "dense"), ("edge", "hybrid")])
def test_killed_indexing_resumes_without_loss_duplicates_or_re_encoding(
    tiny_bert: str, tmp_path: Path, engine: str, retrieval: str
) -> None:
    path = str(tmp_path / engine)
    script = tmp_path / "indexer.py"
    script.write_text(KILLABLE_INDEXER)
    process = subprocess.Popen(
        [sys.executable, str(script), tiny_bert, path, engine, retrieval],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # This checkout's package, whichever one the environment has installed.
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    encoded_before_kill = 0
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("encoded"):
            encoded_before_kill += 1
        if encoded_before_kill == 3:  # SIGKILL mid-run: no cleanup, no flush, no close, Edge's lock left behind
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    open_store = edge_document_store if engine == "edge" else qdrant_document_store
    store = open_store(embedder, path=path, index="docs")  # a dead process's lock does not stop it; layout as created
    survivors = store.count_documents()
    assert 0 < survivors < 40
    if engine == "edge":  # the two chunks whose writes returned before the third was encoded survive the kill
        assert survivors >= 8
    encoded = []
    original_run = embedder.run
    with mock.patch.object(embedder, "run", side_effect=lambda docs: encoded.extend(docs) or original_run(docs)):
        documents = [
            Document(id=f"doc-{i}", content=f"document number {i}", meta={"title": f"t{i}"}) for i in range(40)
        ]
        written = index_documents(documents, embedder, store, retrieval=retrieval, chunk_size=4, progress_bar=False)
    assert store.count_documents() == 40
    stored = store.filter_documents()
    assert sorted(d.id for d in stored) == sorted(d.id for d in documents)
    assert written == len(encoded) == 40 - survivors  # only the missing documents were encoded again
    # Hybrid: every document has its BM25 vector, the survivors' as the new ones' (one writer, one identity).
    assert all((d.sparse_embedding is not None) == (retrieval == "hybrid") for d in stored)
    store.close()


def test_changed_documents_are_re_encoded_unchanged_ones_skipped(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder)
    documents = [Document(id=str(i), content=f"text {i}") for i in range(6)]
    assert index_documents(documents, embedder, store, progress_bar=False) == 6
    changed = [*documents[:5], Document(id="5", content="new text")]
    assert index_documents(changed, embedder, store, progress_bar=False) == 1
    assert store.get_documents_by_id(["5"])[0].content == "new text"
    assert index_documents(changed, embedder, store, progress_bar=False, skip_existing=False) == 6
    assert store.count_documents() == 6


def test_unreachable_server_is_one_clear_error(tiny_bert: str) -> None:
    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    with pytest.raises(StoreError, match=r"Cannot reach Qdrant at http://127\.0\.0\.1:9"):
        qdrant_document_store(embedder, url="http://127.0.0.1:9", timeout=2)


def test_full_disk_stops_with_count_and_how_to_resume(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder)
    original = store.write_documents
    calls = {"n": 0}

    def fill_disk_on_third_chunk(documents, policy):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(documents, policy)

    documents = [Document(id=str(i), content=f"text {i}") for i in range(20)]
    with (
        mock.patch.object(store, "write_documents", side_effect=fill_disk_on_third_chunk),
        pytest.raises(StoreError, match=r"failed after 8 documents were written.*No space left.*run the same command"),
    ):
        index_documents(documents, embedder, store, chunk_size=4, progress_bar=False)
    assert store.count_documents() == 8
    assert index_documents(documents, embedder, store, chunk_size=4, progress_bar=False) == 12
    assert store.count_documents() == 20


def test_transient_errors_are_retried_with_backoff(tiny_bert: str) -> None:
    from qdrant_client.http.exceptions import ResponseHandlingException

    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder)
    original = store.write_documents
    failures = iter([ResponseHandlingException(ConnectionError("reset")), ResponseHandlingException(TimeoutError())])

    def flaky(documents, policy):
        error = next(failures, None)
        if error is not None:
            raise error
        return original(documents, policy)

    with mock.patch.object(store, "write_documents", side_effect=flaky), mock.patch("time.sleep") as sleep:
        written = index_documents([Document(id="a", content="x")], embedder, store, progress_bar=False)
    assert written == 1
    assert [call.args[0] for call in sleep.call_args_list] == [1.0, 2.0]  # exponential backoff


def test_concurrent_threads_and_tasks_give_serial_vectors(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False, batch_size=3)
    batches = [[Document(content=f"batch {b} text {i} " * (i + 1)) for i in range(7)] for b in range(8)]
    serial = [[d.embedding for d in embedder.run(batch)["documents"]] for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda batch: [d.embedding for d in embedder.run(batch)["documents"]], batches))
    np.testing.assert_allclose(np.array(threaded), np.array(serial), rtol=0, atol=1e-6)

    import asyncio

    async def all_at_once() -> list:
        results = await asyncio.gather(*(embedder.run_async(batch) for batch in batches))
        return [[d.embedding for d in result["documents"]] for result in results]

    np.testing.assert_allclose(np.array(asyncio.run(all_at_once())), np.array(serial), rtol=0, atol=1e-6)


def test_secrets_never_appear_in_dicts_yaml_or_errors(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_API_KEY", "qdrant-secret-value")
    monkeypatch.setenv("HF_TOKEN", "hf-secret-value")
    store = qdrant_document_store(
        "simlm",
        embedding_dim=32,
        url="http://127.0.0.1:9",
        api_key=Secret.from_env_var("QDRANT_API_KEY"),
        check_collection=False,
    )
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store)
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    serialised = json.dumps(retriever.to_dict()) + pipeline.dumps()
    assert "qdrant-secret-value" not in serialised and "hf-secret-value" not in serialised
    assert "QDRANT_API_KEY" in serialised
    with pytest.raises(StoreError) as error:
        qdrant_document_store(
            "simlm",
            embedding_dim=32,
            url="http://127.0.0.1:9",
            timeout=2,
            api_key=Secret.from_env_var("QDRANT_API_KEY"),
            https=False,
        )
    assert "qdrant-secret-value" not in str(error.value)


def test_remote_code_is_off_by_default(tiny_bert: str) -> None:
    from simlm_haystack import models

    models.clear_cache()
    with mock.patch.object(models.AutoModel, "from_pretrained", wraps=models.AutoModel.from_pretrained) as load:
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm").warm_up()
    assert load.call_args.kwargs["trust_remote_code"] is False
    assert (
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm").to_dict()["init_parameters"]["trust_remote_code"]
        is False
    )


def test_embedded_mode_scale_warning_once(tiny_bert: str, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(qdrant_module, "EMBEDDED_QDRANT_LIMIT", 3)
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(embedder, index="scale_test")
    with caplog.at_level(logging.WARNING, logger="simlm_haystack.stores.qdrant"):
        index_documents([Document(id=str(i), content="x") for i in range(5)], embedder, store, progress_bar=False)
        index_documents([Document(id=str(i), content="y") for i in range(5)], embedder, store, progress_bar=False)
    warnings = [r for r in caplog.records if "local mode, which searches them one by one" in r.getMessage()]
    assert len(warnings) == 1
    assert all(way in warnings[0].getMessage() for way in ("url=", "--engine edge", "simlm-haystack push"))


def test_cluster_settings_reach_the_store() -> None:
    store = qdrant_document_store(
        "tas-b", embedding_dim=8, url="http://127.0.0.1:9", shard_number=3, replication_factor=2, check_collection=False
    )
    assert (store.shard_number, store.replication_factor) == (3, 2)
