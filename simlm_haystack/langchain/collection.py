"""The LangChain store's collection: created with the vectors its retrieval mode needs, and checked before use.

Plain functions of a client, a collection name and a :class:`~simlm_haystack.langchain.layout.VectorLayout`
(langchain-qdrant's ``_validate_collection_*`` are classmethods of the store): the store says which vectors
its mode reads and writes, and these create a missing collection, refuse one of another shape
(:class:`~simlm_haystack.CollectionMismatchError`) and compare the encoder identity it records.
"""

from __future__ import annotations

from typing import Any

from langchain_qdrant import SparseEmbeddings
from qdrant_client import QdrantClient, models

from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.langchain.layout import VectorLayout
from simlm_haystack.langchain.sparse import BM25SparseEmbeddings
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity, qdrant_collection_identity


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


def encoder_identity(layout: VectorLayout) -> EncoderIdentity:
    """What ``layout``'s vectors are, as a collection records it: the dense encoder (its model is loaded for the
    fingerprint, nothing is encoded) and the sparse side (:func:`sparse_identity`), each where there is one."""
    dense = layout.dense
    return EncoderIdentity.of(
        None if dense is None else dense.model,
        None if dense is None else dense.load_encoder(),
        sparse=None if layout.sparse is None else sparse_identity(layout.sparse),
    )


def identity_check(
    client: QdrantClient, collection_name: str, *, writes: bool, allow_other_encoder: bool
) -> CollectionCheck:
    """The check of the encoder identity the collection records, a writer's or a reader's (:func:`check_collection`)."""
    return CollectionCheck(
        qdrant_collection_identity(client, collection_name), writes=writes, allow_other_encoder=allow_other_encoder
    )


def check_collection(
    client: QdrantClient,
    collection_name: str,
    layout: VectorLayout,
    identity_check: CollectionCheck,
    *,
    create: bool = False,
    vector_params: dict[str, Any] | None = None,
    sparse_vector_params: dict[str, Any] | None = None,
    collection_create_options: dict[str, Any] | None = None,
) -> None:
    """The collection must hold the vectors ``layout`` describes and no other encoder's; ``identity_check``
    is the store's, a writer's or a reader's (``identity_check.writes``).

    A missing collection is created when ``create`` is set (:func:`create_collection`): a dense vector with the
    model's size and the recipe's distance, unnamed when ``vector_name`` is ``""`` as Haystack creates it,
    plus ``vector_params``; a sparse vector with Qdrant's IDF modifier unless ``sparse_vector_params`` say
    otherwise (a learned sparse model such as SPLADE wants ``{"modifier": None}``; :class:`BM25SparseEmbeddings`
    refuses that, since without IDF its scores are not BM25's). An existing collection whose dense vector has
    another size or distance, that lacks the sparse vector, or whose sparse vector lacks the IDF modifier that
    BM25 needs, is a :class:`~simlm_haystack.CollectionMismatchError` naming both.

    Then the encoder identity recorded in the collection's metadata (:mod:`simlm_haystack.stores.identity`,
    the record Haystack's stores keep). A writer must match it on both sides, the dense encoder and the
    sparse one: so a DENSE writer is refused by a collection filled with hybrid points (they would lack a
    sparse vector) and a SPARSE or HYBRID writer by a dense one; an empty collection takes the writer's
    identity. A reader is compared only on the sides its mode searches: a DENSE store searches a hybrid
    collection filled by the same dense encoder; a SPARSE or HYBRID store is refused by a dense-only one.
    A mismatch is an :class:`~simlm_haystack.EncoderMismatchError` unless the check allows another encoder.
    For a reader, the identity speaks before the sparse vector's own check, so that a hybrid search of a
    dense-only collection is told what filled it.

    :raises ValueError: The collection does not exist and ``create`` is not set.
    """
    writes = identity_check.writes
    exists = client.collection_exists(collection_name)
    if not exists:
        if not create:
            raise ValueError(
                f"Qdrant collection {collection_name!r} does not exist; from_texts / from_documents create it"
            )
        create_collection(
            client, collection_name, layout, vector_params, sparse_vector_params, collection_create_options
        )
    elif layout.dense is not None:
        check_dense_vector(client, collection_name, layout)
    if exists and writes and layout.sparse is not None:
        check_sparse_vector(client, collection_name, layout)
    identity_check.run(lambda: encoder_identity(layout))
    if exists and not writes and layout.sparse is not None:
        check_sparse_vector(client, collection_name, layout)


