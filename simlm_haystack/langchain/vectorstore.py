"""LangChain's Qdrant vector store, with titles fed to the encoders and the collection shaped by the recipe.

langchain-qdrant's ``QdrantVectorStore`` with hooks overridden; its points are laid out by :mod:`.layout`, its
collection created and checked by :mod:`.collection`, its retrieval modes' needs checked by :mod:`.modes`. The
public names that moved there from here are still importable from here (``import X as X`` re-exports them).
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings
from qdrant_client import QdrantClient, models

from simlm_haystack.langchain import collection
from simlm_haystack.langchain.client import closed_on_failure, qdrant_client
from simlm_haystack.langchain.collection import sparse_identity as sparse_identity
from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings
from simlm_haystack.langchain.layout import HAYSTACK_HYBRID_LAYOUT as HAYSTACK_HYBRID_LAYOUT
from simlm_haystack.langchain.layout import HAYSTACK_LAYOUT as HAYSTACK_LAYOUT
from simlm_haystack.langchain.layout import ID_PAYLOAD_KEY as ID_PAYLOAD_KEY
from simlm_haystack.langchain.layout import (
    DocumentBatch,
    VectorLayout,
    build_points,
    build_vectors,
    check_payload_keys,
    document_from_point,
    is_haystack_layout,
    point_id,
)
from simlm_haystack.langchain.modes import DENSE_MODES, SPARSE_MODES, check_embeddings, recipe_distance
from simlm_haystack.stores.identity import EncoderIdentity


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
        check_embeddings(retrieval_mode, embedding, sparse_embedding)
        check_payload_keys(content_payload_key, metadata_payload_key)
        if embedding is not None:
            distance = recipe_distance(embedding, distance)
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
        self._writer_check = collection.identity_check(
            client, collection_name, writes=True, allow_other_encoder=allow_other_encoder
        )
        if validate_collection_config:
            self.check_collection()

    @property
    def embeddings(self) -> DualEncoderEmbeddings | None:
        """The dense encoder; ``None`` for a SPARSE store built without one."""
        return self._embeddings  # type: ignore[return-value]  # __init__ took DualEncoderEmbeddings or None

    @property
    def haystack_layout(self) -> bool:
        """Whether points are read and written as Haystack's ``QdrantDocumentStore`` lays them out."""
        return is_haystack_layout(self.content_payload_key, self.metadata_payload_key)

    def _vector_layout(self) -> VectorLayout:
        """The vectors this store's mode reads and writes, and their encoders."""
        return VectorLayout(
            dense=self.embeddings if self.retrieval_mode in DENSE_MODES else None,  # never None there
            vector_name=self.vector_name,
            distance=self.distance,
            sparse=self.sparse_embeddings if self.retrieval_mode in SPARSE_MODES else None,
            sparse_vector_name=self.sparse_vector_name,
        )

    def encoder_identity(self) -> EncoderIdentity:
        """What this store's vectors are, as a collection records it: the dense encoder in DENSE and HYBRID mode
        (its model is loaded for the fingerprint, nothing is encoded), the sparse side (:func:`sparse_identity`)
        in SPARSE and HYBRID mode."""
        return collection.encoder_identity(self._vector_layout())

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

        A missing collection is created when ``create`` is set, with the model's size, the recipe's distance and,
        for a sparse vector, Qdrant's IDF modifier (``vector_params``, ``sparse_vector_params`` and
        ``collection_create_options`` add to that); an existing one of another shape is a
        :class:`~simlm_haystack.CollectionMismatchError`. Then the encoder identity the collection records: a
        writer must match it on both sides (dense and sparse), a reader on the sides its mode searches; a
        mismatch is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``. In full:
        :func:`simlm_haystack.langchain.collection.check_collection`.

        The store cannot know at construction whether it will write, so it checks as a reader when it is built
        (``from_existing_collection``, the constructor) and as a writer before its first write (``add_texts``,
        ``add_documents``) and when ``from_texts`` / ``from_documents`` open the collection; both before
        anything is encoded.
        """
        identity_check = self._writer_check  # kept, so that it runs once
        if not writes:  # a reader's is not: the first write checks as a writer
            identity_check = collection.identity_check(
                self.client, self.collection_name, writes=False, allow_other_encoder=self.allow_other_encoder
            )
        collection.check_collection(
            self.client,
            self.collection_name,
            self._vector_layout(),
            identity_check,
            create=create,
            vector_params=vector_params,
            sparse_vector_params=sparse_vector_params,
            collection_create_options=collection_create_options,
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

        The parent's signature; writes follow, so the collection is always checked (``validate_*`` are ignored).
        """
        collection_name = collection_name or uuid.uuid4().hex
        with closed_on_failure(qdrant_client(client_options or {})) as client:
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
        with closed_on_failure(store.client):
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
        with closed_on_failure(qdrant_client(client_options)) as client:
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

    def _generate_batches(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        ids: Sequence[str | int] | None = None,
        batch_size: int = 64,
    ) -> Generator[tuple[list[str | int], list[models.PointStruct]], Any, None]:
        """The parent's batches of points, each text's title passed to the encoders beside it and each id kept
        in the payload (:func:`~.layout.build_points`); the input, then the collection as a writer's
        (:meth:`check_collection`, once per store) are checked before the first batch is encoded."""
        pending = DocumentBatch.of(
            texts, metadatas, ids, title_key=self.title_key, haystack_layout=self.haystack_layout
        )
        if not self._writer_check.settled:
            self.check_collection(writes=True)
        for batch in pending.split(batch_size):
            vectors = self._build_vectors(batch.texts, batch.titles)
            payloads = self._build_payloads(
                batch.texts, batch.metadatas, self.content_payload_key, self.metadata_payload_key
            )
            yield batch.ids, build_points(batch.ids, vectors, payloads, haystack_layout=self.haystack_layout)

    def _build_vectors(  # type: ignore[override]
        self, texts: Iterable[str], titles: Sequence[str | None] | None = None
    ) -> list[models.VectorStruct]:
        """The parent's vectors for the retrieval mode (dense, sparse or both), each text read with its title
        (:func:`~simlm_haystack.langchain.layout.build_vectors`)."""
        return build_vectors(self._vector_layout(), list(texts), titles)  # type: ignore[return-value]

    @classmethod
    def _document_from_point(
        cls, scored_point: Any, collection_name: str, content_payload_key: str, metadata_payload_key: str
    ) -> Document:
        """The point as a ``Document``, its id and metadata as written (:func:`~.layout.document_from_point`)."""
        return document_from_point(scored_point, content_payload_key, metadata_payload_key)

    def delete(self, ids: list[str | int] | None = None, **kwargs: Any) -> bool | None:  # type: ignore[override]
        return super().delete(None if ids is None else [self._point_id(i) for i in ids], **kwargs)

    def get_by_ids(self, ids: Sequence[str | int], /) -> list[Document]:
        return super().get_by_ids([self._point_id(i) for i in ids])

    def _point_id(self, document_id: str | int) -> str | int:
        return point_id(document_id, haystack_layout=self.haystack_layout)
