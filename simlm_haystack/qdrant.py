"""Qdrant stores sized and distanced from the recipe, and the indexing and query pipelines over them."""

from __future__ import annotations

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
from simlm_haystack.errors import CollectionMismatchError
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipes import Recipe, get_recipe


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


def index_documents(
    documents: Iterable[Document],
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    *,
    chunk_size: int = 1024,
    total: int | None = None,
    progress_bar: bool = True,
) -> int:
    """Encode and write documents chunk by chunk, in bounded memory.

    The same two components as :func:`build_indexing_pipeline`, run directly so that the caller's
    embedder (a component can belong to only one Pipeline) can be used again afterwards. Existing
    documents with the same ids are overwritten, so re-running after an interruption leaves exactly
    one copy of each. Returns the number of documents written.
    """
    writer = DocumentWriter(document_store=document_store, policy=DuplicatePolicy.OVERWRITE)
    written = 0
    with tqdm(total=total, disable=not progress_bar, desc="Indexing", unit="doc") as progress:
        for chunk in _chunks(documents, chunk_size):
            embedded = document_embedder.run(chunk)["documents"]
            written += writer.run(embedded)["documents_written"]
            progress.update(len(chunk))
    return written
