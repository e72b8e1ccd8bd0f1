"""How a hybrid search fuses its dense and its sparse (BM25) candidates: one settings object for every store.

A hybrid search runs two prefetches, the dense vector's nearest ``prefetch_limit`` points and the sparse
vector's best ``prefetch_limit`` (BM25 with the collection's IDF), and fuses them:

- ``"rrf"``: reciprocal rank fusion, each list adding ``weight / (k + rank)`` (rank from 1) to a point's score,
  as Qdrant computes it (``Fusion.Rrf(k, weights)``);
- ``"dbsf"``: distribution-based score fusion, each list's scores normalised by its mean +- 3 standard
  deviations, then summed (``Fusion.Dbsf()``).

``rrf_weights`` follow qdrant-haystack's ``QdrantHybridRetriever``: ``[sparse, dense]``, its prefetch order.

**Depth never reorders the top.** Both fusions depend on how many candidates they see: DBSF normalises each side
by the mean and spread of what it brought, and RRF adds ``1 / (k + rank)`` for a document that a deeper side
brings in. So the places a search of ``top_k <= prefetch_limit`` returns are always those of the fusion of
``prefetch_limit`` candidates a side, whatever ``top_k`` is; a deeper search (``top_k > prefetch_limit``) returns
those first, then the other documents of a fusion of ``top_k`` candidates a side, in its order, their scores
shifted below the last of the first fusion's (:func:`deepened`). The first ten of ``top_k=10``, ``100`` and
``1000`` are the same documents with the same scores (tested), and an evaluation that retrieves 1,000 a query
for R@1000 measures nDCG@10 and MRR@10 of the search users run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, TypeVar

from simlm_haystack.errors import SettingsError

FusionMethod = Literal["rrf", "dbsf"]
FUSION_METHODS: tuple[str, ...] = ("rrf", "dbsf")

#: What a search reads: the dense vectors, the BM25 sparse ones, or both fused.
Retrieval = Literal["dense", "sparse", "hybrid"]
RETRIEVALS: tuple[str, ...] = ("dense", "sparse", "hybrid")

#: The search settings' documentation, written once (``simlm_haystack.docstrings.docstring_with`` puts it in place):
#: what is searched, then how hybrid search fuses.
RETRIEVAL_DOC = """\
:param retrieval: ``"dense"`` (default): the dense vectors alone; ``"sparse"``: BM25 alone (no model is loaded
    for the search); ``"hybrid"``: both, fused. Sparse and hybrid need a collection indexed with sparse vectors
    (indexing with ``"sparse"`` or ``"hybrid"`` writes both kinds, so that the collection serves every search).
