"""``serve``'s own handler of the deployments' routes (``serving/routes.py``): the answers and the OpenAPI schema
of Hayhooks' handler, a body not declared JSON refused, and searches on the wrapper's pool of ``workers`` threads.
Stub wrappers stand in for the search: no model is loaded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hayhooks import BasePipelineWrapper
from hayhooks.server.pipelines.registry import registry

import simlm_haystack.serving.app as serving_app
from simlm_haystack.serving.app import Deployment, build_app
from simlm_haystack.serving.requests import RequestLimits, search_request_model
from simlm_haystack.serving.wrappers import SearchResult, SearchWrapper

LIMITS = RequestLimits(max_top_k=50)


class EchoWrapper(BasePipelineWrapper):
    """Answers a search with documents made from the request."""

    def setup(self) -> None:
        self.pipeline = None

    def run_api(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> SearchResult:
        """Search.

        :param query: The query.
        :param top_k: How many documents.
        :param filters: Haystack filters.
        """
        if query == "refuse":
            from fastapi import HTTPException

            raise HTTPException(status_code=422, detail="query: refused by the wrapper")
        return {
            "documents": [
                {"id": f"d{n}", "content": f"{query} é {n}", "meta": {"n": n, "filters": filters}, "score": 1 / (n + 1)}
                for n in range(top_k)
            ]
        }


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    """Hayhooks' registry of deployments is the process's: each test's names are its own."""
    yield
    for name in registry.get_names():
        if name.startswith("routes-"):
            registry.remove(name)


def app_for(name: str, wrapper: BasePipelineWrapper) -> FastAPI:
    model = search_request_model(name, LIMITS)
    return build_app([Deployment(name, wrapper, "A test search", model, mcp=False)], limits=LIMITS)


BODIES: list[Any] = [
    {"query": "vitamin d", "top_k": 3},
    {"query": "vitamin d", "top_k": 2, "filters": {"field": "meta.year", "operator": "==", "value": 2020}},
    {"query": "refuse"},
    {"top_k": 3},
    {"query": 7},
    {"query": "x", "top_k": 0},
    {"query": "x", "top_k": 51},
    {"query": "x", "top_k": "3"},
    {"query": "x", "unknown": 1},
]


def test_the_routes_answer_as_hayhooks_own_handler_and_keep_its_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = TestClient(app_for("routes-ours", EchoWrapper()))
    monkeypatch.setattr(serving_app, "answer_deployments", lambda app, names: None)  # Hayhooks' handler stays
    theirs = TestClient(app_for("routes-theirs", EchoWrapper()))
    for body in BODIES:
        mine, hayhooks = ours.post("/routes-ours/run", json=body), theirs.post("/routes-theirs/run", json=body)
        assert (mine.status_code, mine.json()) == (hayhooks.status_code, hayhooks.json()), body
    assert ours.post("/routes-ours/run", json=BODIES[0]).json()["result"]["documents"][0]["content"] == "vitamin d é 0"

    def schema(client: TestClient, name: str) -> str:
        operation = client.get("/openapi.json").json()["paths"][f"/{name}/run"]["post"]
        spellings = (name, name.title(), name.replace("-", "_"))
        text = str(operation)
        for spelling in spellings:
            text = text.replace(spelling, "NAME")
        return text

    assert schema(ours, "routes-ours") == schema(theirs, "routes-theirs")


@pytest.mark.parametrize(
    ("body", "field"),
    [(b"", "body"), (b"{not json", "body"), (b"[]", "body"), (b"null", "body")],
)
def test_a_body_that_is_not_a_json_object_is_a_422_naming_the_body(body: bytes, field: str) -> None:
    client = TestClient(app_for("routes-malformed", EchoWrapper()))
    answer = client.post("/routes-malformed/run", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field, answer.text
    assert client.post("/routes-malformed/run", json={"query": "fine"}).status_code == 200  # the next one is served


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_declared_json_is_a_415(content_type: str | None) -> None:
    # A web page may send text/plain or a form to a local server without the browser asking it first.
    client = TestClient(app_for("routes-declared", EchoWrapper()))
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post("/routes-declared/run", content=b'{"query": "x"}', headers=headers)
    assert answer.status_code == 415 and "Content-Type must be application/json" in answer.json()["detail"]
    charset = client.post(
        "/routes-declared/run", content=b'{"query": "x"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200


class SlowSearch(SearchWrapper):
    """Counts the searches running at once."""

    def setup(self) -> None:
        self.pipeline = None
        self.running = self.most = 0
        self.counting = threading.Lock()

    def run_api(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> SearchResult:
        with self.counting:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.counting:
            self.running -= 1
        return {"documents": []}


@pytest.mark.parametrize("workers", [1, 2])
def test_searches_run_at_most_workers_at_once(workers: int) -> None:
    wrapper = SlowSearch(workers=workers)
    app = app_for(f"routes-pool{workers}", wrapper)

    async def many() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answers = await asyncio.gather(
                *(client.post(f"/routes-pool{workers}/run", json={"query": f"q{n}"}) for n in range(8))
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(many()) == [200] * 8
    assert wrapper.most == workers


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SearchWrapper(workers=0)
    assert SearchWrapper().workers >= 1
