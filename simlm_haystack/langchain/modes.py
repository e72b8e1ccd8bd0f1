"""LangChain's retrieval modes for this store: which vectors each reads and writes, and which embeddings it needs."""

from __future__ import annotations

from typing import Any

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from langchain_qdrant import RetrievalMode, SparseEmbeddings
from qdrant_client import models

from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings

#: The retrieval modes that read and write the dense vector, and those that read and write the sparse one.
DENSE_MODES: tuple[RetrievalMode, ...] = (RetrievalMode.DENSE, RetrievalMode.HYBRID)
SPARSE_MODES: tuple[RetrievalMode, ...] = (RetrievalMode.SPARSE, RetrievalMode.HYBRID)


def check_embeddings(retrieval_mode: RetrievalMode, embedding: Any, sparse_embedding: Any) -> None:
    """The embeddings ``retrieval_mode`` needs must be given, of the types the store takes, and no other.

    :raises TypeError: The mode's embeddings are missing or of another type.
    :raises ValueError: ``sparse_embedding`` in DENSE mode, where it would silently not be used.
    """
    # SPARSE mode may go without a dense model (as in the parent); a dense model given there is not loaded.
    if (retrieval_mode in DENSE_MODES or embedding is not None) and not isinstance(embedding, DualEncoderEmbeddings):
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


def recipe_distance(embedding: DualEncoderEmbeddings, distance: models.Distance | str | None) -> models.Distance:
    """The distance the recipe of ``embedding`` was trained with, which ``distance``, when given, must be.

    :raises ValueError: ``distance`` is another one.
    """
    expected = QdrantDocumentStore.SIMILARITY[embedding.recipe.similarity]
    if distance is not None and models.Distance(distance) != expected:
        raise ValueError(
            f"distance={models.Distance(distance).value} disagrees with recipe {embedding.recipe.name!r} "
            f"({expected.value}): the model's vectors are compared as it was trained; leave distance out"
        )
    return expected
