"""Serving a collection over HTTP and MCP with Hayhooks (``simlm-haystack serve``, or Hayhooks' own commands).

- :mod:`~simlm_haystack.serving.requests`: what a request may hold, checked before anything is encoded;
- :mod:`~simlm_haystack.serving.wrappers`: the search and the adding of documents as Hayhooks ``PipelineWrapper``
  classes (subclass :class:`SearchWrapper` in a ``pipeline_wrapper.py`` for Hayhooks' own commands);
- :mod:`~simlm_haystack.serving.guards`: the API key and the body size, before every route;
- :mod:`~simlm_haystack.serving.app`: Hayhooks' app with the deployments, its MCP server on the same port;
- :mod:`~simlm_haystack.serving.routes`: the deployments' routes, Hayhooks', answered by ``serve``'s own handler;
- :mod:`~simlm_haystack.serving.service`: the deployments of one collection, with the MCP tool's description;
- :mod:`~simlm_haystack.serving.server`: running it (localhost unless told otherwise).

It needs the ``serve`` extra (``pip install "simlm-haystack[serve]"``: Hayhooks and the MCP SDK); the rest of the
package never imports it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

if find_spec("hayhooks") is None:  # pragma: no cover - the extra is installed wherever the tests run
    raise ImportError("simlm_haystack.serving needs Hayhooks and the MCP SDK: pip install 'simlm-haystack[serve]'")

_EXPORTS = {
    "API_KEY_VARIABLE": "simlm_haystack.serving.guards",
    "Deployment": "simlm_haystack.serving.app",
    "IndexWrapper": "simlm_haystack.serving.wrappers",
    "RequestError": "simlm_haystack.serving.requests",
    "RequestLimits": "simlm_haystack.serving.requests",
    "SearchWrapper": "simlm_haystack.serving.wrappers",
    "build_app": "simlm_haystack.serving.app",
    "build_deployments": "simlm_haystack.serving.service",
    "run_server": "simlm_haystack.serving.server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'simlm_haystack.serving' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
