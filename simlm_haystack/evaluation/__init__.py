"""Retrieval quality on BEIR collections, measured through the real indexing and query pipeline.

One job per module: :mod:`.data` (BEIR loading), :mod:`.index` (fingerprint and index reuse),
:mod:`.retrieval` (batched query encoding, search through the store's retriever), :mod:`.scoring`
(ir-measures), :mod:`.provenance` (versions, store description), :mod:`.evaluator` (``evaluate``:
the four together, and the result).
"""

from simlm_haystack.evaluation.data import BeirCollection, Qrels, load_beir
from simlm_haystack.evaluation.evaluator import EvaluationResult, evaluate, format_table
from simlm_haystack.evaluation.index import FINGERPRINT_FIELD, IndexReport, ensure_indexed, index_fingerprint
from simlm_haystack.evaluation.provenance import describe_store, versions
from simlm_haystack.evaluation.retrieval import Run, encode_queries, retrieve, search
from simlm_haystack.evaluation.scoring import DEFAULT_MEASURES, calc_metrics

__all__ = [
    "DEFAULT_MEASURES",
    "FINGERPRINT_FIELD",
    "BeirCollection",
    "EvaluationResult",
    "IndexReport",
    "Qrels",
    "Run",
    "calc_metrics",
    "describe_store",
    "encode_queries",
    "ensure_indexed",
    "evaluate",
    "format_table",
    "index_fingerprint",
    "load_beir",
    "retrieve",
    "search",
    "versions",
]
