"""What a result was measured with: package versions and where the index lives."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

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


def describe_store(document_store: QdrantDocumentStore) -> dict[str, Any]:
    """The collection, where it lives (URL, host, path or location) and its similarity."""
    where = document_store.url or document_store.host or document_store.path or document_store.location
    return {"index": document_store.index, "location": str(where), "similarity": document_store.similarity}
