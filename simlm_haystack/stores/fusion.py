"""How a hybrid search fuses its dense and its sparse (BM25) candidates: one settings object for every store.

A hybrid search runs two prefetches, the dense vector's nearest ``prefetch_limit`` points and the sparse
vector's best ``prefetch_limit`` (BM25 with the collection's IDF), and fuses them:

- ``"rrf"``: reciprocal rank fusion, each list adding ``weight / (k + rank)`` (rank from 1) to a point's score,
  as Qdrant computes it (``Fusion.Rrf(k, weights)``);
- ``"dbsf"``: distribution-based score fusion, each list's scores normalised by its mean +- 3 standard
  deviations, then summed (``Fusion.Dbsf()``).

``rrf_weights`` follow qdrant-haystack's ``QdrantHybridRetriever``: ``[sparse, dense]``, its prefetch order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

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
:param prefetch_limit: Candidates each side brings to the fusion (at least ``top_k``)."""


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
    :param prefetch_limit: Candidates each side brings to the fusion; at least the search's ``top_k`` is used.
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

    def candidates(self, top_k: int) -> int:
        """How many candidates each side prefetches for a search of ``top_k``."""
        return max(self.prefetch_limit, top_k)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (``rrf_weights`` a list): also the fusion init parameters of the
        hybrid retrievers, which take the same four names."""
        data = asdict(self)
        data["rrf_weights"] = list(self.rrf_weights) if self.rrf_weights is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HybridSearch:
        return cls(**data)
