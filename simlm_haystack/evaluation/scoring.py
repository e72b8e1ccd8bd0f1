"""Scoring a run against relevance judgements with ir-measures."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ir_measures

from simlm_haystack.evaluation.data import Qrels
from simlm_haystack.evaluation.retrieval import Run

logger = logging.getLogger(__name__)

#: BEIR's headline measure, MS MARCO's, and the recall a re-ranker or a hard-negative miner can work with.
DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100", "R@1000")


def calc_metrics(qrels: Qrels, run: Run, measures: Sequence[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean measures over the queries of ``run`` with ir-measures, keyed by the measure names given.

    ir-measures averages over the queries that retrieved something; a warning says how many did not,
    rather than let the mean look better than it is.
    """
    empty = sum(not ranking for ranking in run.values())
    if empty:
        logger.warning("%d of %d queries retrieved nothing and are left out of the means", empty, len(run))
    parsed = {name: ir_measures.parse_measure(name) for name in measures}
    aggregate = ir_measures.calc_aggregate(list(parsed.values()), qrels, run)
    return {name: float(aggregate[measure]) for name, measure in parsed.items()}
