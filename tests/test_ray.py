"""Encoding and indexing with Ray Data, on one local Ray cluster for the session (two CPUs, no dashboard).

Each check is against an independent computation: vectors against ``DualEncoder.encode`` in this process, a
collection against the one :func:`~simlm_haystack.index_documents` writes (ids, payloads, vectors, identity and
top-10), a killed worker against the corpus itself. Starting a worker imports torch, transformers and Haystack
(tens of seconds on a loaded machine), so the tests share jobs where they can and keep to one or two workers.
Tests against a Qdrant server run when ``QDRANT_URL`` is set.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl
from haystack import Document

from simlm_haystack import (
    DataError,
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    EncoderMismatchError,
    edge_document_store,
    index_documents,
    load_model,
    qdrant_document_store,
)
from simlm_haystack.corpus import read_documents
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.errors import SettingsError
from simlm_haystack.recipes import get_recipe
from simlm_haystack.stores import read_identity, store_support

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from simlm_haystack.distributed import BatchReport, encode_with_ray, index_with_ray, ray_cluster  # noqa: E402
from simlm_haystack.distributed.corpus import read_block, split_corpus  # noqa: E402

QUERIES = 12


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray cluster for every test here; its workers import this checkout of the package, and export and
    read ONNX graphs in a temporary cache, as this process does (they inherit its environment)."""
    from simlm_haystack.backends.onnx import CACHE_ENV

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cache_before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("onnx-cache"))
    before = _ray_worker_processes()
    try:
        with ray_cluster(num_cpus=2, object_store_memory=200 * 2**20) as cluster:
            here = importlib.util.find_spec("simlm_haystack").origin

            @ray.remote(num_cpus=0)
            def package_origin() -> str:
                return importlib.util.find_spec("simlm_haystack").origin

            assert ray.get(package_origin.remote()) == here, "Ray workers would import another copy of the package"
            yield cluster
        _assert_no_worker_outlives_the_cluster(before)
    finally:
        if cache_before is None:
            del os.environ[CACHE_ENV]
        else:
            os.environ[CACHE_ENV] = cache_before


def _ray_worker_processes() -> dict[int, str]:
    """Ray's worker processes on this machine (their titles start with ``ray::``), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if title.startswith("ray::"):
                found[int(entry.name)] = title
    return found


def _assert_no_worker_outlives_the_cluster(before: dict[int, str], wait_seconds: float = 20.0) -> None:
    """After ``ray.shutdown()`` every worker this cluster started must be gone: an orphaned ``MapWorker`` once kept
    taking CPU for hours after a benchmark's cluster had stopped (issue 19). Leftovers are killed, then reported."""
    deadline = time.monotonic() + wait_seconds  # Ray stops its workers asynchronously
    while (left := {pid: title for pid, title in _ray_worker_processes().items() if pid not in before}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray worker processes outlived their cluster: {sorted(left.items())}"


def _embedder(model: str, recipe: str, **settings) -> DualEncoderDocumentEmbedder:
    return DualEncoderDocumentEmbedder(
        model=model, recipe=recipe, local_files_only=True, progress_bar=False, **settings
    )


def _sample_corpus(sample_dir: Path) -> list[Document]:
    return list(read_documents(sample_dir / "corpus.jsonl"))


def _queries(sample_dir: Path) -> list[str]:
    lines = (sample_dir / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:QUERIES]]


def _stored(store) -> dict[str, Document]:
    return {document.id: document for document in store.filter_documents()}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _assert_same_collection(store, reference, *, sparse: bool = False) -> None:
    """Same ids, payloads (content, meta) and vectors (cosine >= 0.99999: the workers run one thread, this
    process two), and the same encoder identity (and sparse vectors, with ``sparse``)."""
    ours, theirs = _stored(store), _stored(reference)
    assert sorted(ours) == sorted(theirs)
    for document_id, expected in theirs.items():
        document = ours[document_id]
        assert (document.content, document.meta) == (expected.content, expected.meta)
        if sparse:
            assert document.sparse_embedding == expected.sparse_embedding
    ids = sorted(theirs)
    vectors = np.array([ours[i].embedding for i in ids])
    expected_vectors = np.array([theirs[i].embedding for i in ids])
    assert _cosines(vectors, expected_vectors).min() >= 0.99999
    identity, expected_identity = read_identity(store), read_identity(reference)
    assert identity is not None and expected_identity is not None
    if not sparse:  # a dense collection compared with a hybrid reference: the dense side alone
        expected_identity = replace(expected_identity, sparse=None)
    assert identity == expected_identity


