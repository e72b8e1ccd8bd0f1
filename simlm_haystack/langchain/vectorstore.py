"""LangChain's Qdrant vector store, with titles fed to the encoders and the collection shaped by the recipe."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterable, Sequence
from contextlib import suppress
from typing import Any

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME, convert_id
from langchain_core.documents import Document
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings
from langchain_qdrant import SparseVector as LangChainSparseVector
from qdrant_client import QdrantClient, models

from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings
from simlm_haystack.langchain.sparse import BM25SparseEmbeddings
from simlm_haystack.sparse import document_text
from simlm_haystack.stores.identity import (
    CollectionCheck,
    CollectionIdentity,
    EncoderIdentity,
    qdrant_collection_identity,
)

#: Keyword values under which this store reads and writes points as Haystack's ``QdrantDocumentStore``
#: (qdrant-haystack) does: the text under ``"content"``, the meta under ``"meta"``, one unnamed dense
#: vector, the document id under ``"id"`` and, as the point id, qdrant-haystack's uuid5 of it. Pass them
#: to ``from_existing_collection`` to search a collection indexed by Haystack or the CLI, or to
#: ``from_documents`` to index one that Haystack can search. For a Haystack store with
#: ``use_sparse_embeddings=True`` use :data:`HAYSTACK_HYBRID_LAYOUT`.
HAYSTACK_LAYOUT: dict[str, str] = {"content_payload_key": "content", "metadata_payload_key": "meta", "vector_name": ""}

#: :data:`HAYSTACK_LAYOUT` for the collections of a Haystack ``QdrantDocumentStore(use_sparse_embeddings=True,
#: sparse_idf=True)``: qdrant-haystack names the dense vector ``"text-dense"`` and the sparse one
#: ``"text-sparse"``. With ``retrieval_mode=RetrievalMode.HYBRID`` (or ``SPARSE``) and the same sparse
#: embeddings as the Haystack side (:class:`~simlm_haystack.langchain.sparse.BM25SparseEmbeddings` for
#: ``BM25SparseDocumentEmbedder``), LangChain searches what Haystack's hybrid indexing wrote, and Haystack's
#: ``QdrantHybridRetriever`` what LangChain wrote; in DENSE mode it reads the ``"text-dense"`` vector alone.
HAYSTACK_HYBRID_LAYOUT: dict[str, str] = {
    **HAYSTACK_LAYOUT,
    "vector_name": DENSE_VECTORS_NAME,
    "sparse_vector_name": SPARSE_VECTORS_NAME,
}

#: The retrieval modes that read and write the dense vector, and those that read and write the sparse one.
DENSE_MODES: tuple[RetrievalMode, ...] = (RetrievalMode.DENSE, RetrievalMode.HYBRID)
SPARSE_MODES: tuple[RetrievalMode, ...] = (RetrievalMode.SPARSE, RetrievalMode.HYBRID)

#: The payload key that keeps a document's id as its writer gave it, in both layouts (Haystack's key):
#: a point id is only what Qdrant accepts, so it is not always the caller's id.
ID_PAYLOAD_KEY = "id"
#: The largest point id Qdrant takes as an integer (unsigned 64 bits).
_MAX_POINT_INTEGER = 2**64 - 1


def _is_haystack_layout(content_payload_key: str, metadata_payload_key: str) -> bool:
    return (content_payload_key, metadata_payload_key) == ("content", "meta")


def point_id(document_id: str | int, *, haystack_layout: bool) -> str | int:
    """The Qdrant point id a document id is stored under.

    In the Haystack layout always qdrant-haystack's uuid5 of the id as a string (``convert_id``), so that
    both frameworks address the same point. In LangChain's layout an id that Qdrant already takes keeps
    its point id: a UUID (any form Qdrant parses, sent in its canonical form) or an unsigned 64-bit
    integer, also written as a decimal string, because LangChain's ``Document.id`` turns ``7`` into
    ``"7"``. These are the only ids langchain-qdrant accepts, so its collections keep their point ids;
    any other id, which langchain-qdrant refuses, becomes the same uuid5 as in the Haystack layout.
    """
    if haystack_layout:
        return convert_id(str(document_id))
    if isinstance(document_id, str):
        with suppress(ValueError):
            return str(uuid.UUID(document_id))
        if document_id.isascii() and document_id.isdecimal() and str(int(document_id)) == document_id:
            document_id = int(document_id)
    if isinstance(document_id, int) and not isinstance(document_id, bool) and 0 <= document_id <= _MAX_POINT_INTEGER:
        return document_id
    return convert_id(str(document_id))


def sparse_identity(sparse_embedding: SparseEmbeddings) -> dict[str, Any]:
    """The sparse side of a collection's encoder identity (:class:`~simlm_haystack.stores.identity.EncoderIdentity`).

    For :class:`BM25SparseEmbeddings`, its :meth:`~simlm_haystack.sparse.BM25Settings.to_dict`: the record the
    Haystack BM25 components keep, so that both frameworks recognise each other's collections. Other sparse
    embeddings keep no settings this package can read, so they are recorded by what can be seen: their class
    (``{"embeddings": "module.Class"}``) and, where they have one, their ``model_name`` (langchain-qdrant's
    ``FastEmbedSparse``). That tells a BM25 collection from a SPLADE one, but not two configurations of the
    same class apart.
    """
    if isinstance(sparse_embedding, BM25SparseEmbeddings):
        return sparse_embedding.settings.to_dict()
    kind = type(sparse_embedding)
    identity: dict[str, Any] = {"embeddings": f"{kind.__module__}.{kind.__qualname__}"}
    model_name = getattr(sparse_embedding, "model_name", None)
    if isinstance(model_name, str):
        identity["model_name"] = model_name
    return identity


def _qdrant_client(options: dict[str, Any]) -> QdrantClient:
    """A client for ``options``; a server gets ``QDRANT_API_KEY`` from the environment when no key is given."""
    local = options.get("path") is not None or options.get("location") == ":memory:"
    if not local and options.get("api_key") is None and os.environ.get("QDRANT_API_KEY"):
        options = {**options, "api_key": os.environ["QDRANT_API_KEY"]}
    return QdrantClient(**options)


class DualEncoderQdrantVectorStore(QdrantVectorStore):
    """A ``langchain_qdrant.QdrantVectorStore`` for :class:`DualEncoderEmbeddings`, dense, sparse or hybrid.

    What differs from its parent: each document's title (``metadata[title_key]``) reaches the encoders
    (the dense one as the recipe says, SimLM's ``(title, text)`` pair; the sparse one as
    ``title + " " + text``); the distance is the recipe's (TAS-B: dot product) and a new collection gets
    the model's vector size; a new sparse vector gets Qdrant's IDF modifier (BM25 needs it; langchain-qdrant
    sets none); an existing collection of another size or distance, or without the sparse vector the mode
    needs, is refused (:class:`~simlm_haystack.CollectionMismatchError`) before anything is written; and
    the collection's encoder identity is checked (see :meth:`check_collection`). Everything else is
    LangChain's: ``from_texts`` / ``from_documents``, ``add_documents``, ``similarity_search(_with_score)``
    (in HYBRID mode its ``hybrid_fusion=`` too), filters as ``qdrant_client.models.Filter``,
    ``as_retriever``, ``from_existing_collection``, and ``path=`` (embedded), ``location=":memory:"`` or
    ``url=`` (with ``api_key=``, read from ``QDRANT_API_KEY`` when not given).

    ``retrieval_mode`` is langchain-qdrant's: ``RetrievalMode.DENSE`` (the default) searches the dual
    encoder's vectors; ``SPARSE`` the ``sparse_embedding``'s (e.g.
    :class:`~simlm_haystack.langchain.sparse.BM25SparseEmbeddings`; no dense model is needed or loaded, so
    ``embedding`` may be left out); ``HYBRID`` both, fused by langchain-qdrant's own query (each side's
    ``k`` best, reciprocal rank fusion unless ``hybrid_fusion`` says otherwise). A store writes the vectors
    its mode searches.

    Ids and metadata are the caller's, as LangChain's standard tests ask: any string or integer id is
    taken (Qdrant's point id is :func:`point_id` of it, the id itself kept in the payload under
    ``"id"``), and a document comes back with ``Document.id`` set and its metadata as it was written,
    without the ``_id`` and ``_collection_name`` that ``QdrantVectorStore`` adds.

    ```python
    from langchain_qdrant import RetrievalMode
    from simlm_haystack.langchain import BM25SparseEmbeddings, DualEncoderEmbeddings, DualEncoderQdrantVectorStore

    embeddings = DualEncoderEmbeddings(model="intfloat/simlm-base-msmarco-finetuned")
    store = DualEncoderQdrantVectorStore.from_documents(
        docs, embeddings, path="qdrant_data", collection_name="docs",
        retrieval_mode=RetrievalMode.HYBRID, sparse_embedding=BM25SparseEmbeddings(),
    )
    retriever = store.as_retriever(search_kwargs={"k": 10})
    ```

    With :data:`HAYSTACK_LAYOUT`'s keyword values (dense) or :data:`HAYSTACK_HYBRID_LAYOUT`'s (any mode)
    the store shares collections with Haystack's ``QdrantDocumentStore`` (see there).

    :param client: The Qdrant client.
    :param collection_name: The collection; it must exist (``from_texts`` / ``from_documents`` create it).
    :param embedding: The dense encoder; needed in DENSE and HYBRID mode.
    :param retrieval_mode: ``RetrievalMode.DENSE``, ``SPARSE`` or ``HYBRID`` (or its value, ``"hybrid"``).
    :param sparse_embedding: The sparse encoder (any langchain-qdrant ``SparseEmbeddings``); needed in SPARSE
        and HYBRID mode, refused in DENSE mode (where it would silently not be used).
    :param vector_name: The dense vector's name; ``""``: the unnamed vector.
    :param sparse_vector_name: The sparse vector's name.
    :param content_payload_key: The payload key of a document's text.
    :param metadata_payload_key: The payload key of a document's metadata.
    :param distance: Must be the recipe's, which is the default.
    :param title_key: The metadata key that holds a document's title; ``None`` reads no title.
    :param validate_collection_config: Check the collection now, as a reader (see :meth:`check_collection`);
        a write checks it as a writer in any case.
    :param allow_other_encoder: Use a collection whose recorded encoder (model weights, recipe or sparse
        side) differs from this store's, with a warning, instead of refusing it.
    :raises TypeError: The mode's embeddings are missing or of another type.
    """

    def __init__(
        self,
        client: QdrantClient,
        collection_name: str,
        embedding: DualEncoderEmbeddings | None = None,
        *,
        retrieval_mode: RetrievalMode = RetrievalMode.DENSE,
        sparse_embedding: SparseEmbeddings | None = None,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        sparse_vector_name: str = QdrantVectorStore.SPARSE_VECTOR_NAME,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        distance: models.Distance | None = None,
        title_key: str | None = "title",
        validate_collection_config: bool = True,
        allow_other_encoder: bool = False,
    ) -> None:
        retrieval_mode = RetrievalMode(retrieval_mode)
        # SPARSE mode may go without a dense model (as in the parent); a dense model given there is not loaded.
        if (retrieval_mode in DENSE_MODES or embedding is not None) and not isinstance(
            embedding, DualEncoderEmbeddings
        ):
            raise TypeError(
                f"DualEncoderQdrantVectorStore needs DualEncoderEmbeddings, not {type(embedding).__name__}, "
                f"in {retrieval_mode.name} mode; for other embeddings use langchain_qdrant.QdrantVectorStore"
            )
        if retrieval_mode in SPARSE_MODES:
            if not isinstance(sparse_embedding, SparseEmbeddings):
                raise TypeError(
                    f"retrieval_mode={retrieval_mode.name} needs sparse_embedding=, a langchain-qdrant "
                    f"SparseEmbeddings such as BM25SparseEmbeddings(), not {type(sparse_embedding).__name__}"
                )
        elif sparse_embedding is not None:
            raise ValueError(
                "sparse_embedding is only used in the SPARSE and HYBRID retrieval modes: pass "
                "retrieval_mode=RetrievalMode.HYBRID (or SPARSE), or leave sparse_embedding out for dense search"
            )
        if ID_PAYLOAD_KEY in (content_payload_key, metadata_payload_key):
            raise ValueError(f"the payload key {ID_PAYLOAD_KEY!r} holds document ids; keep content and metadata apart")
        if embedding is not None:
            recipe_distance = QdrantDocumentStore.SIMILARITY[embedding.recipe.similarity]
            if distance is not None and models.Distance(distance) != recipe_distance:
                raise ValueError(
                    f"distance={models.Distance(distance).value} disagrees with recipe {embedding.recipe.name!r} "
                    f"({recipe_distance.value}): the model's vectors are compared as it was trained; leave distance out"
                )
            distance = recipe_distance
        super().__init__(
            client=client,
            collection_name=collection_name,
            embedding=embedding,
            retrieval_mode=retrieval_mode,
            vector_name=vector_name,
            content_payload_key=content_payload_key,
            metadata_payload_key=metadata_payload_key,
            distance=models.Distance(distance) if distance is not None else models.Distance.COSINE,
            sparse_embedding=sparse_embedding,
            sparse_vector_name=sparse_vector_name,
            validate_embeddings=False,
            validate_collection_config=False,
        )
        self.title_key = title_key
        self.allow_other_encoder = allow_other_encoder
        # The writer's check runs once, before the first write (or when from_texts opens the collection).
        self._writer_check = CollectionCheck(
            lambda: self._collection_identity(), writes=True, allow_other_encoder=allow_other_encoder
        )
        if validate_collection_config:
            self.check_collection()

    @property
    def embeddings(self) -> DualEncoderEmbeddings | None:
        """The dense encoder; ``None`` for a SPARSE store built without one."""
        return self._embeddings  # type: ignore[return-value]  # __init__ took DualEncoderEmbeddings or None

    @property
    def _dense(self) -> DualEncoderEmbeddings:
        embeddings = self.embeddings
        if embeddings is None:
            raise ValueError(
                f"{type(self).__name__} has no dense embeddings (retrieval_mode={self.retrieval_mode.name})"
            )
        return embeddings

    def _uses_dense(self) -> bool:
        return self.retrieval_mode in DENSE_MODES

    def _uses_sparse(self) -> bool:
        return self.retrieval_mode in SPARSE_MODES

    def _bm25(self) -> bool:
        """Whether the sparse side is BM25 (whose scores need the collection's IDF modifier)."""
        return self._uses_sparse() and isinstance(self.sparse_embeddings, BM25SparseEmbeddings)

    def _collection_identity(self) -> CollectionIdentity:
        return qdrant_collection_identity(self.client, self.collection_name)

    def encoder_identity(self) -> EncoderIdentity:
        """What this store's vectors are, as a collection records it: the dense encoder in DENSE and HYBRID mode
        (its model is loaded for the fingerprint, nothing is encoded), the sparse side (:func:`sparse_identity`)
        in SPARSE and HYBRID mode."""
        dense = self._dense if self._uses_dense() else None
        return EncoderIdentity.of(
            None if dense is None else dense.model,
            None if dense is None else dense.load_encoder(),
            sparse=sparse_identity(self.sparse_embeddings) if self._uses_sparse() else None,
        )

    def check_collection(
        self,
        *,
        writes: bool = False,
        create: bool = False,
        vector_params: dict[str, Any] | None = None,
        sparse_vector_params: dict[str, Any] | None = None,
        collection_create_options: dict[str, Any] | None = None,
    ) -> None:
        """The collection must hold the vectors this store's mode reads (``writes``: writes) and no other encoder's.

        A missing collection is created when ``create`` is set: a dense vector (DENSE and HYBRID mode) with the
        model's size and the recipe's distance, unnamed when ``vector_name`` is ``""`` as Haystack creates it,
        plus ``vector_params``; a sparse vector (SPARSE and HYBRID mode) with Qdrant's IDF modifier unless
        ``sparse_vector_params`` say otherwise (a learned sparse model such as SPLADE wants
        ``{"modifier": None}``; :class:`BM25SparseEmbeddings` refuses that, since without IDF its scores are
        not BM25's). An existing collection whose dense vector has another size or distance, that lacks the
        sparse vector, or whose sparse vector lacks the IDF modifier that BM25 needs, is a
        :class:`~simlm_haystack.CollectionMismatchError` naming both.

        Then the encoder identity recorded in the collection's metadata (:mod:`simlm_haystack.stores.identity`,
        the record Haystack's stores keep). A writer must match it on both sides, the dense encoder and the
        sparse one: so a DENSE writer is refused by a collection filled with hybrid points (they would lack a
        sparse vector) and a SPARSE or HYBRID writer by a dense one; an empty collection takes the writer's
        identity. A reader is compared only on the sides its mode searches: a DENSE store searches a hybrid
        collection filled by the same dense encoder; a SPARSE or HYBRID store is refused by a dense-only one.
        A mismatch is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.

        The store cannot know at construction whether it will write, so it checks as a reader when it is built
        (``from_existing_collection``, the constructor) and as a writer before its first write (``add_texts``,
        ``add_documents``) and when ``from_texts`` / ``from_documents`` open the collection; both before
        anything is encoded. For a reader, the identity speaks before the sparse vector's own check, so that
        a hybrid search of a dense-only collection is told what filled it.
        """
        exists = self.client.collection_exists(self.collection_name)
        if not exists:
            if not create:
                raise ValueError(
                    f"Qdrant collection {self.collection_name!r} does not exist; from_texts / from_documents create it"
                )
            self._create_collection(vector_params, sparse_vector_params, collection_create_options)
        elif self._uses_dense():
            self._check_dense_vector()
        if exists and writes and self._uses_sparse():
            self._check_sparse_vector()
        if writes:
            self._writer_check.run(self.encoder_identity)
        else:
            reader_check = CollectionCheck(
                self._collection_identity(), writes=False, allow_other_encoder=self.allow_other_encoder
            )
            reader_check.run(self.encoder_identity)
        if exists and not writes and self._uses_sparse():
            self._check_sparse_vector()

    def _create_collection(
        self,
        vector_params: dict[str, Any] | None,
        sparse_vector_params: dict[str, Any] | None,
        collection_create_options: dict[str, Any] | None,
    ) -> None:
        options = {**(collection_create_options or {}), "collection_name": self.collection_name, "vectors_config": {}}
        if self._uses_dense():
            params = models.VectorParams(
                **{**(vector_params or {}), "size": self._dense.embedding_dim, "distance": self.distance}
            )
            options["vectors_config"] = params if self.vector_name == "" else {self.vector_name: params}
        if self._uses_sparse():
            sparse_params = models.SparseVectorParams(
                **{"modifier": models.Modifier.IDF, **(sparse_vector_params or {})}
            )
            if self._bm25() and sparse_params.modifier != models.Modifier.IDF:
                raise ValueError(
                    f"BM25SparseEmbeddings needs the sparse vector's IDF modifier, not "
                    f"modifier={sparse_params.modifier!r}: its document vectors hold BM25's term-frequency part and "
                    "Qdrant multiplies in each term's IDF; leave 'modifier' out of sparse_vector_params"
                )
            options["sparse_vectors_config"] = {self.sparse_vector_name: sparse_params}
        self.client.create_collection(**options)

    def _check_dense_vector(self) -> None:
        embeddings = self._dense
        size, distance = embeddings.embedding_dim, self.distance
        vectors = self.client.get_collection(self.collection_name).config.params.vectors
        if isinstance(vectors, dict):
            current = vectors.get(self.vector_name)
            names = ", ".join(repr(name) for name in vectors) or "none"
        else:
            current = vectors if self.vector_name == "" else None
            names = "'' (one unnamed vector)"
        if current is None:
            raise CollectionMismatchError(
                f"Qdrant collection {self.collection_name!r} has no dense vector named {self.vector_name!r} "
                f"(it has {names}); pass vector_name= one of those"
                + ("" if vectors else ", or use it with retrieval_mode=RetrievalMode.SPARSE")
            )
        if (current.size, current.distance) != (size, distance):
            wanted = (
                f"{size}-d {distance.value} vectors of model {embeddings.model!r} (recipe {embeddings.recipe.name!r})"
            )
            raise CollectionMismatchError(
                f"Qdrant collection {self.collection_name!r} holds {current.size}-d {current.distance.value} vectors "
                f"and cannot hold the {wanted}. Use another collection name, or force_recreate=True to delete "
                "it and start again."
            )

    def _check_sparse_vector(self) -> None:
        sparse_vectors = self.client.get_collection(self.collection_name).config.params.sparse_vectors or {}
        current = sparse_vectors.get(self.sparse_vector_name)
        if current is None:
            names = ", ".join(repr(name) for name in sparse_vectors) or "none"
            raise CollectionMismatchError(
                f"Qdrant collection {self.collection_name!r} has no sparse vector named {self.sparse_vector_name!r} "
                f"(it has {names}); pass sparse_vector_name= one of those"
                + ("" if sparse_vectors else ", or use it with retrieval_mode=RetrievalMode.DENSE")
            )
        if self._bm25() and current.modifier != models.Modifier.IDF:
            raise CollectionMismatchError(
                f"The sparse vector {self.sparse_vector_name!r} of Qdrant collection {self.collection_name!r} has no "
                "IDF modifier (langchain-qdrant creates none by default), so BM25SparseEmbeddings' vectors would be "
                "scored without BM25's IDF. Add it: client.update_collection("
                f"{self.collection_name!r}, sparse_vectors_config={{{self.sparse_vector_name!r}: "
                "models.SparseVectorParams(modifier=models.Modifier.IDF)}), or force_recreate=True to start again."
            )

    @classmethod
    def construct_instance(  # type: ignore[override]
        cls,
        embedding: DualEncoderEmbeddings | None = None,
        retrieval_mode: RetrievalMode = RetrievalMode.DENSE,
        sparse_embedding: SparseEmbeddings | None = None,
        client_options: dict[str, Any] | None = None,
        collection_name: str | None = None,
        distance: models.Distance | None = None,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        sparse_vector_name: str = QdrantVectorStore.SPARSE_VECTOR_NAME,
        force_recreate: bool = False,
        collection_create_options: dict[str, Any] | None = None,
        vector_params: dict[str, Any] | None = None,
        sparse_vector_params: dict[str, Any] | None = None,
        validate_embeddings: bool = True,
        validate_collection_config: bool = True,
        *,
        title_key: str | None = "title",
        allow_other_encoder: bool = False,
    ) -> DualEncoderQdrantVectorStore:
        """A store on the client ``client_options`` describe, its collection created or checked as a writer's.

        The parent's signature; the collection is always checked (``validate_*`` are accepted for
        compatibility) because writes follow.
        """
        client = _qdrant_client(client_options or {})
        collection_name = collection_name or uuid.uuid4().hex
        try:
            store = cls(
                client,
                collection_name,
                embedding,
                retrieval_mode=retrieval_mode,
                sparse_embedding=sparse_embedding,
                vector_name=vector_name,
                sparse_vector_name=sparse_vector_name,
                content_payload_key=content_payload_key,
                metadata_payload_key=metadata_payload_key,
                distance=distance,
                title_key=title_key,
                validate_collection_config=False,
                allow_other_encoder=allow_other_encoder,
            )
            if force_recreate and client.collection_exists(collection_name):
                client.delete_collection(collection_name)
            store.check_collection(
                writes=True,
                create=True,
                vector_params=vector_params,
                sparse_vector_params=sparse_vector_params,
                collection_create_options=collection_create_options,
            )
        except BaseException:
            with suppress(Exception):
                client.close()  # an embedded store keeps its folder locked while a client is open
            raise
        return store

    @classmethod
    def from_texts(  # type: ignore[override]
        cls,
        texts: list[str],
        embedding: DualEncoderEmbeddings | None = None,
        metadatas: list[dict] | None = None,
        ids: Sequence[str | int] | None = None,
        collection_name: str | None = None,
        *,
        title_key: str | None = "title",
        distance: models.Distance | None = None,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        retrieval_mode: RetrievalMode = RetrievalMode.DENSE,
        sparse_embedding: SparseEmbeddings | None = None,
        sparse_vector_name: str = QdrantVectorStore.SPARSE_VECTOR_NAME,
        collection_create_options: dict[str, Any] | None = None,
        vector_params: dict[str, Any] | None = None,
        sparse_vector_params: dict[str, Any] | None = None,
        batch_size: int = 64,
        force_recreate: bool = False,
        allow_other_encoder: bool = False,
        **client_options: Any,
    ) -> DualEncoderQdrantVectorStore:
        """Create (or check) the collection and add ``texts``; ``client_options`` go to ``QdrantClient``
        (``location``, ``path``, ``url``, ``api_key``, ``prefer_grpc``, ``timeout``, ...)."""
        store = cls.construct_instance(
            embedding,
            retrieval_mode,
            sparse_embedding,
            client_options=client_options,
            collection_name=collection_name,
            distance=distance,
            content_payload_key=content_payload_key,
            metadata_payload_key=metadata_payload_key,
            vector_name=vector_name,
            sparse_vector_name=sparse_vector_name,
            force_recreate=force_recreate,
            collection_create_options=collection_create_options,
            vector_params=vector_params,
            sparse_vector_params=sparse_vector_params,
            title_key=title_key,
            allow_other_encoder=allow_other_encoder,
        )
        store.add_texts(texts, metadatas, ids, batch_size)
        return store

    @classmethod
    def from_existing_collection(  # type: ignore[override]
        cls,
        collection_name: str,
        embedding: DualEncoderEmbeddings | None = None,
        retrieval_mode: RetrievalMode = RetrievalMode.DENSE,
        *,
        sparse_embedding: SparseEmbeddings | None = None,
        title_key: str | None = "title",
        distance: models.Distance | None = None,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        sparse_vector_name: str = QdrantVectorStore.SPARSE_VECTOR_NAME,
        validate_collection_config: bool = True,
        allow_other_encoder: bool = False,
        **client_options: Any,
    ) -> DualEncoderQdrantVectorStore:
        """Open an existing collection without adding data, checked as a reader's (see :meth:`check_collection`);
        ``client_options`` go to ``QdrantClient``."""
        client = _qdrant_client(client_options)
        try:
            return cls(
                client,
                collection_name,
                embedding,
                retrieval_mode=retrieval_mode,
                sparse_embedding=sparse_embedding,
                vector_name=vector_name,
                sparse_vector_name=sparse_vector_name,
                content_payload_key=content_payload_key,
                metadata_payload_key=metadata_payload_key,
                distance=distance,
                title_key=title_key,
                validate_collection_config=validate_collection_config,
                allow_other_encoder=allow_other_encoder,
            )
        except BaseException:
            with suppress(Exception):
                client.close()
            raise

    @property
    def haystack_layout(self) -> bool:
        """Whether points are read and written as Haystack's ``QdrantDocumentStore`` lays them out."""
        return _is_haystack_layout(self.content_payload_key, self.metadata_payload_key)

    def _point_id(self, document_id: str | int) -> str | int:
        return point_id(document_id, haystack_layout=self.haystack_layout)

    def _title(self, position: int, metadata: Any) -> str | None:
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            raise TypeError(f"item {position} of metadatas is {type(metadata).__name__}, not a dict")
        if self.title_key is None:
            return None
        title = metadata.get(self.title_key)
        return None if title is None else str(title)

    def _generate_batches(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        ids: Sequence[str | int] | None = None,
        batch_size: int = 64,
    ) -> Generator[tuple[list[str | int], list[models.PointStruct]], Any, None]:
        """The parent's batches of points, with each text's title passed to the encoders beside it
        (:meth:`_build_vectors`) and each id kept in the payload (the point id is :func:`point_id` of it).

        Everything is checked before the first batch is encoded: the input, then the collection as a
        writer's (:meth:`check_collection`, once per store).
        """
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"item {position} of texts is {type(text).__name__}, not a string")
        for name, values in (("metadatas", metadatas), ("ids", ids)):
            if values is not None and len(values) != len(texts):
                raise ValueError(f"Got {len(values)} {name} for {len(texts)} texts")
        all_metadatas = list(metadatas) if metadatas is not None else [None] * len(texts)
        titles = [self._title(position, metadata) for position, metadata in enumerate(all_metadatas)]
        all_ids = [uuid.uuid4().hex if i is None else i for i in (ids if ids is not None else [None] * len(texts))]
        if self.haystack_layout:
            all_ids = [str(i) for i in all_ids]
        if not self._writer_check.settled:
            self.check_collection(writes=True)
        for start in range(0, len(texts), batch_size):
            batch = slice(start, start + batch_size)
            batch_ids = all_ids[batch]
            vectors = self._build_vectors(texts[batch], titles[batch])
            payloads = self._build_payloads(
                texts[batch], all_metadatas[batch], self.content_payload_key, self.metadata_payload_key
            )
            # The id as given, since the point id may be a hash of it (Haystack keeps it there too).
            payloads = [
                {ID_PAYLOAD_KEY: str(document_id), **payload}
                for document_id, payload in zip(batch_ids, payloads, strict=True)
            ]
            points = [
                models.PointStruct(id=self._point_id(document_id), vector=vector, payload=payload)
                for document_id, vector, payload in zip(batch_ids, vectors, payloads, strict=True)
            ]
            yield batch_ids, points

    def _build_vectors(  # type: ignore[override]
        self, texts: Iterable[str], titles: Sequence[str | None] | None = None
    ) -> list[models.VectorStruct]:
        """The parent's vectors for the retrieval mode (dense, sparse or both), each text read with its title.

        The dense encoder reads the title as its recipe says; :class:`BM25SparseEmbeddings` takes the titles
        beside the texts (``title + " " + text``, as Haystack's ``BM25SparseDocumentEmbedder`` reads them); any
        other ``SparseEmbeddings``, whose ``embed_documents`` takes texts only, is given that same joined text.
        """
        texts = list(texts)
        titles = list(titles) if titles is not None else [None] * len(texts)
        vectors: list[dict[str, Any]] = [{} for _ in texts]
        if self._uses_dense():
            dense = self._dense.embed_documents(texts, titles)
            for vector, values in zip(vectors, dense, strict=True):
                vector[self.vector_name] = values
        if self._uses_sparse():
            sparse: list[LangChainSparseVector]
            if isinstance(self.sparse_embeddings, BM25SparseEmbeddings):
                sparse = self.sparse_embeddings.embed_documents(texts, titles)
            else:
                joined = [document_text(text, title) for text, title in zip(texts, titles, strict=True)]
                sparse = self.sparse_embeddings.embed_documents(joined)
            for vector, values in zip(vectors, sparse, strict=True):
                vector[self.sparse_vector_name] = models.SparseVector(indices=values.indices, values=values.values)
        return vectors  # type: ignore[return-value]

    @classmethod
    def _document_from_point(
        cls, scored_point: Any, collection_name: str, content_payload_key: str, metadata_payload_key: str
    ) -> Document:
        """The point as a LangChain ``Document``: its id is the one written (the payload's ``"id"``, or the
        point id for points written without one, e.g. by langchain-qdrant) and its metadata is the stored
        metadata as it is, with no ``_id`` or ``_collection_name`` added."""
        payload = scored_point.payload or {}
        return Document(
            id=str(payload.get(ID_PAYLOAD_KEY, scored_point.id)),
            page_content=payload.get(content_payload_key, ""),
            metadata=payload.get(metadata_payload_key) or {},
        )

    def delete(self, ids: list[str | int] | None = None, **kwargs: Any) -> bool | None:  # type: ignore[override]
        return super().delete(None if ids is None else [self._point_id(i) for i in ids], **kwargs)

    def get_by_ids(self, ids: Sequence[str | int], /) -> list[Document]:
        return super().get_by_ids([self._point_id(i) for i in ids])
