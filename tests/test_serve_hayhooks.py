"""Hayhooks' own way: the pipeline YAML and the ``PipelineWrapper`` of ``examples/hayhooks/`` deployed by
``hayhooks run --pipelines-dir`` (Hayhooks' own server and loader), called over HTTP, and compared with
``DualEncoderRetriever.run`` in this process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving_support import (
    HAYHOOKS,
    QUERIES,
    REPOSITORY,
    Server,
    call,
    found,
    free_port,
    index_sample,
    search_in_process,
)

pytestmark = pytest.mark.integration

EXAMPLES = REPOSITORY / "examples" / "hayhooks"
INDEX = "docs"


@pytest.fixture(scope="module")
def hayhooks_server(tmp_path_factory: pytest.TempPathFactory, minilm_path: str, sample_dir: Path) -> Any:
    root = tmp_path_factory.mktemp("hayhooks")
    index_sample(minilm_path, root / "yaml", INDEX, sample_dir)
    expected = search_in_process(minilm_path, root / "yaml", INDEX, "hybrid")
    shutil.copytree(root / "yaml", root / "wrapper")  # an embedded collection is opened by one store at a time
    pipelines = root / "pipelines"
    pipelines.mkdir()
    # The documented YAML, pointed at this test's collection and the offline model.
    definition = yaml.safe_load((EXAMPLES / "search.yml").read_text())
    retriever = definition["components"]["retriever"]["init_parameters"]
    retriever["model"] = minilm_path
    retriever["document_store"]["init_parameters"].update(path=str(root / "yaml"), index=INDEX)
    (pipelines / "search.yml").write_text(yaml.safe_dump(definition))
    shutil.copytree(EXAMPLES / "search_wrapper", pipelines / "search_wrapper")
    port = free_port()
    server = Server(
        [HAYHOOKS, "run", "--host", "127.0.0.1", "--port", str(port), "--pipelines-dir", str(pipelines)],
        port,
        env={
            "HAYSTACK_DESERIALIZATION_ALLOWLIST": "simlm_haystack.*",
            "SIMLM_MODEL": minilm_path,
            "SIMLM_QDRANT_PATH": str(root / "wrapper"),
            "SIMLM_INDEX": INDEX,
            "SIMLM_RETRIEVAL": "hybrid",
        },
        cwd=root,
    )
    try:
        server.wait_ready()
        yield server, expected
    finally:
        server.stop()


def test_both_are_deployed_by_hayhooks(hayhooks_server: Any) -> None:
    server, _ = hayhooks_server
    status, answer, _ = call(server.url + "/status")
    assert status == 200 and sorted(answer["pipelines"]) == ["search", "search_wrapper"], server.output()


def test_the_yaml_pipeline_answers_as_the_retriever_in_process(hayhooks_server: Any) -> None:
    server, expected = hayhooks_server
    for query in QUERIES:
        # Hayhooks requires every input the YAML declares.
        status, answer, text = call(server.url + "/search/run", {"query": query, "top_k": 5, "filters": None})
        assert status == 200, text
        documents = answer["result"]["retriever"]["documents"]
        assert [(d["id"], pytest.approx(d["score"], abs=1e-5)) for d in documents] == expected[query]


def test_the_wrapper_answers_as_the_retriever_in_process_and_refuses_bad_input(hayhooks_server: Any) -> None:
    server, expected = hayhooks_server
    for query in QUERIES:
        documents = found(server.url, query, route="search_wrapper", top_k=5)
        assert [(d["id"], pytest.approx(d["score"], abs=1e-5)) for d in documents] == expected[query]
    for body, named in (
        ({"query": "  "}, "only whitespace"),
        ({"query": "x", "top_k": 0}, "top_k must be between 1 and 1000"),
        ({"query": "x", "filters": {"operator": "OR", "conditions": []}}, "non-empty list"),
    ):
        status, answer, text = call(server.url + "/search_wrapper/run", body)
        assert status == 422 and named in answer["detail"], text
    assert found(server.url, QUERIES[0], route="search_wrapper", top_k=1)