def _assert_same_top10(store, reference, model: str, recipe: str, queries: list[str], *, hybrid: bool = False):
    text_embedder = DualEncoderTextEmbedder(model=model, recipe=recipe, local_files_only=True)
    for query in queries:
        embedding = text_embedder.run(query)["embedding"]
        if hybrid:
            from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder

            sparse = BM25SparseTextEmbedder().run(query)["sparse_embedding"]
            found = [
                store_support(s)
                .hybrid_retriever(top_k=10)
                .run(query_embedding=embedding, query_sparse_embedding=sparse)
                for s in (store, reference)
            ]
        else:
            found = [
                store_support(s).embedding_retriever(top_k=10).run(query_embedding=embedding)
                for s in (store, reference)
            ]
        ours, theirs = ([d.id for d in result["documents"]] for result in found)
        assert ours == theirs, query
        scores = [[d.score for d in result["documents"]] for result in found]
        np.testing.assert_allclose(scores[0], scores[1], atol=1e-5)


# --- the corpus cut into blocks (no Ray) -------------------------------------------------------------------------


def test_blocks_read_back_exactly_the_documents_of_the_file(tmp_path: Path, sample_dir: Path) -> None:
    lines = (sample_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:23]
    lines[4:4] = ["", "   "]  # blank lines are skipped, as read_documents skips them
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # no newline after the last line
    expected = list(read_documents(path))
    for size in (1, 5, 7, 23, 100):
        blocks, count = split_corpus(path, size)
        assert count == len(expected) == 23
        assert len(blocks) == -(-23 // size)
        assert [document for block in blocks for document in read_block(block)] == expected


def test_a_malformed_line_is_named_by_its_line_number(tmp_path: Path) -> None:
    good = {"_id": "a", "text": "fine"}
    path = write_jsonl(tmp_path / "corpus.jsonl", [good, good, "", '{"_id": "b", "text": ', good, "[1, 2]"])
    blocks, count = split_corpus(path, 2)
    assert count == 5
    assert read_block(blocks[0])  # lines 1-2
    with pytest.raises(DataError, match=rf"{path.resolve()}:4: not valid JSON"):
        read_block(blocks[1])  # lines 4-5 (line 3 is empty)
    with pytest.raises(DataError, match=rf"{path.resolve()}:6: expected a JSON object, got list"):
        read_block(blocks[2])
    path.write_bytes(b'{"_id": "a", "text": "fine"}\n{"_id": "c", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r":2: not UTF-8"):
        read_block(split_corpus(path, 10)[0][0])
    with pytest.raises(DataError, match="no such file"):
        split_corpus(tmp_path / "missing.jsonl", 10)


def test_stores_workers_cannot_reach_and_impossible_resources_are_refused_before_anything_loads(tiny_bert) -> None:
    embedder = _embedder(tiny_bert, "simlm")
    for store in (qdrant_document_store(embedder), edge_document_store(embedder)):
        with pytest.raises(SettingsError, match="in this process's memory"):
            index_with_ray("unused.jsonl", embedder, store)
        store.close()
    assert embedder.encoder is None  # refused before the model was loaded
    store = qdrant_document_store(embedder, path=None, location=":memory:")
    with pytest.raises(SettingsError, match="runs on the CPU"):
        index_with_ray("unused.jsonl", _embedder(tiny_bert, "simlm", backend="onnx"), store, gpus_per_worker=1)
    with pytest.raises(SettingsError, match="workers must be a positive integer"):
        encode_with_ray("unused.jsonl", embedder, workers=0)


def test_a_worker_retries_transient_store_errors_and_then_says_what_to_do(tiny_bert: str) -> None:
    """The server path of a worker (no Ray needed): qdrant-haystack's store rebuilt from the driver's settings,
    transient errors retried with backoff, a lasting one a StoreError saying that what was written is kept."""
    from simlm_haystack.distributed.targets import StoreWriter, store_settings
    from simlm_haystack.errors import StoreError

    embedder = _embedder(tiny_bert, "simlm")
    writer = StoreWriter(*store_settings(qdrant_document_store(embedder)), retries=2, backoff_seconds=0.0)
    documents = [Document(id="a", content="x", embedding=[0.5] * 32)]
    write = writer.store.write_documents
    failures = [ConnectionError("reset"), TimeoutError("slow")]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return write(*args, **kwargs)

    writer.store.write_documents = flaky
    assert writer.write(documents) == 1
    assert writer.already_written(documents) == {"a"}

    def down(*args, **kwargs):
        raise ConnectionError("down")

    writer.store.write_documents = down
    with pytest.raises(StoreError, match=r"A Ray worker's write on collection 'Document' failed .*Everything written"):
        writer.write(documents)


def test_without_ray_installed_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from simlm_haystack.distributed.cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray then raises ImportError
    with pytest.raises(SettingsError, match=r"pip install 'simlm-haystack\[ray\]'"):
        import_ray()


# --- on the Ray cluster ------------------------------------------------------------------------------------------


def _encode_and_compare(source, embedder: DualEncoderDocumentEmbedder, documents: list[Document], **ray_settings):
    rows = encode_with_ray(source, embedder, **ray_settings).take_all()
    by_id = {row["id"]: np.asarray(row["embedding"], dtype=np.float32) for row in rows}
    assert sorted(by_id) == sorted(document.id for document in documents)
    encoder = DualEncoder(
        load_model(embedder.model),
        get_recipe(embedder.recipe.name),
        backend=embedder.backend,
        precision=embedder.precision,
    )
    expected = encoder.encode(
        "document", [d.content for d in documents], [d.meta.get("title") for d in documents], batch_size=8
    )
    cosines = _cosines(np.stack([by_id[d.id] for d in documents]), expected)
    assert cosines.min() >= 0.99999


def test_vectors_equal_dual_encoder_encode(ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path) -> None:
    documents = _sample_corpus(sample_dir)[:60]
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": d.id, **d.meta, "text": d.content} for d in documents])
    _encode_and_compare(path, _embedder(tiny_bert, "simlm"), documents, workers=2, chunk_size=16)


@pytest.mark.slow
def test_vectors_of_a_ray_dataset_equal_dual_encoder_encode(ray_session, tiny_distilbert: str, sample_dir: Path):
    documents = _sample_corpus(sample_dir)[:40]
    dataset = ray.data.from_items([{"id": d.id, "title": d.meta["title"], "text": d.content} for d in documents])
    _encode_and_compare(dataset, _embedder(tiny_distilbert, "tas-b"), documents, workers=1, chunk_size=16)


@pytest.mark.slow
def test_int8_onnx_vectors_equal_dual_encoder_encode(ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path):
    documents = _sample_corpus(sample_dir)[:30]
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": d.id, **d.meta, "text": d.content} for d in documents])
    embedder = _embedder(tiny_bert, "simlm", backend="onnx", precision="int8")
    embedder.warm_up()  # exported here once; the workers read the graph from the same cache
    _encode_and_compare(path, embedder, documents, workers=1, chunk_size=16)


def test_a_killed_worker_loses_nothing_and_the_collection_is_what_index_documents_writes(
    ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path
) -> None:
    """Edge, two workers; the worker that reports first is killed (SIGKILL, by its pid) while most blocks are still
    to do, and a few blocks later the writer actor that holds the collection is killed too. Ray restarts each and
    runs again what they were doing; the collection ends with exactly the corpus, as index_documents writes it
    (ids, payloads, vectors, identity).

    (No top-10 here: a tiny random model scores all 300 documents within 1e-4 of each other, so float rounding
    reorders its ties; the MiniLM tests below compare top-10s.)"""
    embedder = _embedder(tiny_bert, "simlm")
    corpus = sample_dir / "corpus.jsonl"
    reference = qdrant_document_store(embedder)
    index_documents(read_documents(corpus), embedder, reference, progress_bar=False)
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="sample")
    killed: list[int] = []
    after_kill: list[BatchReport] = []

    def writer_pid() -> int:
        from simlm_haystack.distributed.targets import WRITER_ACTOR_PREFIX

        actors = ray.util.list_named_actors(all_namespaces=True)
        (writer,) = [actor for actor in actors if actor["name"].startswith(WRITER_ACTOR_PREFIX)]
        handle = ray.get_actor(writer["name"], namespace=writer["namespace"])
        return ray.get(handle.__ray_call__.remote(lambda _: os.getpid()))

    def kill_workers(report: BatchReport) -> None:
        if not killed:
            os.kill(report.worker_pid, signal.SIGKILL)
            killed.append(report.worker_pid)
            return
        after_kill.append(report)
        if len(after_kill) == 3:
            pid = writer_pid()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    report = index_with_ray(
        corpus, embedder, store, workers=2, chunk_size=15, progress_bar=False, on_batch=kill_workers
    )
    assert len(killed) == 2
    for pid in killed:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # those processes are gone
    assert len(after_kill) >= 15  # the first kill came with most of the 20 blocks still to report
    assert (report.documents, report.written + report.skipped, report.workers) == (300, 300, 2)
    assert store.count_documents() == 300
    _assert_same_collection(store, reference)
    store.close()


MINILM_DOCUMENTS = 150


@pytest.fixture(scope="module")
def minilm_reference(minilm_path: str, sample_dir: Path):
    """The first documents of the sample as index_documents writes them with MiniLM, dense and BM25 (in memory)."""
    documents = _sample_corpus(sample_dir)[:MINILM_DOCUMENTS]
    embedder = _embedder(minilm_path, "minilm")
    reference = qdrant_document_store(embedder, use_sparse_embeddings=True)
    index_documents(documents, embedder, reference, retrieval="hybrid", progress_bar=False)
    return documents, reference


@pytest.mark.slow
@pytest.mark.integration
def test_minilm_hybrid_edge_collection_has_the_top10_of_index_documents(
    ray_session, minilm_path: str, minilm_reference, sample_dir: Path, tmp_path: Path
) -> None:
    """Qdrant Edge, two workers, BM25 sparse vectors written in the same pass."""
    documents, reference = minilm_reference
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": d.id, **d.meta, "text": d.content} for d in documents])
    embedder = _embedder(minilm_path, "minilm")
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="sample", use_sparse_embeddings=True)
    report = index_with_ray(path, embedder, store, retrieval="hybrid", workers=2, chunk_size=25, progress_bar=False)
    assert (report.documents, report.written, report.skipped) == (MINILM_DOCUMENTS, MINILM_DOCUMENTS, 0)
    _assert_same_collection(store, reference, sparse=True)
    queries = _queries(sample_dir)
    _assert_same_top10(store, reference, minilm_path, "minilm", queries, hybrid=True)
    _assert_same_top10(store, reference, minilm_path, "minilm", queries)
    store.close()


