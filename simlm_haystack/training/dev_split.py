"""A dev split carved from the training queries, so that a checkpoint is chosen on queries that are neither
trained on nor the test set's.

SciFact, like most BEIR collections, has no dev split: choosing the checkpoint (or any setting) on its test
queries reports a figure that was chosen on the very queries it is reported on. :func:`carve_dev_split` moves a
seeded random draw of the training queries to a ``dev`` split; the trainer then keeps the checkpoint that scores
best there, and a test split given to ``--eval`` is only reported.
"""

from __future__ import annotations

import random
from dataclasses import replace

from simlm_haystack.errors import DataError
from simlm_haystack.evaluation.data import BeirCollection

#: The split the carved queries go to.
DEV_SPLIT = "dev"
#: The default seed of the draw (the benchmarks' own, so that they and ``train`` hold out the same queries).
DEV_SEED = 1234


def dev_size(queries: int, size: float) -> int:
    """How many of ``queries`` a ``size`` holds out: a count (``size >= 1``) or a share (``0 < size < 1``,
    rounded, at least one); 0 holds none.

    :raises DataError: ``size`` is negative, a count that leaves no training query, or not a whole count.
    """
    if size < 0 or (size >= 1 and size != int(size)):
        raise DataError(f"--dev_queries must be a count (>= 1), a share (between 0 and 1) or 0, not {size}")
    count = int(size) if size >= 1 else (max(1, round(size * queries)) if size > 0 else 0)
    if count >= queries:
        raise DataError(f"--dev_queries {size} would hold out {count} of the {queries} training queries: none left")
    return count


def carve_dev_split(
    collection: BeirCollection, split: str = "train", size: float = 0, *, seed: int = DEV_SEED
) -> BeirCollection:
    """``collection`` with ``dev_size(len(queries), size)`` queries of ``split`` drawn (``random.Random(seed)``
    over the sorted query ids) and moved to a :data:`DEV_SPLIT` split; ``split`` keeps the others. With no
    queries to hold out, the collection is returned as it is.
    """
    judged = collection.split(split)
    count = dev_size(len(judged), size)
    if not count:
        return collection
    dev_ids = set(random.Random(seed).sample(sorted(judged), count))
    qrels = dict(collection.qrels)
    qrels[split] = {query: judgements for query, judgements in judged.items() if query not in dev_ids}
    qrels[DEV_SPLIT] = {query: judgements for query, judgements in judged.items() if query in dev_ids}
    return replace(collection, qrels=qrels)
