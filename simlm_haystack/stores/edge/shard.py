"""An Edge collection held open by one store: the folder locked, the shard opened on first use, closed and
released (a temporary folder deleted) on :meth:`OpenCollection.close`, and the engine's bare errors told as the
store's. :class:`~simlm_haystack.stores.edge.EdgeDocumentStore` reads, writes and searches through it."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from haystack.document_stores.errors import DocumentStoreError

from simlm_haystack.stores.edge.collection import (
    CollectionLock,
    IndexSettings,
    open_collection,
    read_collection_file,
    write_collection_file,
)
from simlm_haystack.stores.identity import METADATA_KEY, CollectionIdentity


class OpenCollection:
    """The shard of collection ``index`` under ``path`` (a temporary folder without one), opened on first use.

    :param path: The folder holding the collections, or None for a temporary one.
    :param index: The collection name.
    :param settings: How a new collection is created, and what an existing one must match.
    """

    path: str | None
    index: str

    def __init__(self, path: str | None, index: str, settings: IndexSettings) -> None:
        self.path = path
        self.index = index
        self._settings = settings
        self._shard: edge.EdgeShard | None = None
        self._lock: CollectionLock | None = None
        self._temporary: tempfile.TemporaryDirectory | None = None
        self._state = threading.RLock()
        # Unknown after opening (another process may have written): optimize() is cheap when there is nothing to do.
        self._written_since_optimize = True

    # --- opening and closing ------------------------------------------------------------------------------------

    @property
    def collection_path(self) -> Path | None:
        """The collection's folder, ``<path>/<index>`` (None for a temporary store not opened yet)."""
        root = self.path if self.path is not None else (self._temporary.name if self._temporary else None)
        return None if root is None else Path(root) / self.index

    def open(self) -> None:
        """Lock and open the collection now (creating it if needed); otherwise the first call does it."""
        self._open_shard()

    def _open_shard(self) -> edge.EdgeShard:
        with self._state:
            if self._shard is None:
                if self.path is None and self._temporary is None:
                    self._temporary = tempfile.TemporaryDirectory(prefix="simlm-haystack-edge-")
                collection_path = self.collection_path
                assert collection_path is not None
                self._shard, self._lock = open_collection(collection_path, self.index, self._settings)
                self._written_since_optimize = True
            return self._shard

    def close(self) -> None:
        """Flush and close the collection and release its lock (a temporary store is deleted). Idempotent;
        a later call opens it again."""
        with self._state:
            if self._shard is not None:
                self._shard.close()
                self._shard = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self._temporary is not None:
                self._temporary.cleanup()
                self._temporary = None

    def optimize(self) -> bool:
        """Merge segments and build the HNSW graph for what was written; True if anything changed."""
        with self._state:
            changed = self._open_shard().optimize()
            self._written_since_optimize = False
            return changed

    def _update(self, operation: edge.UpdateOperation) -> None:
        self._call("write", lambda shard: shard.update(operation))
        self._written_since_optimize = True

    def _call(self, action: str, call: Callable[[edge.EdgeShard], Any]) -> Any:
        shard = self._open_shard()
        try:
            return call(shard)
        except Exception as error:  # the engine raises bare Exceptions; say which store and what failed
            raise DocumentStoreError(
                f"Qdrant Edge {action} failed on collection {self.index!r} at {self.collection_path}: {error}"
            ) from error

    # --- the encoder identity kept in the collection file ------------------------------------------------------

    def collection_identity(self) -> CollectionIdentity:
        """Where this collection keeps its encoder identity: its collection file (the collection is opened)."""
        self.open()
        directory = self.collection_path
        assert directory is not None

        def write(identity: dict[str, Any]) -> None:
            write_collection_file(directory, {**(read_collection_file(directory) or {}), METADATA_KEY: identity})

        return CollectionIdentity(
            description=f"Qdrant Edge collection {self.index!r} at {directory}",
            count=lambda: self._call("count", lambda shard: shard.count(edge.CountRequest(exact=True))),
            read=lambda: (read_collection_file(directory) or {}).get(METADATA_KEY),
            write=write,
        )
