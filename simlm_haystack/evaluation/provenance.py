"""What a result was measured with: package versions and where the index lives."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from simlm_haystack.stores import EmbeddingDocumentStore

#: The packages whose versions change the numbers; recorded with every result.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "simlm-haystack",
    "torch",
    "transformers",
    "tokenizers",
    "haystack-ai",
    "qdrant-client",
    "qdrant-haystack",
    "ir-measures",
)


def versions() -> dict[str, str]:
    """Python and the versions of the packages that change the numbers."""
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def describe_store(document_store: EmbeddingDocumentStore) -> dict[str, Any]:
    """The collection, its engine, where it lives (URL, host, path or location) and its similarity."""
    where = next(
        (value for name in ("url", "host", "path", "location") if (value := getattr(document_store, name, None))),
        None,
    )
    return {
        "index": document_store.index,
        "engine": type(document_store).__name__,
        "location": str(where),
        "similarity": document_store.similarity,
    }
