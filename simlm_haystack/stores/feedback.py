"""Pseudo-relevance feedback, label-free: a first search's best documents taken as relevant, and the query moved
towards them for a second search (issue 27).

- **Dense, Rocchio** (:func:`rocchio`): ``q + beta * mean(d)`` over the documents' dense vectors, scaled back to
  the query's own length (a unit query stays a unit vector; a dot-product query keeps its scale).
- **BM25, RM3-style expansion** (:func:`expanded_sparse`): the query's own terms (weight 1 each, as
  :class:`~simlm_haystack.sparse.BM25Encoder` weighs them) plus the ``terms`` terms of highest summed BM25
  weight in the documents that the query lacks, each weighted ``lam * w / max(w)``; the collection's IDF still
  applies at search time.

:class:`PseudoRelevanceFeedback` holds the settings and moves a search's query vectors with the first search's
documents (returned with their embeddings); ``DualEncoderRetriever(feedback=...)`` searches with it. On SciFact
with all-MiniLM-L6-v2 (``benchmarks.feedback_scifact``) no variant beat plain hybrid search beyond noise on the
train queries, and each costs a second search, so the retriever searches without feedback by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from haystack import Document
from haystack.dataclasses import SparseEmbedding

from simlm_haystack.errors import SettingsError


def rocchio(query: Sequence[float], documents: Sequence[Document], beta: float) -> list[float]:
    """``query + beta * mean(document embeddings)``, scaled to the query's length; the query itself when there is
    nothing to add."""
    vectors = [document.embedding for document in documents if document.embedding is not None]
    if not vectors or beta == 0:
        return list(query)
    original = np.asarray(query, dtype=np.float64)
    moved = original + beta * np.mean(np.asarray(vectors, dtype=np.float64), axis=0)
    norm = np.linalg.norm(moved)
    return (moved * (np.linalg.norm(original) / norm) if norm else moved).tolist()


def expanded_sparse(query: SparseEmbedding, documents: Sequence[Document], terms: int, lam: float) -> SparseEmbedding:
    """``query`` plus the ``terms`` new terms of highest summed weight in the documents' sparse embeddings, each
    weighted ``lam * w / max(w)`` (ties: the lower index first); the query's own weights are kept."""
    weights: dict[int, float] = {}
    for document in documents:
        if document.sparse_embedding is None:
            continue
        for index, value in zip(document.sparse_embedding.indices, document.sparse_embedding.values, strict=True):
            weights[index] = weights.get(index, 0.0) + value
    own = set(query.indices)
    new = sorted(((-weight, index) for index, weight in weights.items() if index not in own))[:terms]
    if not new or lam == 0:
        return query
    top = -new[0][0]
    merged = dict(zip(query.indices, query.values, strict=True)) | {index: lam * -w / top for w, index in new}
    indices = sorted(merged)
    return SparseEmbedding(indices=indices, values=[merged[index] for index in indices])


@dataclass(frozen=True)
class PseudoRelevanceFeedback:
    """Which feedback a second search gets from a first one's ``documents`` best results.

    :param documents: How many of the first search's best documents are taken as relevant (>= 1).
    :param beta: Rocchio's weight of their dense centroid (0: the dense query is not moved).
    :param terms: How many expansion terms the BM25 query gets (0: none).
    :param lam: The weight of the heaviest expansion term (the others in proportion; the query's own are 1).
    """

    documents: int = 3
    beta: float = 0.5
    terms: int = 0
    lam: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.documents, bool) or not isinstance(self.documents, int) or self.documents < 1:
            raise SettingsError(f"feedback documents must be a positive integer, not {self.documents!r}")
        if isinstance(self.terms, bool) or not isinstance(self.terms, int) or self.terms < 0:
            raise SettingsError(f"feedback terms must be a non-negative integer, not {self.terms!r}")
        for name in ("beta", "lam"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise SettingsError(f"feedback {name} must be a finite number >= 0, not {value!r}")

    def moved(self, vectors: Mapping[str, Any], first: Sequence[Document]) -> dict[str, Any]:
        """A retriever's query vectors (``query_embedding`` and/or ``query_sparse_embedding``, as its ``run`` takes
        them) moved towards the first search's results ``first`` (best first, with their embeddings): only its
        ``documents`` best are read."""
        relevant = list(first[: self.documents])
        moved = dict(vectors)
        if "query_embedding" in vectors:
            moved["query_embedding"] = rocchio(vectors["query_embedding"], relevant, self.beta)
        if "query_sparse_embedding" in vectors:
            moved["query_sparse_embedding"] = expanded_sparse(
                vectors["query_sparse_embedding"], relevant, self.terms, self.lam
            )
        return moved

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, feedback: PseudoRelevanceFeedback | Mapping[str, Any] | None) -> PseudoRelevanceFeedback | None:
        """The settings given as settings, as their dict (YAML), or not at all (None: no feedback)."""
        return feedback if feedback is None or isinstance(feedback, cls) else cls(**feedback)
