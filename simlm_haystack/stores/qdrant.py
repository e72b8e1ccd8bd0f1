"""Qdrant document stores sized and distanced from the recipe, and the checks that keep a collection consistent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever, QdrantSparseEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_exponential

from simlm_haystack.errors import CollectionMismatchError, StoreError
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipes import Recipe, get_recipe
from simlm_haystack.stores.fusion import HybridSearch
from simlm_haystack.stores.identity import CollectionIdentity, qdrant_collection_identity
from simlm_haystack.stores.qdrant_internals import sync_client
from simlm_haystack.stores.retriever_choice import RetrieverChoice

logger = logging.getLogger(__name__)

#: qdrant-client's embedded mode searches exhaustively in Python and warns past this many points.
EMBEDDED_QDRANT_LIMIT = 20_000
_warned_about_scale: set[str] = set()


@runtime_checkable
class ModelWithRecipe(Protocol):
    """What a store needs of an embedder: its model (for the vector size) and its recipe (for the distance).

    Our Haystack embedders and LangChain embeddings have these; stores sit below them and never import them.
    """

    model: str
    recipe: Recipe
    local_files_only: bool


def vector_settings(recipe_or_embedder: Recipe | str | ModelWithRecipe, embedding_dim: int | None) -> tuple[int, str]:
    """The vector size and similarity a collection needs: the size from an embedder's model (or
    ``embedding_dim`` with a recipe), the similarity from the recipe."""
    if isinstance(recipe_or_embedder, ModelWithRecipe):
        model_dim = model_embedding_dim(
            recipe_or_embedder.model,
            recipe=recipe_or_embedder.recipe,
            local_files_only=recipe_or_embedder.local_files_only,
        )
        if embedding_dim is not None and embedding_dim != model_dim:
            raise CollectionMismatchError(
                f"embedding_dim={embedding_dim} disagrees with model {recipe_or_embedder.model!r} ({model_dim}-d)"
            )
        return model_dim, recipe_or_embedder.recipe.similarity
    recipe = get_recipe(recipe_or_embedder) if isinstance(recipe_or_embedder, str) else recipe_or_embedder
    if embedding_dim is None:
        raise ValueError("embedding_dim is required when the store is built from a recipe, not an embedder")
    return embedding_dim, recipe.similarity


def qdrant_document_store(
    recipe_or_embedder: Recipe | str | ModelWithRecipe,
    *,
    location: str | None = None,
    path: str | None = None,
    url: str | None = None,
    index: str = "Document",
    embedding_dim: int | None = None,
    use_sparse_embeddings: bool | None = None,
    check_collection: bool = True,
    **kwargs: Any,
) -> QdrantDocumentStore:
    """A ``QdrantDocumentStore`` whose vector size and distance come from the model and its recipe.

    :param recipe_or_embedder: One of our embedders (size read from its model's config, distance
        from its recipe), or a recipe / recipe name together with ``embedding_dim``.
    :param location: ``":memory:"`` (the default when no ``path`` or ``url`` is given).
    :param path: A folder for Qdrant's embedded local mode (no server).
    :param url: A Qdrant server or cluster; pass ``api_key=Secret.from_env_var(...)`` for Qdrant Cloud.
    :param index: The collection name.
    :param embedding_dim: The vector size; required with a recipe, checked against an embedder's model.
    :param use_sparse_embeddings: Keep BM25 sparse vectors beside the dense ones, for sparse and hybrid search:
        qdrant-haystack's layout (named vectors ``"text-dense"`` and ``"text-sparse"``), with the IDF modifier
        on the sparse one (``sparse_idf=True``) so that Qdrant scores BM25. ``None``: as an existing collection
        is laid out (looked up only with ``check_collection``), else dense only.
    :param check_collection: Open the collection now, so that an existing one with another size or
        distance is an error before anything is written.
    :param kwargs: Any other ``QdrantDocumentStore`` argument (``shard_number``,
        ``replication_factor``, ``hnsw_config``, ``on_disk``, ...).
    """
    embedding_dim, similarity = vector_settings(recipe_or_embedder, embedding_dim)
    if sum(value is not None for value in (location, path, url)) > 1:
        raise ValueError("Pass only one of location=, path= and url=")
    if location is None and path is None and url is None:
        location = ":memory:"
    kwargs.setdefault("progress_bar", False)
    if use_sparse_embeddings is None:
        use_sparse_embeddings = check_collection and _has_sparse_vectors(
            location=location, path=path, url=url, index=index, **kwargs
        )
    if use_sparse_embeddings:
        kwargs.setdefault("sparse_idf", True)
    store = QdrantDocumentStore(
        location=location,
        path=path,
        url=url,
        index=index,
        embedding_dim=embedding_dim,
        similarity=similarity,
        use_sparse_embeddings=use_sparse_embeddings,
        **kwargs,
    )
    if check_collection:
        check_store(store)
    return store


def _has_sparse_vectors(*, location: str | None, path: str | None, url: str | None, index: str, **kwargs: Any) -> bool:
    """Whether an existing collection keeps qdrant-haystack's sparse vector (False where there is none yet)."""
    if location == ":memory:":
        return False  # a new in-memory client holds no collection
    from qdrant_client import QdrantClient

    api_key = kwargs.get("api_key")
    key = api_key.resolve_value() if api_key is not None else None
    client = QdrantClient(path=path, url=url, api_key=key, timeout=kwargs.get("timeout"))
    try:
        if not client.collection_exists(index):
            return False
        return "text-sparse" in (client.get_collection(index).config.params.sparse_vectors or {})
    except Exception as error:
        if not is_transient(error):
            raise
        raise StoreError(f"Cannot reach Qdrant at {url}: {error}") from error
    finally:
        client.close()  # local mode locks its folder while a client is open


