"""Retrieval quality on BEIR collections, measured through the real indexing and query pipeline."""

from simlm_haystack.evaluation.data import BeirCollection, Qrels, load_beir
from simlm_haystack.evaluation.evaluator import (
    DEFAULT_MEASURES,
    EvaluationResult,
    IndexReport,
    Run,
    calc_metrics,
    ensure_indexed,
    evaluate,
    format_table,
    index_fingerprint,
    retrieve,
    versions,
)

__all__ = [
    "DEFAULT_MEASURES",
    "BeirCollection",
    "EvaluationResult",
    "IndexReport",
    "Qrels",
    "Run",
    "calc_metrics",
    "ensure_indexed",
    "evaluate",
    "format_table",
    "index_fingerprint",
    "load_beir",
    "retrieve",
    "versions",
]