@pytest.mark.slow
def test_hybrid_collection_in_local_mode_is_what_index_documents_writes(
    ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path
) -> None:
    """qdrant-client's local mode through the writer actor, BM25 sparse vectors written in the same pass, the corpus
    given as a Ray dataset. The same collection searches the same: the Edge test above compares MiniLM's top-10s."""
    documents = _sample_corpus(sample_dir)[:MINILM_DOCUMENTS]
    embedder = _embedder(tiny_bert, "simlm")
    reference = qdrant_document_store(embedder, use_sparse_embeddings=True)
    index_documents(documents, embedder, reference, retrieval="hybrid", progress_bar=False)
    store = qdrant_document_store(embedder, path=str(tmp_path / "local"), index="sample", use_sparse_embeddings=True)
    dataset = ray.data.from_items([{"_id": d.id, **d.meta, "text": d.content} for d in documents])
    report = index_with_ray(dataset, embedder, store, retrieval="hybrid", workers=1, chunk_size=50, progress_bar=False)
    assert (report.documents, report.written, report.skipped) == (MINILM_DOCUMENTS, MINILM_DOCUMENTS, 0)
    _assert_same_collection(store, reference, sparse=True)
    store.close()


def test_a_malformed_line_is_one_error_naming_it_and_what_was_written_stays(
    ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Then the fixed file, from the command line: only what is missing is written."""
    lines = (sample_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    good_line = lines[34]
    lines[34] = '{"_id": "broken", "text": '
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    embedder = _embedder(tiny_bert, "simlm")
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="sample")
    with pytest.raises(
        DataError,
        match=rf"^{path.resolve()}:35: not valid JSON \(.*\) \(the Ray job stopped; the "
        r"collection holds \d+ documents, written before the error and kept",
    ) as raised:
        index_with_ray(path, embedder, store, workers=1, chunk_size=10, progress_bar=False)
    assert "Traceback" not in str(raised.value)
    kept = _stored(store)
    assert kept  # blocks before the bad one were written
    expected = {d.id: d for d in read_documents(sample_dir / "corpus.jsonl")}
    for document_id, document in kept.items():
        assert (document.content, document.meta) == (expected[document_id].content, expected[document_id].meta)
    store.close()
    lines[34] = good_line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    from simlm_haystack.cli import main

    arguments = ["index", str(path), "--model", tiny_bert, "--recipe", "simlm", "--local-files-only"]
    arguments += ["--qdrant-path", str(tmp_path / "edge"), "--index", "sample", "--ray", "--workers", "1"]
    capsys.readouterr()
    status = main(arguments)
    printed = capsys.readouterr()
    assert status == 0, printed.err
    # nothing written twice
    assert f"1 Ray workers: {40 - len(kept)} documents written, {len(kept)} skipped" in printed.out
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="sample")
    assert sorted(_stored(store)) == sorted(d.id for d in read_documents(path))
    store.close()


@pytest.mark.slow
def test_a_worker_that_loads_other_weights_than_the_driver_refuses_to_encode(
    ray_session, tiny_bert: str, sample_dir: Path, tmp_path: Path
) -> None:
    """A cluster node holding another checkpoint at the same path: its worker checks the weights it loaded against
    the identity the driver checked the collection with, and encodes nothing."""
    import shutil

    from safetensors.torch import load_file, save_file

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_bert, checkpoint)
    embedder = _embedder(str(checkpoint), "simlm")
    embedder.warm_up()  # the driver's copy of the weights
    weights = load_file(checkpoint / "model.safetensors")
    save_file(
        {name: tensor + 0.01 if tensor.is_floating_point() else tensor for name, tensor in weights.items()},
        checkpoint / "model.safetensors",
    )
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="sample")
    with pytest.raises(EncoderMismatchError, match="Every node must hold the same checkpoint"):
        index_with_ray(sample_dir / "corpus.jsonl", embedder, store, workers=1, chunk_size=100, progress_bar=False)
    assert store.count_documents() == 0
    store.close()


@pytest.mark.integration
@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server at QDRANT_URL")
def test_every_worker_writes_to_a_qdrant_server(
    ray_session, minilm_path: str, minilm_reference, sample_dir: Path, tmp_path: Path
) -> None:
    from haystack.utils import Secret

    documents, reference = minilm_reference
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": d.id, **d.meta, "text": d.content} for d in documents])
    embedder = _embedder(minilm_path, "minilm")
    store = qdrant_document_store(
        embedder,
        url=os.environ["QDRANT_URL"],
        api_key=Secret.from_env_var("QDRANT_API_KEY", strict=False),
        index="simlm_haystack_ray_test",
        recreate_index=True,
        shard_number=2,
        write_consistency_factor=1,
    )
    report = index_with_ray(path, embedder, store, workers=2, chunk_size=25, progress_bar=False)
    assert (report.documents, report.written) == (MINILM_DOCUMENTS, MINILM_DOCUMENTS)
    _assert_same_collection(store, reference)
    _assert_same_top10(store, reference, minilm_path, "minilm", _queries(sample_dir))
    again = index_with_ray(path, embedder, store, workers=1, chunk_size=50, progress_bar=False)
    assert (again.written, again.skipped) == (0, MINILM_DOCUMENTS)
    store.close()
