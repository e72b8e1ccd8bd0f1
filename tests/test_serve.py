"""``simlm-haystack serve``: real servers on free localhost ports, called over HTTP and with an MCP client.

Two servers for the module, started together: a hybrid one with an API key, and a dense one on the ONNX int8
backend without a key (the last test kills it and starts it again). Each searches its own copy of 40 SciFact
documents indexed here; what they answer is compared with ``DualEncoderRetriever.run`` in this process.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from serving_support import (
    QUERIES,
    SIMLM_HAYSTACK,
    Server,
    call,
    found,
    free_port,
    index_sample,
    search_in_process,
    serve_command,
)

pytestmark = pytest.mark.integration

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
INDEX = "docs"
ONNX_INT8 = ("--backend", "onnx", "--precision", "int8")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, minilm_path: str, sample_dir: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serve")
    index_sample(minilm_path, root / "hybrid", INDEX, sample_dir)
    expected = {
        "hybrid": search_in_process(minilm_path, root / "hybrid", INDEX, "hybrid"),
        "dense": search_in_process(minilm_path, root / "hybrid", INDEX, "dense", backend="onnx", precision="int8"),
    }
    for copy in ("dense", "mismatch"):
        shutil.copytree(root / "hybrid", root / copy)
    return {"root": root, "expected": expected}


@pytest.fixture(scope="module")
def servers(folders: dict[str, Any], minilm_path: str) -> Any:
    root = folders["root"]
    hybrid_port, dense_port = free_port(), free_port()
    hybrid = Server(
        serve_command(minilm_path, root / "hybrid", INDEX, hybrid_port, "--retrieval", "hybrid"),
        hybrid_port,
        env={"SIMLM_HAYSTACK_API_KEY": KEY},
    )
    dense = Server(serve_command(minilm_path, root / "dense", INDEX, dense_port, *ONNX_INT8), dense_port)
    try:
        yield {"hybrid": hybrid.wait_ready(headers=AUTH), "dense": dense.wait_ready()}
    finally:
        hybrid.stop()
        dense.stop()


@pytest.mark.parametrize("retrieval", ["dense", "hybrid"])
def test_search_over_http_is_the_in_process_retriever(
    servers: dict[str, Server], folders: dict, retrieval: str
) -> None:
    headers = AUTH if retrieval == "hybrid" else None
    for query in QUERIES:
        documents = found(servers[retrieval].url, query, top_k=5, headers=headers)
        expected = folders["expected"][retrieval][query]
        assert [document["id"] for document in documents] == [document_id for document_id, _ in expected]
        assert [document["score"] for document in documents] == pytest.approx(
            [score for _, score in expected], abs=1e-5
        )
        assert all(document["content"] and "title" in document["meta"] for document in documents)
        assert all(set(document) == {"id", "content", "meta", "score"} for document in documents)  # no vectors
    filtered = found(servers[retrieval].url, QUERIES[0], headers=headers, top_k=3, filters=_title_is(documents[0]))
    assert [document["id"] for document in filtered] == [documents[0]["id"]]


def _title_is(document: dict[str, Any]) -> dict[str, Any]:
    return {"field": "meta.title", "operator": "==", "value": document["meta"]["title"]}


async def _mcp_session(url: str, headers: dict[str, str], calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers=headers) as client,
        streamable_http_client(url, http_client=client) as (
            read,
            write,
            *_,
        ),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        return tools.tools, [await session.call_tool(name, arguments) for name, arguments in calls]


def test_an_agent_searches_over_mcp(servers: dict[str, Server], folders: dict) -> None:
    query = QUERIES[0]
    tools, (result, empty, unknown) = asyncio.run(
        _mcp_session(
            servers["hybrid"].url + "/mcp",
            AUTH,
            [("search", {"query": query, "top_k": 5}), ("search", {"query": "  "}), ("index", {"documents": []})],
        )
    )
    assert [tool.name for tool in tools] == ["search"]  # adding documents is not an agent's tool
    description = tools[0].description
    assert "40 documents of collection 'docs'" in description and "A good query" in description
    assert "Some of their titles" in description
    assert set(tools[0].input_schema["properties"]) == {"query", "top_k", "filters"}
    assert not result.is_error
    ids = [document["id"] for document in result.structured_content["documents"]]
    assert ids == [document_id for document_id, _ in folders["expected"]["hybrid"][query]]
    assert empty.is_error and "whitespace" in empty.content[0].text
    assert unknown.is_error and "Unknown tool 'index'" in unknown.content[0].text
    # Without the key the MCP endpoint is refused like every other route.
    assert call(servers["hybrid"].url + "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"})[0] == 401


BAD_REQUESTS = [
    ("search", {"query": ""}, 422, "query"),
    ("search", {"query": "   \n\t"}, 422, "only whitespace"),
    ("search", {}, 422, "query: Field required"),
    ("search", {"qurey": "typo"}, 422, "qurey"),
    ("search", {"query": 42}, 422, "query: Input should be a valid string"),
    ("search", {"query": "x", "top_k": "5"}, 422, "top_k"),
    ("search", {"query": "x" * 1_048_576}, 422, "query: String should have at most 8192 characters"),
    ("search", {"query": "x", "top_k": 0}, 422, "top_k"),
    ("search", {"query": "x", "top_k": -1}, 422, "top_k"),
    ("search", {"query": "x", "top_k": 10**9}, 422, "top_k: Input should be less than or equal to 1000"),
    ("search", {"query": "x", "filters": "meta.title == x"}, 422, "filters"),
    ("search", {"query": "x", "filters": {"field": "meta.title", "value": "x"}}, 422, "operator"),
    ("search", {"query": "x", "filters": {"operator": "AND", "conditions": []}}, 422, "non-empty list"),
    ("search", {"query": "x", "filters": {"field": "meta.title", "operator": "in", "value": "x"}}, 422, "list"),
    ("search", {"query": "x", "filters": {"field": "meta.n", "operator": ">", "value": "abc"}}, 422, "filters"),
    ("index", {"documents": [{"id": "a", "meta": {"title": "no text"}}]}, 422, "documents.0.content: Field required"),
    ("index", {"documents": [{"content": "   "}]}, 422, "only whitespace"),
    ("index", {"documents": [{"content": "x", "text": "y"}]}, 422, "documents.0.text"),
    ("index", {"documents": []}, 422, "documents"),
    ("index", {"documents": "abc"}, 422, "documents"),
]


def test_bad_input_is_a_4xx_naming_the_problem_and_the_next_request_is_served(servers: dict[str, Server]) -> None:
    url = servers["hybrid"].url
    for route, body, status, named in BAD_REQUESTS:
        got, answer, text = call(f"{url}/{route}/run", body, headers=AUTH)
        assert (got, named in str(answer and answer.get("detail"))) == (status, True), (
            body if len(str(body)) < 200 else route,
            text[:300],
        )
        assert "Traceback" not in text and 'File "' not in text
        assert len(text) < 4096  # the input is never sent back (a megabyte query included)
        assert found(url, QUERIES[1], headers=AUTH, top_k=1)  # and the next good request is served
    others = [
        (call(f"{url}/search/run", raw=b'{"query": "x",', headers=AUTH), 422, "not valid JSON"),
        (call(f"{url}/nowhere", headers=AUTH), 404, "GET /nowhere"),
        # Hayhooks' routes that deploy code, or draw a pipeline through a web service, are not served.
        (call(f"{url}/deploy_files", {"name": "x", "files": {}}, headers=AUTH), 404, "Not Found"),
        (call(f"{url}/draw/search", headers=AUTH), 404, "Not Found"),
        (call(f"{url}/search/run", method="GET", headers=AUTH), 405, "Method Not Allowed"),
        (_declaring_a_large_body(servers["hybrid"].port), 413, "too large"),
    ]
    for (got, answer, text), status, named in others:
        assert got == status and named in answer["detail"], text[:300]
    assert found(url, QUERIES[1], headers=AUTH, top_k=1)


def _declaring_a_large_body(port: int) -> tuple[int, Any, str]:
    """A request announcing a 17 MB body: refused from its headers, before the body is sent."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/search/run")
        for name, value in (*AUTH.items(), ("Content-Type", "application/json"), ("Content-Length", str(17 << 20))):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        text = response.read().decode()
        return response.status, json.loads(text), text
    finally:
        connection.close()


