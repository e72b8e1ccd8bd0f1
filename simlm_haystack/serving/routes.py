"""The deployments' ``POST /<name>/run`` routes as ``simlm-haystack serve`` answers them: Hayhooks' routes (same
path, request and response models, so the same OpenAPI schema), whose handler (FastAPI's ``get_route_handler``
hook) does only what a search needs.

Hayhooks' own handler, around the same call, dumps the request to a dict, inspects the method's signature, records
a span in its live trace buffer and binds a log context (even with tracing off), then FastAPI validates the result
against the response model and encodes it with the standard library's ``json``: 0.6 to 1.7 ms more of a core per
search than this handler on the benchmark machine (BENCHMARKS.md, "Issue 28"), where the target for all of HTTP is
2 ms. A wrapper deployed with Hayhooks' own commands keeps Hayhooks' handler.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from hayhooks.server.utils.base_pipeline_wrapper import BasePipelineWrapper
from pydantic import BaseModel, ValidationError

from simlm_haystack.serving.wrappers import run_wrapper


class DeploymentRoute(APIRoute):
    """Hayhooks' route of one deployment, answered by :meth:`answer`.

    :param route: The route Hayhooks made for it (its path, name, models and description are kept).
    :param wrapper: The deployment's wrapper.
    :param request_model: Its request model: the body is checked against it, as JSON, in one step.
    """

    def __init__(self, route: APIRoute, *, wrapper: BasePipelineWrapper, request_model: type[BaseModel]) -> None:
        self.wrapper = wrapper
        self.request_model = request_model
        super().__init__(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            methods=route.methods,
            name=route.name,
            tags=route.tags,
            description=route.description,
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.answer

    async def answer(self, request: Request) -> Response:
        """The wrapper's answer to the request's body, as ``{"result": ...}``; a body the request model refuses is
        the app's 422 (the fields named, the input never sent back), one not declared JSON a 415."""
        content_type = request.headers.get("content-type", "")
        if not is_json(content_type):
            # As FastAPI's strict default: a web page may POST text/plain to a local server without asking first.
            sent = f"not {content_type[:100]!r}" if content_type else "none was sent"
            raise HTTPException(415, f"Content-Type must be application/json ({sent})")
        try:
            fields = self.request_model.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_input=False)) from None
        # The fields as validated, not model_dump()'s deep copy: run_api takes models and plain values alike.
        result = await run_wrapper(self.wrapper, dict(fields))
        # JSON has no NaN or infinity: null, as JavaScript writes them (FastAPI's encoder would fail the request).
        body = pydantic_core.to_json({"result": result}, inf_nan_mode="null")
        return Response(body, media_type="application/json")


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` declares JSON (``application/json``, ``application/<x>+json``; parameters aside)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def answer_deployments(app: FastAPI, names: dict[str, tuple[BasePipelineWrapper, type[BaseModel]]]) -> None:
    """Answer the run routes of deployments ``names`` (name -> wrapper and request model) with
    :class:`DeploymentRoute`, first in ``app``'s routes (matched before Hayhooks' others)."""
    paths = {f"/{name}/run": name for name in names}
    ours, others = [], []
    for route in app.router.routes:
        name = paths.get(getattr(route, "path", ""))
        if isinstance(route, APIRoute) and name is not None:
            wrapper, request_model = names[name]
            ours.append(DeploymentRoute(route, wrapper=wrapper, request_model=request_model))
        else:
            others.append(route)
    app.router.routes[:] = [*ours, *others]
