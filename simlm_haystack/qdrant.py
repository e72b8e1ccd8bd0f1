"""Qdrant stores sized and distanced from the recipe, and the indexing and query pipelines over them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from tqdm.auto import tqdm

from simlm_haystack.components.base import DualEncoderComponentBase
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.errors import CollectionMismatchError, SimlmHaystackError, StoreError
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipes import Recipe, get_recipe

logger = logging.getLogger(__name__)

#: qdrant-client's embedded mode searches exhaustively in Python and warns past this many points.
EMBEDDED_QDRANT_LIMIT = 20_000
_warned_about_scale: set[str] = set()


def qdrant_document_store(
    recipe_or_embedder: Recipe | str | DualEncoderComponentBase,
    *,
    location: str | None = None,
    path: str | None = None,
    url: str | None = None,
    index: str = "Document",
    embedding_dim: int | None = None,
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
    :param check_collection: Open the collection now, so that an existing one with another size or
        distance is an error before anything is written.
    :param kwargs: Any other ``QdrantDocumentStore`` argument (``shard_number``,
        ``replication_factor``, ``hnsw_config``, ``on_disk``, ...).
    """
    if isinstance(recipe_or_embedder, DualEncoderComponentBase):
        recipe = recipe_or_embedder.recipe
        model_dim = model_embedding_dim(recipe_or_embedder.model, local_files_only=recipe_or_embedder.local_files_only)
        if embedding_dim is not None and embedding_dim != model_dim:
            raise CollectionMismatchError(
                f"embedding_dim={embedding_dim} disagrees with model {recipe_or_embedder.model!r} ({model_dim}-d)"
            )
        embedding_dim = model_dim
    else:
        recipe = get_recipe(recipe_or_embedder) if isinstance(recipe_or_embedder, str) else recipe_or_embedder
        if embedding_dim is None:
            raise ValueError("embedding_dim is required when the store is built from a recipe, not an embedder")
    if sum(value is not None for value in (location, path, url)) > 1:
        raise ValueError("Pass only one of location=, path= and url=")
    if location is None and path is None and url is None:
        location = ":memory:"
    kwargs.setdefault("progress_bar", False)
    store = QdrantDocumentStore(
        location=location,
        path=path,
        url=url,
        index=index,
        embedding_dim=embedding_dim,
        similarity=recipe.similarity,
        **kwargs,
    )
    if check_collection:
        check_store(store)
    return store


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
        if not _is_transient(error):
            raise
        raise StoreError(f"Cannot reach Qdrant at {store.url or store.host}: {error}") from error


def _is_transient(error: BaseException) -> bool:
    """Errors worth retrying: the server was unreachable, overloaded or timed out."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        return error.status_code in (429, 500, 502, 503, 504)
    return isinstance(error, ResponseHandlingException | ConnectionError | TimeoutError) or (
        type(error).__module__.startswith(("httpx", "httpcore", "grpc"))
    )


def warn_if_too_large_for_embedded_mode(store: QdrantDocumentStore) -> None:
    """Tell the user once per collection when embedded Qdrant stops being sensible."""
    if store.url is not None or store.host is not None or store.index in _warned_about_scale:
        return
    if store.count_documents() > EMBEDDED_QDRANT_LIMIT:
        _warned_about_scale.add(store.index)
        logger.warning(
            "Collection %r holds more than %d documents in embedded Qdrant, which searches them one by one "
            "in Python. Run a Qdrant server (or Qdrant Cloud) and pass url=... (CLI: --qdrant-url) to get "
            "an HNSW index; shard_number= and replication_factor= spread it over a cluster.",
            store.index,
            EMBEDDED_QDRANT_LIMIT,
        )


def build_indexing_pipeline(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    *,
    policy: DuplicatePolicy = DuplicatePolicy.OVERWRITE,
) -> Pipeline:
    """``embedder -> DocumentWriter(document_store)``; run it with ``{"embedder": {"documents": docs}}``."""
    pipeline = Pipeline()
    pipeline.add_component("embedder", document_embedder)
    pipeline.add_component("writer", DocumentWriter(document_store=document_store, policy=policy))
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


def build_query_pipeline(
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    *,
    top_k: int = 10,
) -> Pipeline:
    """``text_embedder -> QdrantEmbeddingRetriever``; run it with ``{"text_embedder": {"text": query}}``."""
    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component("retriever", QdrantEmbeddingRetriever(document_store=document_store, top_k=top_k))
    pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
    return pipeline


def _chunks(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _already_written(store: QdrantDocumentStore, documents: list[Document]) -> set[str]:
    """Ids of ``documents`` whose content and meta are in the store already (their vectors need no work)."""
    stored = {document.id: document for document in store.get_documents_by_id([d.id for d in documents])}
    return {
        document.id
        for document in documents
        if document.id in stored
        and stored[document.id].content == document.content
        and stored[document.id].meta == document.meta
    }


def _write_with_retries(
    writer: DocumentWriter, documents: list[Document], *, retries: int, backoff_seconds: float
) -> int:
    for attempt in range(retries + 1):
        try:
            return writer.run(documents)["documents_written"]
        except Exception as error:
            if attempt == retries or not _is_transient(error):
                raise
            delay = backoff_seconds * 2**attempt
            logger.warning("Qdrant write failed (%s); retrying in %.1f s", error, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def index_documents(
    documents: Iterable[Document],
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    *,
    chunk_size: int = 1024,
    total: int | None = None,
    progress_bar: bool = True,
    skip_existing: bool = True,
    retries: int = 3,
    backoff_seconds: float = 1.0,
) -> int:
    """Encode and write documents chunk by chunk, in bounded memory; resumable.

    The same two components as :func:`build_indexing_pipeline`, run directly so that the caller's
    embedder (a component can belong to only one Pipeline) can be used again afterwards. Writes
    overwrite by id, so a document is never stored twice. With ``skip_existing``, documents already
    stored with the same content and meta are not encoded again: re-running after an interruption
    does only the missing work. Transient store errors are retried with exponential backoff; a
    write that still fails raises :class:`StoreError` saying how much was written.

    :returns: The number of documents written by this call (skipped ones not counted).
    """
    writer = DocumentWriter(document_store=document_store, policy=DuplicatePolicy.OVERWRITE)
    written = skipped = 0
    with tqdm(total=total, disable=not progress_bar, desc="Indexing", unit="doc") as progress:
        for chunk in _chunks(documents, chunk_size):
            try:
                done = _already_written(document_store, chunk) if skip_existing else set()
                todo = [document for document in chunk if document.id not in done]
                if todo:
                    embedded = document_embedder.run(todo)["documents"]
                    written += _write_with_retries(writer, embedded, retries=retries, backoff_seconds=backoff_seconds)
            except SimlmHaystackError:
                raise  # already says what went wrong (e.g. a model that cannot be loaded)
            except Exception as error:
                if not (_is_transient(error) or isinstance(error, OSError)):
                    raise
                raise StoreError(
                    f"Writing to Qdrant collection {document_store.index!r} failed after {written} documents "
                    f"were written in this run ({type(error).__name__}: {error}). Everything written is kept: "
                    "run the same command again to resume; documents already stored are skipped."
                ) from error
            skipped += len(chunk) - len(todo)
            progress.update(len(chunk))
            progress.set_postfix(written=written, skipped=skipped, refresh=False)
    if skipped:
        logger.info("Skipped %d documents already in collection %r", skipped, document_store.index)
    warn_if_too_large_for_embedded_mode(document_store)
    return written