def check_store(store: QdrantDocumentStore) -> None:
    """Open (or create) the collection; an existing one with another size or distance is an error."""
    try:
        store.count_documents()
    except ValueError as error:
        if "already exists" not in str(error):
            raise
        raise CollectionMismatchError(
            f"Qdrant collection {store.index!r} cannot hold this model's vectors "
            f"({store.embedding_dim}-d, {store.similarity}): {error} "
            "Use another index name, or recreate_index=True to delete it and start again."
        ) from error
    except Exception as error:
        if not is_transient(error):
            raise
        raise StoreError(f"Cannot reach Qdrant at {store.url or store.host}: {error}") from error


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: the server was unreachable, overloaded or timed out."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        return error.status_code in (429, 500, 502, 503, 504)
    return isinstance(error, ResponseHandlingException | ConnectionError | TimeoutError) or (
        type(error).__module__.startswith(("httpx", "httpcore", "grpc"))
    )


def transient_retrying(*, retries: int, backoff_seconds: float) -> Retrying:
    """A tenacity ``Retrying`` that retries only :func:`is_transient` errors, ``retries`` times, after
    ``backoff_seconds`` x 1, 2, 4, ... (at most a minute), logging each retry."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=backoff_seconds, min=0, max=60),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )


def warn_if_too_large_for_embedded_mode(store: QdrantDocumentStore) -> None:
    """Tell the user once per collection when embedded Qdrant stops being sensible."""
    if store.url is not None or store.host is not None or store.index in _warned_about_scale:
        return
    if store.count_documents() > EMBEDDED_QDRANT_LIMIT:
        _warned_about_scale.add(store.index)
        logger.warning(
            "Collection %r holds more than %d documents in qdrant-client's local mode, which searches them one "
            "by one in Python. Qdrant Edge keeps an HNSW index on this machine (edge_document_store(...); CLI: "
            "--engine edge); a Qdrant server takes url=... (CLI: --qdrant-url), and `simlm-haystack push` "
            "copies this collection there without encoding it again.",
            store.index,
            EMBEDDED_QDRANT_LIMIT,
        )


class QdrantStoreSupport(RetrieverChoice):
    """What the layers above ask of a store (:class:`~simlm_haystack.stores.support.StoreSupport`), answered
    for qdrant-haystack's ``QdrantDocumentStore``, a class this package does not own."""

    def __init__(self, document_store: QdrantDocumentStore) -> None:
        self.document_store = document_store

    @property
    def client(self) -> Any:
        """The store's ``QdrantClient``, the collection opened (or created) and checked first.

        qdrant-haystack keeps its client private and offers no collection metadata: it is reached through
        :mod:`simlm_haystack.stores.qdrant_internals`.
        """
        check_store(self.document_store)  # an unreachable server is one StoreError
        return sync_client(self.document_store)

    def collection_identity(self) -> CollectionIdentity:
        """Where the collection keeps its encoder identity: its Qdrant metadata."""
        store = self.document_store
        client = self.client
        where = store.url or store.host or (Path(store.path).resolve() if store.path else store.location)
        return qdrant_collection_identity(client, store.index, f"Qdrant collection {store.index!r} at {where}")

    def embedding_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any:
        """qdrant-haystack's ``QdrantEmbeddingRetriever`` on the store."""
        return QdrantEmbeddingRetriever(document_store=self.document_store, top_k=top_k, filters=filters)

    def _require_sparse(self, what: str) -> None:
        if not self.document_store.use_sparse_embeddings:
            raise CollectionMismatchError(
                f"Qdrant collection {self.document_store.index!r} keeps no sparse vectors, so it cannot be searched "
                f"{what}: index it with retrieval='hybrid' (CLI: index --retrieval hybrid) into a store made with "
                "use_sparse_embeddings=True"
            )

    def sparse_retriever(self, *, top_k: int = 10, filters: dict[str, Any] | None = None) -> Any:
        """qdrant-haystack's ``QdrantSparseEmbeddingRetriever`` (BM25 with the collection's IDF)."""
        self._require_sparse("by BM25")
        return QdrantSparseEmbeddingRetriever(document_store=self.document_store, top_k=top_k, filters=filters)

    def hybrid_retriever(
        self, *, top_k: int = 10, filters: dict[str, Any] | None = None, search: HybridSearch | None = None
    ) -> Any:
        """A ``QdrantHybridRetriever`` whose prefetches bring ``search.prefetch_limit`` candidates each, fused as
        ``search`` says (:class:`~simlm_haystack.stores.qdrant_hybrid.QdrantHybridSearchRetriever`)."""
        from simlm_haystack.stores.qdrant_hybrid import QdrantHybridSearchRetriever  # it imports this module's layer

        self._require_sparse("hybrid")
        search = search or HybridSearch()
        return QdrantHybridSearchRetriever(
            document_store=self.document_store,
            top_k=top_k,
            filters=filters,
            **search.to_dict(),
        )

    def finish_writing(self) -> None:
        """Tell the user when qdrant-client's local mode, which searches one by one, has grown too large."""
        warn_if_too_large_for_embedded_mode(self.document_store)
