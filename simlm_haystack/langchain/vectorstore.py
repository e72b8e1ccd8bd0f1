"""LangChain's Qdrant vector store, with titles fed to the encoder and the collection shaped by the recipe."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterable, Sequence
from contextlib import suppress
from typing import Any

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.converters import convert_id
from langchain_core.documents import Document
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from qdrant_client import QdrantClient, models

from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity, qdrant_collection_identity

#: Keyword values under which this store reads and writes points as Haystack's ``QdrantDocumentStore``
#: (qdrant-haystack) does: the text under ``"content"``, the meta under ``"meta"``, one unnamed dense
#: vector, the document id under ``"id"`` and, as the point id, qdrant-haystack's uuid5 of it. Pass them
#: to ``from_existing_collection`` to search a collection indexed by Haystack or the CLI, or to
#: ``from_documents`` to index one that Haystack can search. (A Haystack store with
#: ``use_sparse_embeddings=True`` names its dense vector ``"text-dense"``: pass ``vector_name="text-dense"``.)
HAYSTACK_LAYOUT: dict[str, str] = {"content_payload_key": "content", "metadata_payload_key": "meta", "vector_name": ""}

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


def _dense_only(retrieval_mode: RetrievalMode) -> None:
    if retrieval_mode != RetrievalMode.DENSE:
        raise ValueError(
            f"DualEncoderQdrantVectorStore is dense only (retrieval_mode={retrieval_mode!r}); for hybrid search "
            "use langchain_qdrant.QdrantVectorStore with DualEncoderEmbeddings"
        )


def _qdrant_client(options: dict[str, Any]) -> QdrantClient:
    """A client for ``options``; a server gets ``QDRANT_API_KEY`` from the environment when no key is given."""
    local = options.get("path") is not None or options.get("location") == ":memory:"
    if not local and options.get("api_key") is None and os.environ.get("QDRANT_API_KEY"):
        options = {**options, "api_key": os.environ["QDRANT_API_KEY"]}
    return QdrantClient(**options)


class DualEncoderQdrantVectorStore(QdrantVectorStore):
    """A ``langchain_qdrant.QdrantVectorStore`` for :class:`DualEncoderEmbeddings`.

    What differs from its parent: each document's title (``metadata[title_key]``) reaches the encoder
    as the recipe says (SimLM's ``(title, text)`` pair); the distance is the recipe's (TAS-B: dot
    product) and a new collection gets the model's vector size; an existing collection of another
    size or distance is refused (:class:`~simlm_haystack.CollectionMismatchError`) before anything is
    written. Everything else is LangChain's: ``from_texts`` / ``from_documents``, ``add_documents``,
    ``similarity_search(_with_score)``, filters as ``qdrant_client.models.Filter``, ``as_retriever``,
    ``from_existing_collection``, and ``path=`` (embedded), ``location=":memory:"`` or ``url=`` (with
    ``api_key=``, read from ``QDRANT_API_KEY`` when not given). Dense retrieval only.

    Ids and metadata are the caller's, as LangChain's standard tests ask: any string or integer id is
    taken (Qdrant's point id is :func:`point_id` of it, the id itself kept in the payload under
    ``"id"``), and a document comes back with ``Document.id`` set and its metadata as it was written,
    without the ``_id`` and ``_collection_name`` that ``QdrantVectorStore`` adds.

    ```python
    from simlm_haystack.langchain import DualEncoderEmbeddings, DualEncoderQdrantVectorStore

    embeddings = DualEncoderEmbeddings(model="intfloat/simlm-base-msmarco-finetuned")
    store = DualEncoderQdrantVectorStore.from_documents(docs, embeddings, path="qdrant_data", collection_name="docs")
    retriever = store.as_retriever(search_kwargs={"k": 10})
    ```

    With :data:`HAYSTACK_LAYOUT`'s keyword values the store shares collections with Haystack's
    ``QdrantDocumentStore`` (see there).

    :param title_key: The metadata key that holds a document's title; ``None`` reads no title.
    :param distance: Must be the recipe's, which is the default.
    :param allow_other_encoder: Use a collection whose recorded encoder (model weights or recipe) differs
        from ``embedding``'s, with a warning, instead of refusing it (see :meth:`check_collection`).
    """

    def __init__(
        self,
        client: QdrantClient,
        collection_name: str,
        embedding: DualEncoderEmbeddings,
        *,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        distance: models.Distance | None = None,
        title_key: str | None = "title",
        validate_collection_config: bool = True,
        allow_other_encoder: bool = False,
    ) -> None:
        if not isinstance(embedding, DualEncoderEmbeddings):
            raise TypeError(
                f"DualEncoderQdrantVectorStore needs DualEncoderEmbeddings, not {type(embedding).__name__}; "
                "for other embeddings use langchain_qdrant.QdrantVectorStore"
            )
        if ID_PAYLOAD_KEY in (content_payload_key, metadata_payload_key):
            raise ValueError(f"the payload key {ID_PAYLOAD_KEY!r} holds document ids; keep content and metadata apart")
        recipe_distance = QdrantDocumentStore.SIMILARITY[embedding.recipe.similarity]
        if distance is not None and models.Distance(distance) != recipe_distance:
            raise ValueError(
                f"distance={models.Distance(distance).value} disagrees with recipe {embedding.recipe.name!r} "
                f"({recipe_distance.value}): the model's vectors are compared as it was trained; leave distance out"
            )
        super().__init__(
            client=client,
            collection_name=collection_name,
            embedding=embedding,
            vector_name=vector_name,
            content_payload_key=content_payload_key,
            metadata_payload_key=metadata_payload_key,
            distance=recipe_distance,
            validate_collection_config=False,
        )
        self.title_key = title_key
        self.allow_other_encoder = allow_other_encoder
        if validate_collection_config:
            self.check_collection()

    @property
    def embeddings(self) -> DualEncoderEmbeddings:
        assert isinstance(self._embeddings, DualEncoderEmbeddings)
        return self._embeddings

    def check_collection(
        self,
        *,
        create: bool = False,
        vector_params: dict[str, Any] | None = None,
        collection_create_options: dict[str, Any] | None = None,
    ) -> None:
        """The one check before anything is written: the collection must hold this encoder's vectors.

        A missing collection is created when ``create`` is set, with the model's vector size and the
        recipe's distance (the vector unnamed when ``vector_name`` is ``""``, as Haystack creates it).
        An existing one whose vector ``vector_name`` has another size or distance is a
        :class:`~simlm_haystack.CollectionMismatchError` naming both. Then the encoder identity recorded
        in the collection's metadata (:mod:`simlm_haystack.stores.identity`, the same record Haystack's
        stores keep): an empty collection takes this encoder's; a collection filled by another model or
        recipe is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``. This
        loads the model, before anything is encoded.
        """
        size, distance = self.embeddings.embedding_dim, self.distance
        embeddings = self.embeddings
        wanted = f"{size}-d {distance.value} vectors of model {embeddings.model!r} (recipe {embeddings.recipe.name!r})"
        if not self.client.collection_exists(self.collection_name):
            if not create:
                raise ValueError(
                    f"Qdrant collection {self.collection_name!r} does not exist; from_texts / from_documents create it"
                )
            params = models.VectorParams(**{**(vector_params or {}), "size": size, "distance": distance})
            self.client.create_collection(
                **{
                    **(collection_create_options or {}),
                    "collection_name": self.collection_name,
                    "vectors_config": params if self.vector_name == "" else {self.vector_name: params},
                }
            )
        else:
            self._check_vectors(size, distance, wanted)
        CollectionCheck(
            qdrant_collection_identity(self.client, self.collection_name),
            writes=True,
            allow_other_encoder=self.allow_other_encoder,
        ).run(EncoderIdentity.of(embeddings.model, embeddings.load_encoder()))

    def _check_vectors(self, size: int, distance: models.Distance, wanted: str) -> None:
        vectors = self.client.get_collection(self.collection_name).config.params.vectors
        if isinstance(vectors, dict):
            current = vectors.get(self.vector_name)
            names = ", ".join(repr(name) for name in vectors)
        else:
            current = vectors if self.vector_name == "" else None
            names = "'' (one unnamed vector)"
        if current is None:
            raise CollectionMismatchError(
                f"Qdrant collection {self.collection_name!r} has no dense vector named {self.vector_name!r} "
                f"(it has {names}); pass vector_name= one of those"
            )
        if (current.size, current.distance) != (size, distance):
            raise CollectionMismatchError(
                f"Qdrant collection {self.collection_name!r} holds {current.size}-d {current.distance.value} vectors "
                f"and cannot hold the {wanted}. Use another collection name, or force_recreate=True to delete "
                "it and start again."
            )

    @classmethod
    def construct_instance(  # type: ignore[override]
        cls,
        embedding: DualEncoderEmbeddings | None = None,
        retrieval_mode: RetrievalMode = RetrievalMode.DENSE,
        sparse_embedding: None = None,
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
        """A store on the client ``client_options`` describe, its collection created or checked.

        The parent's signature; the sparse arguments must stay unset, and the collection is always
        checked (``validate_*`` are accepted for compatibility) because writes follow.
        """
        _dense_only(retrieval_mode)
        if sparse_embedding is not None or sparse_vector_params:
            raise ValueError("DualEncoderQdrantVectorStore is dense only: leave the sparse arguments unset")
        client = _qdrant_client(client_options or {})
        collection_name = collection_name or uuid.uuid4().hex
        try:
            store = cls(
                client,
                collection_name,
                embedding,  # type: ignore[arg-type]
                vector_name=vector_name,
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
                create=True, vector_params=vector_params, collection_create_options=collection_create_options
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
        collection_create_options: dict[str, Any] | None = None,
        vector_params: dict[str, Any] | None = None,
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
            client_options=client_options,
            collection_name=collection_name,
            distance=distance,
            content_payload_key=content_payload_key,
            metadata_payload_key=metadata_payload_key,
            vector_name=vector_name,
            force_recreate=force_recreate,
            collection_create_options=collection_create_options,
            vector_params=vector_params,
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
        title_key: str | None = "title",
        distance: models.Distance | None = None,
        content_payload_key: str = QdrantVectorStore.CONTENT_KEY,
        metadata_payload_key: str = QdrantVectorStore.METADATA_KEY,
        vector_name: str = QdrantVectorStore.VECTOR_NAME,
        validate_collection_config: bool = True,
        allow_other_encoder: bool = False,
        **client_options: Any,
    ) -> DualEncoderQdrantVectorStore:
        """Open an existing collection without adding data; ``client_options`` go to ``QdrantClient``."""
        _dense_only(retrieval_mode)
        client = _qdrant_client(client_options)
        try:
            return cls(
                client,
                collection_name,
                embedding,  # type: ignore[arg-type]
                vector_name=vector_name,
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
        """The parent's batches of points, with each text's title passed to the encoder beside it and each
        id kept in the payload (the point id is :func:`point_id` of it).

        Everything is checked before the first batch is written.
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
        for start in range(0, len(texts), batch_size):
            batch = slice(start, start + batch_size)
            batch_ids = all_ids[batch]
            vectors = self.embeddings.embed_documents(texts[batch], titles[batch])
            payloads = self._build_payloads(
                texts[batch], all_metadatas[batch], self.content_payload_key, self.metadata_payload_key
            )
            # The id as given, since the point id may be a hash of it (Haystack keeps it there too).
            payloads = [
                {ID_PAYLOAD_KEY: str(document_id), **payload}
                for document_id, payload in zip(batch_ids, payloads, strict=True)
            ]
            points = [
                models.PointStruct(id=self._point_id(document_id), vector={self.vector_name: vector}, payload=payload)
                for document_id, vector, payload in zip(batch_ids, vectors, payloads, strict=True)
            ]
            yield batch_ids, points

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
