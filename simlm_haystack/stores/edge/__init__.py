"""Qdrant Edge (``qdrant-edge-py``, Qdrant's Rust engine in-process) as a Haystack document store."""

from __future__ import annotations

from pathlib import Path

from simlm_haystack.recipes import Recipe
from simlm_haystack.stores.edge.collection import read_collection_file, stored_use_sparse_embeddings
from simlm_haystack.stores.edge.document_store import EdgeDocumentStore
from simlm_haystack.stores.edge.hybrid_retriever import EdgeHybridRetriever
from simlm_haystack.stores.edge.retriever import EdgeEmbeddingRetriever
from simlm_haystack.stores.edge.sparse_retriever import EdgeSparseEmbeddingRetriever
from simlm_haystack.stores.edge.support import EdgeStoreSupport
from simlm_haystack.stores.qdrant import ModelWithRecipe, vector_settings

__all__ = [
    "EdgeDocumentStore",
    "EdgeEmbeddingRetriever",
    "EdgeHybridRetriever",
    "EdgeSparseEmbeddingRetriever",
    "EdgeStoreSupport",
    "edge_document_store",
]


def edge_document_store(
    recipe_or_embedder: Recipe | str | ModelWithRecipe,
    *,
    path: str | None = None,
    index: str = "Document",
    embedding_dim: int | None = None,
    check_collection: bool = True,
    hnsw_ef: int | None = 128,
    exact_search_threshold: int = 10_000,
    on_disk: bool = False,
    use_sparse_embeddings: bool | None = None,
) -> EdgeDocumentStore:
    """An :class:`EdgeDocumentStore` whose vector size and distance come from the model and its recipe.

    :param recipe_or_embedder: One of our embedders (size read from its model's config, distance
        from its recipe), or a recipe / recipe name together with ``embedding_dim``.
    :param path: The folder holding the collections; a temporary one (removed on close) without it.
    :param index: The collection name (its folder is ``<path>/<index>``).
    :param embedding_dim: The vector size; required with a recipe, checked against an embedder's model.
    :param check_collection: Open the collection now, so that an existing one with another size or
        distance (or the other ``use_sparse_embeddings``), or one another process holds, is an error
        before anything is encoded or written.
    :param hnsw_ef: See :class:`EdgeDocumentStore`.
    :param exact_search_threshold: See :class:`EdgeDocumentStore`.
    :param on_disk: See :class:`EdgeDocumentStore`.
    :param use_sparse_embeddings: Give the collection a BM25 sparse vector beside the dense one, for sparse
        and hybrid search (see :class:`EdgeDocumentStore`); an existing collection must have been created
        with the same setting. ``None``: as an existing collection was created, else dense only.
    """
    embedding_dim, similarity = vector_settings(recipe_or_embedder, embedding_dim)
    if use_sparse_embeddings is None:
        described = read_collection_file(Path(path) / index) if path is not None else None
        use_sparse_embeddings = described is not None and stored_use_sparse_embeddings(described)
    store = EdgeDocumentStore(
        path=path,
        index=index,
        embedding_dim=embedding_dim,
        similarity=similarity,
        hnsw_ef=hnsw_ef,
        exact_search_threshold=exact_search_threshold,
        on_disk=on_disk,
        use_sparse_embeddings=use_sparse_embeddings,
    )
    if check_collection:
        store.open()
    return store
