"""Where Ray workers write: a Qdrant server or cluster from every worker, an embedded collection through one writer.

- **A Qdrant server or cluster** (``QdrantDocumentStore(url=...)`` or ``host=``) takes writes from many clients:
  each worker opens its own store from the driver's store settings (``to_dict()``, never a live client; the API
  key as its environment-variable reference) and upserts its documents in the store's batches
  (``write_batch_size``), transient errors retried with backoff.
- **An embedded collection** (Qdrant Edge, or ``qdrant-client``'s local mode, under ``path=``) is held by one
  process at a time (its folder is locked). One writer actor, on the driver's node, holds it; the workers
  send it the ids they are about to encode (to skip those already stored) and the documents they encoded.
  The actor asks for no CPU: it waits on the engine's writes, which are fast beside encoding (BENCHMARKS.md,
  "Ray").
- **An in-memory store** (``location=":memory:"``, or an Edge store without a path) lives in the driver's
  memory, where no worker can reach it: refused, with the way out.

Writes are upserts by the document's id (qdrant-haystack's point ids, ``convert_id``), so a block written twice
(a worker killed after writing, its task retried) leaves the collection as written once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from haystack import Document
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.writing import already_written as stored_ids
from simlm_haystack.errors import SettingsError, SimlmHaystackError, StoreError
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.qdrant import is_transient, transient_retrying

logger = logging.getLogger(__name__)

#: ``"server"``: every worker writes; ``"embedded"``: one writer actor holds the collection.
TargetKind = Literal["server", "embedded"]


def target_kind(document_store: Any) -> TargetKind:
    """How workers reach ``document_store``; an in-memory store is a :class:`~simlm_haystack.errors.SettingsError`."""
    if isinstance(document_store, QdrantDocumentStore):
        if document_store.url or document_store.host:
            return "server"
        if document_store.path:
            return "embedded"
        if document_store.location and document_store.location != ":memory:":
            return "server"  # qdrant-client reads a location other than ":memory:" as a URL or host
    elif isinstance(document_store, EdgeDocumentStore):
        if document_store.path is not None:
            return "embedded"
    else:
        raise TypeError(f"{type(document_store).__name__} is not a store Ray workers can write to")
    raise SettingsError(
        f"Collection {document_store.index!r} is in this process's memory, where Ray workers cannot write: give the "
        "store a folder (edge_document_store(..., path=...) or qdrant_document_store(..., path=...)) or a server "
        "(qdrant_document_store(..., url=...))"
    )


def store_settings(document_store: Any) -> tuple[type, dict[str, Any]]:
    """The store's class and settings (``to_dict()``) for another process to open the same collection: never
    recreating it, with no progress bar of its own."""
    data = document_store.to_dict()
    parameters = data["init_parameters"]
    if isinstance(document_store, QdrantDocumentStore):
        parameters["recreate_index"] = False
        parameters["progress_bar"] = False
    return type(document_store), data


class StoreWriter:
    """One process's access to the collection: which documents it holds already, and writes.

    :param store_class: ``QdrantDocumentStore`` or ``EdgeDocumentStore``.
    :param store_data: Its ``to_dict()`` (see :func:`store_settings`).
    :param retries: Transient errors retried per write (with backoff ``backoff_seconds`` x 1, 2, 4, ...).
    """

    def __init__(self, store_class: type, store_data: dict[str, Any], *, retries: int, backoff_seconds: float) -> None:
        self.store = store_class.from_dict(store_data)
        self.description = f"collection {self.store.index!r}"
        self.retrying = transient_retrying(retries=retries, backoff_seconds=backoff_seconds)

    def count(self) -> int:
        """The documents in the collection (opening it, and locking an embedded one)."""
        return self._guarded("count", self.store.count_documents)

    def already_written(self, documents: list[Document]) -> set[str]:
        """Ids of ``documents`` stored already with the same content and meta (as ``index_documents`` skips them)."""
        return self._guarded("read", lambda: stored_ids(self.store, documents))

    def write(self, documents: list[Document]) -> int:
        """Upsert ``documents`` (embedded), retrying transient errors; returns how many were written."""
        return self._guarded(
            "write", lambda: self.retrying(lambda: self.store.write_documents(documents, DuplicatePolicy.OVERWRITE))
        )

    def _guarded(self, action: str, call: Any) -> Any:
        try:
            return call()
        except SimlmHaystackError:
            raise
        except Exception as error:
            if not (is_transient(error) or isinstance(error, OSError)):
                raise
            raise StoreError(
                f"A Ray worker's {action} on {self.description} failed ({type(error).__name__}: {error}). Everything "
                "written is kept: run the same command again to resume; documents already stored are skipped."
            ) from error

    def close(self) -> None:
        """Release the collection (an embedded one's lock)."""
        self.store.close()


class RemoteStoreWriter:
    """A worker's view of the one writer actor that holds an embedded collection: the same calls, made remotely."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def already_written(self, documents: list[Document]) -> set[str]:
        import ray

        return ray.get(self.actor.already_written.remote(documents))

    def write(self, documents: list[Document]) -> int:
        import ray

        return ray.get(self.actor.write.remote(documents))

    def close(self) -> None:
        """The actor's collection stays open: the driver closes it when the job ends."""


@dataclass(frozen=True)
class WriteTarget:
    """What a worker needs to reach the collection, sent to each worker: the store's settings (a server: each
    worker opens its own) or the handle of the writer actor (an embedded collection)."""

    store_class: type
    store_data: dict[str, Any]
    retries: int
    backoff_seconds: float
    writer: Any = None

    def open(self) -> StoreWriter | RemoteStoreWriter:
        if self.writer is not None:
            return RemoteStoreWriter(self.writer)
        return StoreWriter(
            self.store_class, self.store_data, retries=self.retries, backoff_seconds=self.backoff_seconds
        )


#: The writer actors' names start with this (``ray.util.list_named_actors()`` lists them while a job runs).
WRITER_ACTOR_PREFIX = "simlm-haystack-writer"


def start_writer_actor(target: WriteTarget) -> Any:
    """The actor that holds an embedded collection, on this (the driver's) node, where its folder is.

    It asks for no CPU (it waits on the engine), runs one call at a time (the engine's writes are serial anyway),
    and is restarted if its process dies (the lock dies with it), its calls retried: they are idempotent. It is
    named ``simlm-haystack-writer <collection> <id>``, so that it can be found while the job runs.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    collection = target.store_data["init_parameters"].get("index")
    actor_class = ray.remote(StoreWriter).options(
        name=f"{WRITER_ACTOR_PREFIX} {collection} {uuid.uuid4().hex[:12]}",
        num_cpus=0,
        max_concurrency=1,
        max_restarts=-1,
        max_task_retries=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
    )
    actor = actor_class.remote(
        target.store_class, target.store_data, retries=target.retries, backoff_seconds=target.backoff_seconds
    )
    ray.get(actor.count.remote())  # opened (and locked) before any worker starts, or its error now
    return actor