def create_collection(
    client: QdrantClient,
    collection_name: str,
    layout: VectorLayout,
    vector_params: dict[str, Any] | None = None,
    sparse_vector_params: dict[str, Any] | None = None,
    collection_create_options: dict[str, Any] | None = None,
) -> None:
    """Create the collection: a dense vector with the model's size and the recipe's distance (unnamed when
    ``vector_name`` is ``""``, as Haystack creates it) plus ``vector_params``; a sparse vector with Qdrant's
    IDF modifier unless ``sparse_vector_params`` say otherwise (a learned sparse model such as SPLADE wants
    ``{"modifier": None}``).

    :raises ValueError: ``sparse_vector_params`` take BM25's IDF modifier away (without it, its scores are not BM25's).
    """
    options = {**(collection_create_options or {}), "collection_name": collection_name, "vectors_config": {}}
    if layout.dense is not None:
        params = models.VectorParams(
            **{**(vector_params or {}), "size": layout.dense.embedding_dim, "distance": layout.distance}
        )
        options["vectors_config"] = params if layout.vector_name == "" else {layout.vector_name: params}
    if layout.sparse is not None:
        sparse_params = models.SparseVectorParams(**{"modifier": models.Modifier.IDF, **(sparse_vector_params or {})})
        if layout.bm25 and sparse_params.modifier != models.Modifier.IDF:
            raise ValueError(
                f"BM25SparseEmbeddings needs the sparse vector's IDF modifier, not "
                f"modifier={sparse_params.modifier!r}: its document vectors hold BM25's term-frequency part and "
                "Qdrant multiplies in each term's IDF; leave 'modifier' out of sparse_vector_params"
            )
        options["sparse_vectors_config"] = {layout.sparse_vector_name: sparse_params}
    client.create_collection(**options)


def check_dense_vector(client: QdrantClient, collection_name: str, layout: VectorLayout) -> None:
    """The collection's dense vector must be there, with the model's size and the recipe's distance.

    :raises CollectionMismatchError: It is missing, or of another size or distance.
    """
    embeddings = layout.dense
    if embeddings is None:
        raise ValueError(f"no dense embeddings to check Qdrant collection {collection_name!r} against")
    vector_name = layout.vector_name
    size, distance = embeddings.embedding_dim, layout.distance
    configured = client.get_collection(collection_name).config.params.vectors
    if isinstance(configured, dict):
        current = configured.get(vector_name)
        names = ", ".join(repr(vector) for vector in configured) or "none"
    else:
        current = configured if vector_name == "" else None
        names = "'' (one unnamed vector)"
    if current is None:
        raise CollectionMismatchError(
            f"Qdrant collection {collection_name!r} has no dense vector named {vector_name!r} "
            f"(it has {names}); pass vector_name= one of those"
            + ("" if configured else ", or use it with retrieval_mode=RetrievalMode.SPARSE")
        )
    if (current.size, current.distance) != (size, distance):
        wanted = f"{size}-d {distance.value} vectors of model {embeddings.model!r} (recipe {embeddings.recipe.name!r})"
        raise CollectionMismatchError(
            f"Qdrant collection {collection_name!r} holds {current.size}-d {current.distance.value} vectors "
            f"and cannot hold the {wanted}. Use another collection name, or force_recreate=True to delete "
            "it and start again."
        )


def check_sparse_vector(client: QdrantClient, collection_name: str, layout: VectorLayout) -> None:
    """The collection's sparse vector must be there, with the IDF modifier where the sparse side is BM25.

    :raises CollectionMismatchError: It is missing, or BM25's lacks the IDF modifier.
    """
    sparse_vector_name = layout.sparse_vector_name
    sparse_vectors = client.get_collection(collection_name).config.params.sparse_vectors or {}
    current = sparse_vectors.get(sparse_vector_name)
    if current is None:
        names = ", ".join(repr(vector) for vector in sparse_vectors) or "none"
        raise CollectionMismatchError(
            f"Qdrant collection {collection_name!r} has no sparse vector named {sparse_vector_name!r} "
            f"(it has {names}); pass sparse_vector_name= one of those"
            + ("" if sparse_vectors else ", or use it with retrieval_mode=RetrievalMode.DENSE")
        )
    if layout.bm25 and current.modifier != models.Modifier.IDF:
        raise CollectionMismatchError(
            f"The sparse vector {sparse_vector_name!r} of Qdrant collection {collection_name!r} has no "
            "IDF modifier (langchain-qdrant creates none by default), so BM25SparseEmbeddings' vectors would be "
            "scored without BM25's IDF. Add it: client.update_collection("
            f"{collection_name!r}, sparse_vectors_config={{{sparse_vector_name!r}: "
            "models.SparseVectorParams(modifier=models.Modifier.IDF)}), or force_recreate=True to start again."
        )
