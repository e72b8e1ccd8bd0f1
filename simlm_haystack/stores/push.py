"""From one machine to a cluster: copy an embedded collection into a Qdrant server or cluster collection.

Points are copied as they are stored (the same ids, vectors and payloads), so nothing is encoded again
and the server collection answers a ``QdrantDocumentStore(url=..., index=...)`` exactly as the embedded
one answered. A collection with sparse vectors keeps its layout: an Edge one created with
``use_sparse_embeddings=True`` becomes qdrant-haystack's hybrid collection (``"text-dense"`` and
``"text-sparse"`` with the IDF modifier), which ``QdrantDocumentStore(use_sparse_embeddings=True,
sparse_idf=True)`` and its ``QdrantHybridRetriever`` search as they are; a local-mode collection's named
and sparse vectors are copied with their settings.

The copy is resumable: each batch first asks the target which of its ids it holds and writes only the
others, so running the same push again after an interruption finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME
from qdrant_client import QdrantClient
from qdrant_client.http import models
from tqdm.auto import tqdm

from simlm_haystack.errors import CollectionMismatchError, StoreError
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.edge.collection import read_collection_file, stored_use_sparse_embeddings
from simlm_haystack.stores.engines import embedded_engine
from simlm_haystack.stores.identity import METADATA_KEY, EncoderIdentity, check_identity, qdrant_collection_identity
from simlm_haystack.stores.qdrant import is_transient, transient_retrying

logger = logging.getLogger(__name__)

DISTANCES = {"cosine": models.Distance.COSINE, "dot_product": models.Distance.DOT, "l2": models.Distance.EUCLID}


@dataclass(frozen=True)
class PushReport:
    """What a push did: points in the source, copied by this run, found in the target already, and the
    target's count at the end."""

    source_points: int
    copied: int
    already_there: int
    target_points: int


#: A collection's dense vectors: one unnamed, or named ones.
DenseConfig = models.VectorParams | dict[str, models.VectorParams]
#: A collection's sparse vectors by name (None: none).
SparseConfig = dict[str, models.SparseVectorParams] | None


@dataclass
class _Source:
    vectors: DenseConfig
    count: int
    batches: Callable[[int], Iterator[list[models.PointStruct]]]
    close: Callable[[], None]
    #: The encoder identity kept with the source (see :mod:`simlm_haystack.stores.identity`), if any.
    encoder: dict[str, Any] | None = None
    sparse_vectors: SparseConfig = None


def _edge_source(path: str, index: str) -> _Source:
    described = read_collection_file(Path(path) / index)
    if described is None:
        raise StoreError(f"No Qdrant Edge collection {index!r} at {path}")
    hybrid = stored_use_sparse_embeddings(described)
    store = EdgeDocumentStore(
        path=path,
        index=index,
        embedding_dim=described["embedding_dim"],
        similarity=described["similarity"],
        use_sparse_embeddings=hybrid,
    )

    def batches(size: int) -> Iterator[list[models.PointStruct]]:
        for records in store.scroll_points(size):
            yield [_point(record.id, record.vector, record.payload) for record in records]

    dense = models.VectorParams(size=described["embedding_dim"], distance=DISTANCES[described["similarity"]])
    return _Source(
        {DENSE_VECTORS_NAME: dense} if hybrid else dense,
        store.count_documents(),
        batches,
        store.close,
        described.get(METADATA_KEY),
        # qdrant-haystack's hybrid layout (QdrantDocumentStore(use_sparse_embeddings=True, sparse_idf=True)).
        {SPARSE_VECTORS_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)} if hybrid else None,
    )


def _local_source(path: str, index: str) -> _Source:
    client = QdrantClient(path=path)
    if not client.collection_exists(index):
        client.close()
        raise StoreError(f"No Qdrant collection {index!r} in local mode at {path}")
    params = client.get_collection(index).config.params

    def batches(size: int) -> Iterator[list[models.PointStruct]]:
        offset = None
        while True:
            records, offset = client.scroll(index, limit=size, offset=offset, with_payload=True, with_vectors=True)
            yield [_point(record.id, record.vector, record.payload) for record in records]
            if offset is None:
                return

    encoder = (client.get_collection(index).config.metadata or {}).get(METADATA_KEY)
    count = client.count(index, exact=True).count
    # Its vectors as they are configured, named or not, sparse ones with their modifiers.
    return _Source(params.vectors or {}, count, batches, client.close, encoder, params.sparse_vectors or None)


def _point(point_id: Any, vector: Any, payload: dict[str, Any] | None) -> models.PointStruct:
    # Edge gives ids as uuid.UUID, qdrant_client as strings; integer ids stay integers.
    if isinstance(vector, dict):  # named vectors; a sparse one (Edge's or qdrant_client's) as qdrant_client's
        vector = {
            name: models.SparseVector(indices=list(value.indices), values=list(value.values))
            if hasattr(value, "indices")
            else value
            for name, value in vector.items()
        }
    return models.PointStruct(
        id=point_id if isinstance(point_id, int) else str(point_id), vector=vector or {}, payload=payload
    )