:param bm25: The BM25 settings (:class:`~simlm_haystack.sparse.BM25Settings` or its dict; the defaults are
    fastembed's ``Qdrant/bm25``); they must be those the collection was indexed with."""
FUSION_DOC = """\
:param fusion: How hybrid search fuses its two lists: ``"dbsf"`` (distribution-based score fusion, the default:
    it measured best) or ``"rrf"`` (reciprocal rank fusion); see :mod:`simlm_haystack.stores.fusion`.
:param rrf_k: RRF's constant ``k``.
:param rrf_weights: RRF's ``[sparse, dense]`` weights (qdrant-haystack's order); ``None`` weighs them alike.
:param prefetch_limit: Candidates each side brings to the fusion that ranks the first places; a deeper ``top_k``
    adds the rest from a fusion of ``top_k`` candidates a side, after them (the top never depends on ``top_k``)."""


#: The fusion settings a hybrid retriever's ``run`` may override (see :meth:`HybridSearch.overridden`).
RUN_OVERRIDES: tuple[str, ...] = ("rrf_k", "rrf_weights")


def check_retrieval(retrieval: str) -> None:
    if retrieval not in RETRIEVALS:
        raise SettingsError(f"retrieval must be one of {RETRIEVALS}, not {retrieval!r}")


@dataclass(frozen=True)
class HybridSearch:
    """How candidates are gathered and fused (see the module docstring).

    :param fusion: ``"dbsf"`` (default) or ``"rrf"``.
    :param rrf_k: RRF's constant ``k`` (larger: ranks matter less); only with ``"rrf"``.
    :param rrf_weights: ``[sparse, dense]`` weights of RRF's two lists; ``None`` weighs them alike.
    :param prefetch_limit: Candidates each side brings to the fusion that ranks the first places (see the module
        docstring for a deeper ``top_k``).
    """

    #: DBSF by measurement (BENCHMARKS.md, issue 18): with all-MiniLM-L6-v2 and BM25 on SciFact's train queries,
    #: chosen there, it was 2.2 nDCG@10 above RRF k=60 and 1.1 above the best RRF variant (k=2); on test, 2.4
    #: above RRF k=60.
    #: It fuses scores rather than ranks, so a side whose scores are flat (weak) moves the result less.
    fusion: FusionMethod = "dbsf"
    rrf_k: int = 60
    rrf_weights: tuple[float, float] | None = None
    prefetch_limit: int = 100

    def __post_init__(self) -> None:
        if self.fusion not in FUSION_METHODS:
            raise SettingsError(f"fusion must be one of {FUSION_METHODS}, not {self.fusion!r}")
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or self.rrf_k < 1:
            raise SettingsError(f"rrf_k must be a positive integer, not {self.rrf_k!r}")
        if self.rrf_weights is not None:
            weights = tuple(float(weight) for weight in self.rrf_weights)
            if len(weights) != 2 or any(weight < 0 for weight in weights) or not any(weights):
                raise SettingsError(
                    f"rrf_weights must be two non-negative weights, [sparse, dense], not all 0: {self.rrf_weights!r}"
                )
            object.__setattr__(self, "rrf_weights", weights)
        if isinstance(self.prefetch_limit, bool) or not isinstance(self.prefetch_limit, int) or self.prefetch_limit < 1:
            raise SettingsError(f"prefetch_limit must be a positive integer, not {self.prefetch_limit!r}")

    def overridden(self, *, rrf_k: int | None = None, rrf_weights: Sequence[float] | None = None) -> HybridSearch:
        """This search with what one run of a hybrid retriever may override (:data:`RUN_OVERRIDES`: RRF's ``k``
        and weights, as ``QdrantHybridRetriever.run`` takes them); ``None`` keeps the setting. The fusion and
        the prefetch limit are the retriever's own settings. The Edge and the server hybrid retrievers both
        override through here, so they agree."""
        search = self
        if rrf_k is not None:
            search = replace(search, rrf_k=rrf_k)
        if rrf_weights is not None:
            search = replace(search, rrf_weights=tuple(rrf_weights))  # type: ignore[arg-type]  # checked there
        return search

    def deeper(self, top_k: int, returned: int) -> int | None:
        """The candidates a side of the second, deeper fusion brings when a search of ``top_k`` got ``returned``
        documents from the first (``top_k``); None when no second fusion is needed: ``top_k`` is within
        ``prefetch_limit`` (a deeper fusion would find no more) or the first fusion filled it."""
        return top_k if top_k > self.prefetch_limit and returned < top_k else None

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (``rrf_weights`` a list): also the fusion init parameters of the
        hybrid retrievers, which take the same four names."""
        data = asdict(self)
        data["rrf_weights"] = list(self.rrf_weights) if self.rrf_weights is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HybridSearch:
        return cls(**data)


_Ranked = TypeVar("_Ranked")


def deepened(
    first: Sequence[_Ranked], deeper: Sequence[_Ranked], top_k: int, score_threshold: float | None = None
) -> list[_Ranked]:
    """The ``top_k`` results of a deep search: the first fusion's (``first``, kept as they are), then the deeper
    fusion's others in its order, each score shifted by one amount so that the first of them scores just
    below the last of ``first`` (scores of different fusions are not comparable; the order and the gaps of
    the deeper fusion are kept). ``score_threshold`` applies to the shifted scores.

    Items are dataclasses with ``id`` and ``score`` (Haystack Documents).
    """
    seen = {item.id for item in first}  # type: ignore[attr-defined]
    rest = [item for item in deeper if item.id not in seen][: max(top_k - len(first), 0)]  # type: ignore[attr-defined]
    if not first or not rest:
        return [*first, *rest]
    floor = first[-1].score  # type: ignore[attr-defined]
    top = rest[0].score  # type: ignore[attr-defined]
    shift = floor - top - max(abs(floor), 1.0) * 1e-6
    shifted = [replace(item, score=item.score + shift) for item in rest]  # type: ignore[attr-defined, type-var]
    if score_threshold is not None:
        shifted = [item for item in shifted if item.score >= score_threshold]  # type: ignore[attr-defined]
    return [*first, *shifted]
