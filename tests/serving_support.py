"""What the serving tests share: a free localhost port, a server started as a subprocess and always stopped, plain
HTTP calls (the standard library's, as any client), and a small collection indexed in-process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
SIMLM_HAYSTACK = str(Path(sys.executable).with_name("simlm-haystack"))
HAYHOOKS = str(Path(sys.executable).with_name("hayhooks"))
#: Questions about the first 40 documents of the SciFact sample.
QUERIES = (
    "Does vitamin D supplementation prevent bone fractures?",
    "kidney transplantation between living donors",
    "metformin and neurogenesis in diabetic rats",
)


def free_port() -> int:
    """A port nothing listens on now (the OS's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(
    url: str,
    body: Any = None,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 60,
) -> tuple[int, Any, str]:
    """``(status, JSON body or None, text)`` of one request; ``body`` is sent as JSON (``raw`` as it is)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text), text
    except json.JSONDecodeError:
        return status, None, text


class Server:
    """A server subprocess on ``127.0.0.1:port``; :meth:`stop` (or :meth:`kill`) always ends it.

    :param argv: The command (its port flag included).
    :param port: Where it listens.
    :param env: Variables added to this process's environment.
    :param cwd: Its working folder.
    """

    def __init__(self, argv: Sequence[str], port: int, *, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.mkdtemp(prefix="simlm-serve-")) / f"server-{port}.log"
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HAYSTACK_TELEMETRY_ENABLED": "False", **(env or {})}
        self._log = self.log.open("w")
        self.process = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=environment, cwd=cwd or REPOSITORY
        )

    def wait_ready(self, *, headers: dict[str, str] | None = None, timeout: float = 240) -> Server:
        """Wait until ``GET /status`` answers 200; fail with the server's output if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.output()}")
            try:
                if call(self.url + "/status", headers=headers, timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no lock released by the process itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._log.close()


def serve_command(model: str, path: Path, index: str, port: int, *extra: str) -> list[str]:
    """``simlm-haystack serve`` on the collection ``index`` under ``path``."""
    return [
        SIMLM_HAYSTACK,
        "serve",
        "--model",
        model,
        "--qdrant-path",
        str(path),
        "--index",
        index,
        "--port",
        str(port),
        *extra,
    ]


def index_sample(model: str, path: Path, index: str, sample_dir: Path, *, documents: int = 40) -> None:
    """The first ``documents`` of the SciFact sample, with dense and BM25 vectors, in an Edge collection."""
    from itertools import islice

    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.corpus import read_documents
    from simlm_haystack.indexing import index_documents
    from simlm_haystack.stores import edge_document_store

    embedder = DualEncoderDocumentEmbedder(model=model, progress_bar=False)
    store = edge_document_store(embedder, path=str(path), index=index, use_sparse_embeddings=True)
    try:
        corpus = list(islice(read_documents(str(sample_dir / "corpus.jsonl")), documents))
        index_documents(corpus, embedder, store, retrieval="hybrid", progress_bar=False)
    finally:
        store.close()


def search_in_process(
    model: str, path: Path, index: str, retrieval: str, *, top_k: int = 5, **settings: Any
) -> dict[str, list[tuple[str, float]]]:
    """``{query: [(id, score), ...]}`` of :data:`QUERIES` from ``DualEncoderRetriever.run`` in this process."""
    from simlm_haystack import DualEncoderRetriever
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
    from simlm_haystack.stores import edge_document_store

    embedder = DualEncoderTextEmbedder(model=model, **settings)
    store = edge_document_store(embedder, path=str(path), index=index, use_sparse_embeddings=True)
    retriever = DualEncoderRetriever.from_embedder(embedder, store, top_k=top_k, retrieval=retrieval)
    try:
        return {
            query: [(document.id, document.score) for document in retriever.run(query=query)["documents"]]
            for query in QUERIES
        }
    finally:
        store.close()


def found(
    server_url: str, query: str, *, route: str = "search", headers: dict[str, str] | None = None, **fields: Any
) -> list[dict[str, Any]]:
    """The documents ``POST /<route>/run`` returns (asserting a 200)."""
    status, body, text = call(f"{server_url}/{route}/run", {"query": query, **fields}, headers=headers)
    assert status == 200, text
    return body["result"]["documents"]
