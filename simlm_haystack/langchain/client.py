"""The Qdrant client a LangChain store's constructor opens, and closes again if the constructor fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from qdrant_client import QdrantClient


def qdrant_client(options: dict[str, Any]) -> QdrantClient:
    """A client for ``options``; a server gets ``QDRANT_API_KEY`` from the environment when no key is given."""
    local = options.get("path") is not None or options.get("location") == ":memory:"
    if not local and options.get("api_key") is None and os.environ.get("QDRANT_API_KEY"):
        options = {**options, "api_key": os.environ["QDRANT_API_KEY"]}
    return QdrantClient(**options)


@contextmanager
def closed_on_failure(client: QdrantClient) -> Iterator[QdrantClient]:
    """``client``, closed if the block raises: every constructor of the store builds it in one, so that a
    failed constructor leaves no client of its own open (an embedded store keeps its folder locked while one is)."""
    try:
        yield client
    except BaseException:
        with suppress(Exception):
            client.close()
        raise
