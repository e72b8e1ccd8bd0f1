"""A Haystack document store on Qdrant Edge: Qdrant's Rust engine in this process, no server."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import qdrant_edge as edge
from haystack import Document, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.stores.edge.asynchronous import AsyncMethods, Filters
from simlm_haystack.stores.edge.collection import DISTANCES, SHARD_DIR, IndexSettings
from simlm_haystack.stores.edge.filters import edge_filter
from simlm_haystack.stores.edge.points import convert_id, document_from_point, document_to_point
from simlm_haystack.stores.edge.requests import (
    VectorLayout,
    dense_query,
    dense_search_params,
    hybrid_request,
    scaled_score,
    single_request,
    sparse_query,
    sparse_search_params,
)
from simlm_haystack.stores.edge.shard import OpenCollection
from simlm_haystack.stores.fusion import HybridSearch, deepened


class EdgeDocumentStore(AsyncMethods, OpenCollection):
    """Documents and their vectors in a Qdrant Edge shard on local disk, searched in-process.

    Points are laid out as ``QdrantDocumentStore`` lays them out (same point ids, same payload), so
    :func:`~simlm_haystack.stores.push.push_collection` can copy a collection to a Qdrant server as it is.

    - **One process at a time.** Opening the store locks ``<path>/<index>``; a second process (or a
      second store on the same folder) gets a :class:`~simlm_haystack.errors.StoreError` naming the
      folder and the process that holds it. The lock is the operating system's: a killed process frees it.
    - **Index.** Writes land in plain segments, searched exactly. :meth:`optimize` builds the HNSW graph
      (and merges segments); :func:`~simlm_haystack.indexing.index_documents` calls it after the last
      chunk, and a search after other writes calls it first, so the first query after a bulk write made
      some other way takes the time of building the index. A collection of fewer than
      ``exact_search_threshold`` points is always searched exactly (no graph is built for it); a larger
      one through HNSW with ``hnsw_ef`` candidates per search. The defaults (``hnsw_m=32``,
      ``hnsw_ef_construct=200``, ``hnsw_ef=128``) kept recall@10 against exact search at 0.99 on 200,000
      384-d SciFact-like vectors, where Qdrant's own (16, 100) needed ``hnsw_ef=512`` for 0.98
      (BENCHMARKS.md, "Embedded scale"); building the graph takes about twice as long, still little
      beside encoding the documents.
    - **Durability.** Every write goes to the engine's write-ahead log before it returns; a killed
      process loses nothing that a write call returned for.
    - **Sparse vectors** (``use_sparse_embeddings=True``). qdrant-haystack's hybrid layout: the dense vector
      named ``"text-dense"``, ``Document.sparse_embedding`` (BM25, :mod:`simlm_haystack.sparse`) under
      ``"text-sparse"``, scored with Qdrant's IDF modifier, so a sparse search is BM25 over the collection.
      A document without a sparse embedding is written without one, as qdrant-haystack writes it: dense
      search finds it, sparse search does not, and it does not count in the IDF. The IDF is computed over
      the documents stored at the time of each search: the engine's own statistics keep counting deleted
      and replaced points until their segment is rebuilt (a reload rebuilds only the segments still being
      written, not optimised ones), so every sparse search asks for them afresh. Measured on 51,830
      SciFact passages (ten copies), one BM25 query took 1.2-1.4 ms so, 0.4-0.7 ms with the cached
      statistics. Search with :class:`~simlm_haystack.stores.edge.EdgeSparseEmbeddingRetriever` and
      :class:`~simlm_haystack.stores.edge.EdgeHybridRetriever`; the setting is kept in the collection file,
      and opening a collection with the other one is a :class:`~simlm_haystack.errors.CollectionMismatchError`.

    :param path: The folder holding the collections (each in ``<path>/<index>``). Without one, a
        temporary folder is used and removed by :meth:`close`: the store is then in-memory in effect.
    :param index: The collection name.
    :param embedding_dim: The vector size.
    :param similarity: ``"cosine"``, ``"dot_product"`` or ``"l2"``, as for ``QdrantDocumentStore``.
    :param hnsw_ef: Candidates kept while searching the HNSW graph: higher is closer to exact and slower.
        ``None`` uses ``hnsw_ef_construct``. Each search can override it (``EdgeEmbeddingRetriever(hnsw_ef=...)``).
    :param exact_search_threshold: Below this many points every search is exact.
    :param hnsw_m: Edges per node of the HNSW graph.
    :param hnsw_ef_construct: Candidates kept while building the graph.
    :param on_disk: Keep vectors on disk and read them through the page cache (less memory, slower search).
    :param write_batch_size: Points written per engine call.
    :param scroll_size: Points read per engine call by :meth:`filter_documents`.
    :param use_sparse_embeddings: Give the collection a BM25 sparse vector beside the dense one (see above).
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        index: str = "Document",
        embedding_dim: int = 768,
        similarity: str = "cosine",
        hnsw_ef: int | None = 128,
        exact_search_threshold: int = 10_000,
        hnsw_m: int = 32,
        hnsw_ef_construct: int = 200,
        on_disk: bool = False,
        write_batch_size: int = 1000,
        scroll_size: int = 10_000,
        use_sparse_embeddings: bool = False,
    ) -> None:
        if similarity not in DISTANCES:
            raise ValueError(f"similarity must be one of {sorted(DISTANCES)}, not {similarity!r}")
        self.embedding_dim = embedding_dim
        self.similarity = similarity
        self.hnsw_ef = hnsw_ef
        self.exact_search_threshold = exact_search_threshold
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construct = hnsw_ef_construct
        self.on_disk = on_disk
        self.write_batch_size = write_batch_size
        self.scroll_size = scroll_size
        self.use_sparse_embeddings = use_sparse_embeddings
        settings = IndexSettings(
            embedding_dim, similarity, exact_search_threshold, hnsw_m, hnsw_ef_construct, on_disk, use_sparse_embeddings
        )
        OpenCollection.__init__(self, path, index, settings)

    # --- reading ------------------------------------------------------------------------------------------------

    def count_documents(self) -> int:
        """The number of documents in the collection."""
        return self._call("count", lambda shard: shard.count(edge.CountRequest(exact=True)))

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        """The number of documents matching Haystack ``filters``."""
        condition = edge_filter(filters)
        return self._call("count", lambda shard: shard.count(edge.CountRequest(filter=condition, exact=True)))

    def filter_documents(self, filters: Filters = None) -> list[Document]:
        """The documents matching Haystack ``filters`` (all without), with their embeddings."""
        return [self._document(record) for records in self._scroll(edge_filter(filters)) for record in records]

    def _scroll(self, condition: edge.Filter | None, batch_size: int | None = None) -> Iterator[list[edge.Record]]:
        shard = self._open_shard()
        offset = None
        while True:
            request = edge.ScrollRequest(
                offset=offset,
                limit=batch_size or self.scroll_size,
                filter=condition,
                with_payload=True,
                with_vector=True,
            )
            records, offset = self._call("read", lambda _, request=request: shard.scroll(request))
            yield records
            if offset is None:
                return

    def scroll_points(self, batch_size: int) -> Iterator[list[edge.Record]]:
        """Every stored point (id, vector, payload) in batches of up to ``batch_size``, as the engine holds it."""
        return self._scroll(None, batch_size)

    def get_documents_by_id(self, ids: list[str]) -> list[Document]:
        """The stored documents among ``ids``, with their embeddings."""
        if not ids:
            return []
        point_ids = [convert_id(document_id) for document_id in ids]
        records = self._call("read", lambda shard: shard.retrieve(point_ids, True, True))
        return [self._document(record) for record in records]

    def _document(self, point: Any, score: float | None = None) -> Document:
        return document_from_point(point, score=score, use_sparse_embeddings=self.use_sparse_embeddings)

    def _documents(self, points: list[Any], scale_score: bool = False) -> list[Document]:
        return [
            self._document(point, scaled_score(point.score, self.similarity) if scale_score else point.score)
            for point in points
        ]

    # --- searching (the retrievers' public methods; the requests are built in requests.py) ------------------------

    @property
    def _layout(self) -> VectorLayout:
        return VectorLayout(self.index, self.embedding_dim, self.similarity, self.use_sparse_embeddings)

    def embedding_retrieval(
        self,
        query_embedding: list[float],
        filters: Filters = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        score_threshold: float | None = None,
        hnsw_ef: int | None = None,
    ) -> list[Document]:
        """The ``top_k`` documents nearest to ``query_embedding`` (see the class docstring for exact vs HNSW);
        ``hnsw_ef`` overrides the store's for this search."""
        query = dense_query(self._layout, query_embedding)
        condition = edge_filter(filters)
        shard = self._open_shard()
        request = single_request(
            query,
            self._dense_search_params(shard, hnsw_ef),
            condition=condition,
            top_k=top_k,
            return_embedding=return_embedding,
            score_threshold=score_threshold,
        )
        return self._documents(self._call("search", lambda _: shard.query(request)), scale_score)

    def sparse_retrieval(
        self,
        query_sparse_embedding: SparseEmbedding,
        filters: Filters = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        score_threshold: float | None = None,
    ) -> list[Document]:
        """The ``top_k`` documents scoring highest for ``query_sparse_embedding`` (BM25 with the IDF of the
        documents stored now), as ``QdrantDocumentStore._query_by_sparse`` gives them (``scale_score`` scales
        as for the dense similarity, as it does).

        :raises CollectionMismatchError: The collection has no sparse vectors.
        """
        self.require_sparse_vectors("A sparse search")
        query = sparse_query(query_sparse_embedding)
        condition = edge_filter(filters)
        shard = self._open_shard()
        request = single_request(
            query,
            sparse_search_params(),
            condition=condition,
            top_k=top_k,
            return_embedding=return_embedding,
            score_threshold=score_threshold,
        )
        return self._documents(self._call("search", lambda _: shard.query(request)), scale_score)

    def hybrid_retrieval(
        self,
        query_embedding: list[float],
        query_sparse_embedding: SparseEmbedding,
        filters: Filters = None,
        top_k: int = 10,
        return_embedding: bool = False,
        score_threshold: float | None = None,
        search: HybridSearch | None = None,
    ) -> list[Document]:
        """The ``top_k`` documents of the dense and the sparse candidates fused as ``search`` says
        (:class:`HybridSearch`'s defaults without; see :func:`~simlm_haystack.stores.edge.requests.hybrid_request`);
        beyond ``prefetch_limit``, a deeper fusion's others follow (:func:`~simlm_haystack.stores.fusion.deepened`).

        :raises CollectionMismatchError: The collection has no sparse vectors.
        """
        self.require_sparse_vectors("A hybrid search")
        search = search if search is not None else HybridSearch()
        shard = self._open_shard()
        arguments = {
            "search": search,
            "condition": edge_filter(filters),
            "top_k": top_k,
            "return_embedding": return_embedding,
            "score_threshold": score_threshold,
        }
        queries = (dense_query(self._layout, query_embedding), self._dense_search_params(shard))
        sparse = sparse_query(query_sparse_embedding)
        request = hybrid_request(*queries, sparse, **arguments)
        found = self._documents(self._call("search", lambda _: shard.query(request)))
        candidates = search.deeper(top_k, len(found))
        if candidates is None:
            return found
        # The threshold is applied to the deeper fusion's scores once they are shifted below the first's.
        deeper = hybrid_request(*queries, sparse, **{**arguments, "score_threshold": None}, candidates=candidates)
        return deepened(
            found, self._documents(self._call("search", lambda _: shard.query(deeper))), top_k, score_threshold
        )

    def _dense_search_params(self, shard: edge.EdgeShard, hnsw_ef: int | None = None) -> edge.SearchParams:
        """Exact below ``exact_search_threshold`` points, else HNSW (the graph built first if writes came since)."""
        if self._written_since_optimize:
            self.optimize()
        return dense_search_params(shard.info().points_count, self.exact_search_threshold, hnsw_ef or self.hnsw_ef)

    def require_sparse_vectors(self, what: str) -> None:
        """Raise :class:`~simlm_haystack.errors.CollectionMismatchError`, saying that ``what`` needs them, when the
        collection keeps no sparse vectors (``use_sparse_embeddings=False``)."""
        if not self.use_sparse_embeddings:
            raise CollectionMismatchError(
                f"{what} needs BM25 sparse vectors, and Qdrant Edge collection {self.index!r}"
                f"{f' at {self.collection_path}' if self.collection_path else ''} was not indexed with them "
                "(use_sparse_embeddings=False). Index the documents with their sparse embeddings into a collection "
                "created with use_sparse_embeddings=True."
            )

    # --- writing ------------------------------------------------------------------------------------------------

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.FAIL) -> int:
        """Write ``documents``; returns how many were written.

        ``FAIL`` raises ``DuplicateDocumentError`` (writing nothing) when an id is stored already,
        ``SKIP`` leaves stored ids as they are, ``OVERWRITE`` (and ``NONE``, as in ``QdrantDocumentStore``)
        replaces them. An embedding of another size is an error naming the document, before anything is written.
        """
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise ValueError("write_documents() expects a list of Documents")
        if policy in (DuplicatePolicy.SKIP, DuplicatePolicy.FAIL):
            first_of_each_id: dict[str, Document] = {}
            for document in documents:
                first_of_each_id.setdefault(document.id, document)
            documents = list(first_of_each_id.values())
            stored = self._stored_ids([document.id for document in documents])
            if stored and policy == DuplicatePolicy.FAIL:
                raise DuplicateDocumentError(
                    f"Documents with ids {', '.join(sorted(stored))} already exist in collection {self.index!r}"
                )
            documents = [document for document in documents if document.id not in stored]
        points = [
            document_to_point(document, self.embedding_dim, self.index, self.use_sparse_embeddings)
            for document in documents
        ]
        for start in range(0, len(points), self.write_batch_size):
            operation = edge.UpdateOperation.upsert_points(points[start : start + self.write_batch_size])
            self._update(operation)
        return len(points)

    def _stored_ids(self, ids: list[str]) -> set[str]:
        by_point_id = {uuid.UUID(convert_id(document_id)): document_id for document_id in ids}
        records = self._call("read", lambda shard: shard.retrieve(list(by_point_id), False, False))
        return {by_point_id[uuid.UUID(str(record.id))] for record in records}

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete the documents with these ids; ids not stored are ignored."""
        if document_ids:
            self._update(edge.UpdateOperation.delete_points([convert_id(i) for i in document_ids]))

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching Haystack ``filters``; returns how many. Empty filters delete nothing."""
        condition = edge_filter(filters)
        if condition is None:
            return 0
        with self._state:  # counted and deleted under one lock: no write of this store in between
            matching = self.count_documents_by_filter(filters)
            self._update(edge.UpdateOperation.delete_points_by_filter(condition))
        return matching

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge ``meta`` into the meta of the documents matching ``filters``; returns how many."""
        condition = edge_filter(filters)
        if condition is None:
            return 0
        with self._state:
            matching = self.count_documents_by_filter(filters)
            self._update(edge.UpdateOperation.set_payload_by_filter(condition, dict(meta), key="meta"))
        return matching

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Delete every document; with ``recreate_index`` the shard is deleted and created again (same settings)."""
        if not recreate_index:
            self._update(edge.UpdateOperation.delete_points_by_filter(edge.Filter(must=[])))
            return
        with self._state:
            self._open_shard()
            collection_path = self.collection_path
            self.close()  # a temporary store's folder goes too; opening again makes a new one
            if collection_path is not None and self.path is not None:
                shutil.rmtree(collection_path / SHARD_DIR)
            self._open_shard()

    # --- what the layers above ask of a store (answered through simlm_haystack.stores.edge.support) --------------

    def finish_writing(self) -> None:
        """After a bulk write: build the HNSW graph now rather than at the first query (see :meth:`optimize`)."""
        self.optimize()

    # --- serialisation ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Serialise the store's settings (not its documents; a temporary store comes back empty)."""
        return default_to_dict(
            self,
            path=self.path,
            index=self.index,
            embedding_dim=self.embedding_dim,
            similarity=self.similarity,
            hnsw_ef=self.hnsw_ef,
            exact_search_threshold=self.exact_search_threshold,
            hnsw_m=self.hnsw_m,
            hnsw_ef_construct=self.hnsw_ef_construct,
            on_disk=self.on_disk,
            write_batch_size=self.write_batch_size,
            scroll_size=self.scroll_size,
            use_sparse_embeddings=self.use_sparse_embeddings,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeDocumentStore:
        """Deserialise a store written by :meth:`to_dict`."""
        return default_from_dict(cls, data)
