"""The server: Hayhooks' own FastAPI app (``hayhooks.create_app``), the deployments committed into it with
Hayhooks' deploy functions, their MCP tools on the same port, and the guards and error handlers around them.

One process holds the model (loaded once) and, for an embedded collection, the collection itself (Qdrant Edge is
used by one process at a time): the deployments are fixed at start-up, and Hayhooks' routes that deploy code
(``/deploy_files``, ``/deploy-yaml``, ``/undeploy``) or draw a pipeline through a web service (``/draw``) are not
served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from hayhooks.server.pipelines.registry import registry
from hayhooks.server.routers import deploy_router, draw_router, undeploy_router
from hayhooks.server.utils.base_pipeline_wrapper import BasePipelineWrapper
from hayhooks.server.utils.deploy_utils import commit_prepared_pipeline
from hayhooks.server.utils.models import PreparedPipeline
from hayhooks.server.utils.module_loader import _set_method_implementation_flags
from hayhooks.settings import settings
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from simlm_haystack.serving.guards import ApiKeyMiddleware, BodyLimitMiddleware
from simlm_haystack.serving.mcp_tools import mount_mcp
from simlm_haystack.serving.requests import RequestLimits, validation_message
from simlm_haystack.serving.routes import answer_deployments


@dataclass
class Deployment:
    """One wrapper served as ``POST /<name>/run``.

    :param name: The route's and the MCP tool's name.
    :param wrapper: The wrapper (not set up yet: :func:`build_app` calls its ``setup()``).
    :param description: What an agent reads about it (the MCP tool's description).
    :param request_model: The request body's model (its schema is the tool's input schema).
    :param mcp: Whether it is an MCP tool too.
    """

    name: str
    wrapper: BasePipelineWrapper
    description: str
    request_model: type[BaseModel]
    mcp: bool = True


def build_app(
    deployments: list[Deployment], *, limits: RequestLimits, api_key: str | None = None, host: str = "127.0.0.1"
) -> FastAPI:
    """Hayhooks' app serving ``deployments`` over REST, those marked ``mcp`` as MCP tools too (``/mcp``).

    Each wrapper's ``setup()`` runs here, before the server listens: a model that cannot be loaded or a
    collection filled by another encoder stops it with the package's error.

    :param deployments: What to serve.
    :param limits: The largest request body (the other limits are the wrappers' and the request models').
    :param api_key: When given, every route needs ``Authorization: Bearer <api_key>``.
    :param host: The address the server will listen on (on localhost, MCP requests for another host are refused).
    """
    settings.pipelines_dir = ""  # nothing is deployed from a folder: the deployments are these
    # No local trace API, and (almost) no live buffer of every request's spans: it is sorted on every request.
    settings.tracing_enabled = False
    settings.tracing_include_haystack_spans = False
    settings.tracing_buffer_capacity = 1
    if "HAYHOOKS_CORS_ALLOW_ORIGINS" not in os.environ:
        # Hayhooks allows every origin; a local server would then answer any web page the user opens.
        settings.cors_allow_origins = []
    from hayhooks import create_app

    app = create_app()
    # Not served: deploying code, and drawing a pipeline (Haystack sends it to mermaid.ink, outside this machine).
    app.router.routes[:] = [route for route in app.router.routes if not _left_out(route)]
    for deployment in deployments:
        deploy(app, deployment)
    answer_deployments(app, {d.name: (d.wrapper, d.request_model) for d in deployments})
    tools = [deployment.name for deployment in deployments if deployment.mcp]
    if tools:
        mount_mcp(app, tools, host=host)
    add_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    if api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)  # outermost: before anything else reads the request
    return app


def _left_out(route: Any) -> bool:
    """Whether ``route`` is one of Hayhooks' deploy, undeploy or draw routes (FastAPI keeps an included router as one
    entry, ``original_router``; older versions copy its routes, each with the router's endpoint)."""
    routers = (deploy_router, undeploy_router, draw_router)
    if any(getattr(route, "original_router", None) is router for router in routers):
        return True
    endpoint = getattr(route, "endpoint", None)
    return endpoint is not None and any(endpoint is r.endpoint for router in routers for r in router.routes)


def deploy(app: FastAPI, deployment: Deployment) -> None:
    """Set the wrapper up and commit it with Hayhooks' deploy function (the registry, ``POST /<name>/run``)."""
    wrapper = deployment.wrapper
    wrapper.skip_mcp = not deployment.mcp
    wrapper.setup()
    _set_method_implementation_flags(wrapper)  # what Hayhooks does to a wrapper it loads from files
    metadata = {"description": deployment.description, "request_model": deployment.request_model}
    commit_prepared_pipeline(PreparedPipeline(name=deployment.name, wrapper=wrapper, extra_metadata=metadata), app=app)


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal as JSON naming the problem: a request body the models refuse (422, the fields and why, never
    the input back), an unknown route or method (404/405, with the routes served), and anything unexpected (500,
    no traceback: that goes to the server's log)."""

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        message, errors = validation_message(list(error.errors()))
        return JSONResponse({"detail": message, "errors": errors}, status_code=422)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        detail: Any = error.detail
        if error.status_code in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
            routes = sorted(f"POST /{name}/run" for name in registry.get_names())
            detail = f"{detail}: {request.method} {request.url.path} (served: {', '.join(routes)}, GET /status, /mcp)"
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"Internal error ({type(error).__name__}); see the server's log"}, status_code=500
        )

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
