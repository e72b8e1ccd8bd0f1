"""The deployments as MCP tools, on the server's own port (Streamable HTTP at ``/mcp``).

Hayhooks lists each deployed pipeline as a tool (its name, description and request model's schema) and runs its
``run_api`` when the tool is called; this module does the same from Hayhooks' registry, on the MCP SDK's low-level
``Server`` (Hayhooks 2.1's own MCP server is written for the SDK's 1.x API), and a search runs on the wrapper's
pool, as over REST. A tool call is checked by the same request model as ``POST /<name>/run``, and a refused one is
a tool result marked as an error, naming the problem, so that the agent can correct its call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from fastapi import FastAPI, HTTPException
from hayhooks.server.pipelines.registry import registry
from mcp.server.lowlevel import Server
from pydantic import ValidationError

from simlm_haystack.serving.requests import validation_message
from simlm_haystack.serving.wrappers import run_wrapper

#: The path of the Streamable HTTP endpoint.
MCP_PATH = "/mcp"

INSTRUCTIONS = (
    "Search tools over document collections. Call a search tool with one natural-language question per call; "
    "read the documents it returns (id, content, meta, score; best first) and cite their ids."
)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def mcp_server(names: list[str]) -> Server:
    """An MCP server whose tools are the deployments ``names`` of Hayhooks' registry."""

    def tool(name: str) -> types.Tool:
        metadata = registry.get_metadata(name) or {}
        return types.Tool(
            name=name,
            description=metadata.get("description", ""),
            input_schema=metadata["request_model"].model_json_schema(),
        )

    async def list_tools(context: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool(name) for name in names])

    async def call_tool(context: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        wrapper = registry.get(params.name) if params.name in names else None
        if wrapper is None:
            return _error(f"Unknown tool {params.name!r}; the tools are {', '.join(names)}")
        request_model = (registry.get_metadata(params.name) or {})["request_model"]
        try:
            request = request_model.model_validate(params.arguments or {})
        except ValidationError as error:
            return _error(validation_message(list(error.errors()))[0])
        try:
            result = await run_wrapper(wrapper, dict(request))
        except HTTPException as error:
            return _error(str(error.detail))
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(result))], structured_content=result)

    return Server("simlm-haystack", instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


def mount_mcp(app: FastAPI, names: list[str], *, host: str) -> None:
    """Serve the deployments ``names`` as MCP tools at ``/mcp`` on ``app`` (stateless Streamable HTTP; requests
    whose ``Host`` is not this server's are refused when it listens on localhost, against DNS rebinding), the
    session manager running in ``app``'s lifespan."""
    server = mcp_server(names)
    mcp_app = server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=host)
    app.router.routes.extend(mcp_app.routes)
    served = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with served(application) as state, server.session_manager.run():
            yield state

    app.router.lifespan_context = lifespan
