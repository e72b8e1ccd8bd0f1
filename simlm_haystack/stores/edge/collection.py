"""An Edge collection on disk: one folder per collection, locked by one process, its settings beside the shard.

```
<path>/<index>/
    collection.json   what the collection holds (vector size, similarity, whether it has BM25 sparse vectors),
                      and the encoder identity that filled it
    shard/            the Qdrant Edge shard (segments, write-ahead log)
    .lock             held by the process that has the collection open; it holds that process's id
```

:func:`open_collection` is the one place a collection is opened or created and checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import qdrant_edge as edge
from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME

from simlm_haystack.errors import CollectionMismatchError, StoreError

COLLECTION_FILE = "collection.json"
SHARD_DIR = "shard"
LOCK_FILE = ".lock"
ENGINE = "qdrant-edge"

#: Haystack's similarity names (as ``QdrantDocumentStore`` takes them) and Edge's distances.
DISTANCES = {"cosine": edge.Distance.Cosine, "dot_product": edge.Distance.Dot, "l2": edge.Distance.Euclid}


@dataclass(frozen=True)
class IndexSettings:
    """How a collection's vectors are stored and indexed (see :class:`EdgeDocumentStore`)."""

    embedding_dim: int
    similarity: str
    exact_search_threshold: int
    hnsw_m: int
    hnsw_ef_construct: int
    on_disk: bool
    use_sparse_embeddings: bool = False

    def edge_config(self) -> edge.EdgeConfig:
        # The optimiser builds HNSW only for segments past this many kilobytes of vectors: below the
        # threshold the graph would never be searched (see EdgeDocumentStore), so it is not built.
        threshold_kb = max(1, self.exact_search_threshold * self.embedding_dim * 4 // 1024)
        memory = edge.Memory.Cold if self.on_disk else None
        dense = edge.EdgeVectorParams(size=self.embedding_dim, distance=DISTANCES[self.similarity], memory=memory)
        # With sparse vectors, qdrant-haystack's layout: named vectors, the sparse one scored with IDF (BM25).
        sparse = (
            {SPARSE_VECTORS_NAME: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf, memory=memory)}
            if self.use_sparse_embeddings
            else None
        )
        return edge.EdgeConfig(
            vectors={DENSE_VECTORS_NAME: dense} if self.use_sparse_embeddings else dense,
            sparse_vectors=sparse,
            hnsw_config=edge.HnswIndexConfig(
                m=self.hnsw_m, ef_construct=self.hnsw_ef_construct, full_scan_threshold=threshold_kb
            ),
            optimizers=edge.EdgeOptimizersConfig(indexing_threshold=threshold_kb),
        )


class CollectionLock:
    """An exclusive lock on a collection folder, held while one process has it open."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self, description: str) -> None:
        import portalocker  # as qdrant_client imports it: late, it probes the file system on import

        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open while the lock is held)
        try:
            portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            where = "in this process already" if holder == str(os.getpid()) else "in another process"
            raise StoreError(
                f"{description} is open {where}{f' (pid {holder})' if holder else ''}: an embedded "
                "store is used by one process at a time. Close it there (store.close()) or wait for that process "
                "to end; for concurrent access, push it to a Qdrant server (`simlm-haystack push`)."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            import portalocker

            self._file.seek(0)
            self._file.truncate()
            portalocker.unlock(self._file)
            self._file.close()
            self._file = None


def read_collection_file(directory: Path) -> dict[str, Any] | None:
    """The collection file (``collection.json``) in ``directory``, or None for a folder without one."""
    path = directory / COLLECTION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StoreError(f"{path} is not readable JSON ({error}); it describes the collection beside it") from error


def write_collection_file(directory: Path, contents: dict[str, Any]) -> None:
    """Write the collection file (``collection.json``) atomically: a crash leaves the old file or the new one,
    never half of one."""
    temporary = directory / f"{COLLECTION_FILE}.tmp"
    temporary.write_text(json.dumps(contents, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, directory / COLLECTION_FILE)


def open_collection(directory: Path, index: str, settings: IndexSettings) -> tuple[edge.EdgeShard, CollectionLock]:
    """Lock the collection folder, then open its shard, creating it when there is none.

    An existing collection of another vector size or similarity, or with (without) sparse vectors opened
    without (with) them, is a :class:`CollectionMismatchError` before anything is written; a folder another
    process holds is a :class:`StoreError`.
    """
    description = f"Qdrant Edge collection {index!r} at {directory}"
    directory.mkdir(parents=True, exist_ok=True)
    lock = CollectionLock(directory)
    lock.acquire(description)
    try:
        wanted = {
            "engine": ENGINE,
            "embedding_dim": settings.embedding_dim,
            "similarity": settings.similarity,
            "use_sparse_embeddings": settings.use_sparse_embeddings,
        }
        described = read_collection_file(directory)
        if described is not None:
            stored = (described.get("embedding_dim"), described.get("similarity"))
            if stored != (settings.embedding_dim, settings.similarity):
                raise CollectionMismatchError(
                    f"{description} cannot hold this model's vectors ({settings.embedding_dim}-d, "
                    f"{settings.similarity}): it holds {stored[0]}-d vectors compared by {stored[1]}. "
                    "Use another index name, or delete the folder to start again."
                )
            hybrid = stored_use_sparse_embeddings(described)
            if hybrid != settings.use_sparse_embeddings:
                raise CollectionMismatchError(
                    f"{description} was created {'with' if hybrid else 'without'} BM25 sparse vectors "
                    f"({SPARSE_VECTORS_NAME!r}) and cannot be opened {'without' if hybrid else 'with'} them: "
                    f"open it with use_sparse_embeddings={hybrid}, or use another index name for a "
                    f"{'dense-only' if hybrid else 'hybrid'} collection."
                )
        shard_dir = directory / SHARD_DIR
        shard = _load_or_create(shard_dir, settings, description)
        if described is None:
            write_collection_file(directory, wanted)
        return shard, lock
    except BaseException:
        lock.release()
        raise


def stored_use_sparse_embeddings(described: dict[str, Any]) -> bool:
    """Whether a collection file describes a collection with sparse vectors (files written before
    collections could have them lack the key: dense-only)."""
    return bool(described.get("use_sparse_embeddings", False))


def _load_or_create(shard_dir: Path, settings: IndexSettings, description: str) -> edge.EdgeShard:
    config = settings.edge_config()
    try:
        if (shard_dir / "segments").is_dir():
            return edge.EdgeShard.load(str(shard_dir), config)
        return edge.EdgeShard.create(str(shard_dir), config)
    except Exception as error:
        message = str(error)
        if "incompatible" in message.lower():
            raise CollectionMismatchError(f"{description} cannot hold these vectors: {message}") from error
        if "WouldBlock" in message:  # the engine's own lock on its write-ahead log
            raise StoreError(f"{description} is open elsewhere: {message}") from error
        raise StoreError(f"Cannot open {description}: {message}") from error


def is_edge_collection(collection_path: str | Path) -> bool:
    """Whether ``collection_path`` (``<path>/<index>``) holds a Qdrant Edge collection (its file or its shard)."""
    folder = Path(collection_path)
    return (folder / COLLECTION_FILE).is_file() or (folder / SHARD_DIR).is_dir()
