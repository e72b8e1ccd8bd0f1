"""Which embedded engine holds a collection in a folder: Qdrant Edge or ``qdrant-client``'s local mode.

Each engine lays a folder out its own way; this is the one place that knows both layouts, so that callers
(the CLI opening ``--qdrant-path``) ask here rather than reading either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from simlm_haystack.stores.edge.collection import is_edge_collection

EmbeddedEngine = Literal["edge", "local"]


def embedded_engine(path: str | Path, index: str) -> EmbeddedEngine | None:
    """Which embedded engine holds collection ``index`` under ``path``: ``"edge"`` (``<path>/<index>``, see
    :mod:`simlm_haystack.stores.edge.collection`), ``"local"`` (``qdrant-client``'s local mode, as
    ``QdrantDocumentStore(path=...)`` writes it: ``<path>/meta.json`` lists its collections) or None."""
    root = Path(path)
    if is_edge_collection(root / index):
        return "edge"
    try:
        local_meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return "local" if index in local_meta.get("collections", {}) else None