def _layout(vectors: DenseConfig | None, sparse_vectors: SparseConfig) -> tuple[Any, Any]:
    """What must agree between a source and an existing target: each dense vector's name, size and distance,
    and each sparse vector's name and modifier (IDF or none)."""
    if isinstance(vectors, models.VectorParams):
        dense: Any = (vectors.size, vectors.distance)
    else:
        dense = {name: (params.size, params.distance) for name, params in (vectors or {}).items()}
    return dense, {name: params.modifier or models.Modifier.NONE for name, params in (sparse_vectors or {}).items()}


def _describe_layout(vectors: DenseConfig | None, sparse_vectors: SparseConfig) -> str:
    dense, sparse = _layout(vectors, sparse_vectors)
    if isinstance(dense, tuple):
        parts = [f"{dense[0]}-d, {dense[1].value}"]
    else:
        parts = [f"{name!r}: {size}-d, {distance.value}" for name, (size, distance) in dense.items()]
    parts += [f"{name!r}: sparse, modifier {modifier.value}" for name, modifier in sparse.items()]
    return "; ".join(parts) if parts else "no vectors"


def _open_target(
    client: QdrantClient,
    name: str,
    vectors: DenseConfig,
    encoder: dict[str, Any] | None,
    sparse_vectors: SparseConfig = None,
    **cluster: int | None,
) -> None:
    """Create the target collection with the source's vectors (sizes, distances, sparse vectors and their
    modifiers) and encoder identity, or check an existing one."""
    if not client.collection_exists(name):
        client.create_collection(
            name,
            vectors_config=vectors,
            sparse_vectors_config=sparse_vectors,
            metadata={METADATA_KEY: encoder} if encoder is not None else None,
            **{key: value for key, value in cluster.items() if value is not None},
        )
        return
    existing = client.get_collection(name).config.params
    if _layout(existing.vectors, existing.sparse_vectors) != _layout(vectors, sparse_vectors):
        raise CollectionMismatchError(
            f"Target collection {name!r} cannot hold these vectors ({_describe_layout(vectors, sparse_vectors)}): "
            f"it has {_describe_layout(existing.vectors, existing.sparse_vectors)}. Push into another --target-index."
        )
    if encoder is not None:  # an empty target takes the source's identity; another encoder's is refused
        target = qdrant_collection_identity(client, name, f"Target collection {name!r}")
        check_identity(target, EncoderIdentity.from_dict(encoder, "The source collection"), writes=True)


def push_collection(
    path: str,
    index: str,
    client: QdrantClient,
    *,
    target_index: str | None = None,
    engine: str | None = None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    batch_size: int = 256,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    progress_bar: bool = True,
) -> PushReport:
    """Copy collection ``index`` of the embedded store at ``path`` into ``client``'s ``target_index``.

    :param path: The embedded store's folder (``--qdrant-path``).
    :param index: The collection to copy.
    :param client: The target: any ``QdrantClient`` (a server, a cluster, Qdrant Cloud).
    :param target_index: The target collection's name (default: ``index``). It is created with the
        source's vector size and distance, and its sparse vector with the IDF modifier where it has one
        (qdrant-haystack's hybrid layout), (and ``shard_number`` / ``replication_factor``) and the encoder
        identity kept with the source (:mod:`simlm_haystack.stores.identity`); an existing one must have
        the same vectors, and no other encoder's identity.
    :param engine: ``"edge"`` or ``"local"``; detected from the folder when omitted.
    :param batch_size: Points read, checked and written at a time.
    :param retries: Retries of a transient target error, after ``backoff_seconds`` x 1, 2, 4, ...
    :returns: What was copied; the target then holds every point of the source.
    """
    engine = engine or embedded_engine(path, index)
    if engine is None:
        raise StoreError(f"No collection {index!r} at {path} (neither Qdrant Edge nor qdrant-client local mode)")
    source = _edge_source(path, index) if engine == "edge" else _local_source(path, index)
    target = target_index or index
    copied = already_there = 0
    retrying = transient_retrying(retries=retries, backoff_seconds=backoff_seconds)
    try:
        try:
            retrying(
                _open_target,
                client,
                target,
                source.vectors,
                source.encoder,
                source.sparse_vectors,
                shard_number=shard_number,
                replication_factor=replication_factor,
            )
        except Exception as error:
            if not is_transient(error):
                raise
            raise StoreError(f"Cannot reach the Qdrant target of the push: {error}") from error
        with tqdm(total=source.count, disable=not progress_bar, desc="Pushing", unit="point") as progress:
            for batch in source.batches(batch_size):
                try:
                    ids = [point.id for point in batch]
                    found = retrying(client.retrieve, target, ids=ids, with_payload=False, with_vectors=False)
                    present = {str(point.id) for point in found}
                    missing = [point for point in batch if str(point.id) not in present]
                    if missing:
                        retrying(client.upsert, target, points=missing, wait=True)
                except Exception as error:
                    raise StoreError(
                        f"Pushing {index!r} into {target!r} failed after {copied} points were copied in this run "
                        f"({type(error).__name__}: {error}). Everything copied is kept: run the same push again "
                        "to resume; points already there are skipped."
                    ) from error
                copied += len(missing)
                already_there += len(batch) - len(missing)
                progress.update(len(batch))
        target_points = client.count(target, exact=True).count
    finally:
        source.close()
    return PushReport(source.count, copied, already_there, target_points)