def test_the_api_key_guards_every_route_and_says_nothing_more(servers: dict[str, Server]) -> None:
    url = servers["hybrid"].url
    refusals = set()
    for headers in (
        None,
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": KEY},
    ):
        for path, body in (
            ("/search/run", {"query": "x"}),
            ("/index/run", {"documents": []}),
            ("/status", None),
            ("/docs", None),
            ("/openapi.json", None),
            ("/nowhere", None),
        ):
            status, _, text = call(url + path, body, headers=headers)
            assert status == 401, (path, headers, text)
            refusals.add(text)
    assert len(refusals) == 1  # the same answer whatever was sent or asked for: no route or key is revealed
    assert call(url + "/status", headers=AUTH)[0] == 200
    assert call(servers["dense"].url + "/status")[0] == 200  # no key set: none needed


def test_documents_added_while_searching_are_found_whole_and_none_is_lost(servers: dict[str, Server]) -> None:
    url = servers["hybrid"].url
    planted = {
        f"planted-{n}": {
            "content": f"Observatory log {n}: the comet {n} was seen near Jupiter at dusk.",
            "meta": {"title": f"Comet {n}", "n": n},
        }
        for n in range(12)
    }
    acknowledged: list[str] = []
    seen_wrong: list[Any] = []
    writing = threading.Event()

    def write() -> None:
        writing.set()
        ids = list(planted)
        for start in range(0, len(ids), 3):
            batch = [{"id": i, **planted[i]} for i in ids[start : start + 3]]
            status, answer, text = call(url + "/index/run", {"documents": batch}, headers=AUTH)
            assert status == 200, text
            acknowledged.extend(answer["result"]["ids"])

    def search() -> None:
        writing.wait()
        while len(acknowledged) < len(planted):
            for document in found(url, "comet seen near Jupiter", headers=AUTH, top_k=20):
                if document["id"] in planted and (
                    {"content": document["content"], "meta": document["meta"]} != planted[document["id"]]
                ):
                    seen_wrong.append(document)

    threads = [threading.Thread(target=write), *(threading.Thread(target=search) for _ in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(acknowledged) == sorted(planted) and not seen_wrong
    for document_id, document in planted.items():  # each found right after, by its own words
        assert found(url, document["content"], headers=AUTH, top_k=1)[0]["id"] == document_id


def test_another_process_opening_the_served_folder_gets_the_clear_error(
    folders: dict, servers: dict, minilm_path: str
) -> None:
    result = subprocess.run(
        [
            SIMLM_HAYSTACK,
            "search",
            "x",
            "--model",
            minilm_path,
            "--qdrant-path",
            str(folders["root"] / "hybrid"),
            "--index",
            INDEX,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "is open in another process" in result.stderr and "Traceback" not in result.stderr


def test_an_encoder_mismatch_stops_the_server_before_it_listens(folders: dict, minilm_path: str) -> None:
    port = free_port()
    command = serve_command(minilm_path, folders["root"] / "mismatch", INDEX, port, "--recipe", "simlm")
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("simlm-haystack serve: error:")]
    assert len(lines) == 1 and "EncoderMismatchError" not in lines[0] and "filled by another encoder" in lines[0]
    assert "Traceback" not in result.stderr and "http://" not in result.stderr  # it never said it serves


def test_a_server_killed_mid_load_restarts_with_every_acknowledged_document(
    folders: dict, servers: dict, minilm_path: str
) -> None:
    server = servers["dense"]
    keep_out = {"field": "meta.group", "operator": "!=", "value": "kill"}
    before = {query: [d["id"] for d in found(server.url, query, top_k=5, filters=keep_out)] for query in QUERIES}
    assert before == {query: [i for i, _ in expected] for query, expected in folders["expected"]["dense"].items()}
    sent: dict[str, str] = {}
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            batch = [
                {
                    "id": f"k-{n}-{j}",
                    "content": f"Field note {n}.{j}: a heron nested by the river in spring.",
                    "meta": {"group": "kill"},
                }
                for j in range(2)
            ]
            sent.update({document["id"]: document["content"] for document in batch})
            try:
                status, answer, _ = call(server.url + "/index/run", {"documents": batch}, timeout=30)
            except OSError:
                return  # killed mid-request: not acknowledged
            if status == 200:
                acknowledged.extend(answer["result"]["ids"])
            n += 1

    writer = threading.Thread(target=load)
    writer.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 6 and time.monotonic() < deadline:
        found(server.url, QUERIES[2], top_k=3)  # searches go on meanwhile
    assert len(acknowledged) >= 6, server.output()
    server.kill()
    stop.set()
    writer.join(timeout=60)
    port = free_port()
    restarted = Server(serve_command(minilm_path, folders["root"] / "dense", INDEX, port, *ONNX_INT8), port)
    try:
        restarted.wait_ready()
        after = {query: [d["id"] for d in found(restarted.url, query, top_k=5, filters=keep_out)] for query in QUERIES}
        assert after == before
        stored = found(
            restarted.url,
            "a heron nested by the river",
            top_k=len(sent) + 5,
            filters={"field": "meta.group", "operator": "==", "value": "kill"},
        )
        by_id = {document["id"]: document["content"] for document in stored}
        assert set(acknowledged) <= set(by_id)  # nothing acknowledged is lost
        assert all(by_id[document_id] == sent[document_id] for document_id in by_id)  # nothing half-written
    finally:
        restarted.stop()
