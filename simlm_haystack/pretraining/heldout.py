"""The label-free check: held-out (pseudo-query, passage) pairs, and how well a model finds each passage.

Before training, a share of the corpus's pairs is set aside (:func:`hold_out`): their passages are
never trained on, by any method. Each held-out pair is drawn once, with a fixed seed, with its query
cut out of its passage. :func:`label_free_scores` encodes the queries and the whole corpus (up to
``corpus_size`` passages: beyond, every held-out passage plus a fixed sample of the others; each
passage as the pairs read it, so with titles as queries the passages have no titles) through
the package's own encoding (:class:`~simlm_haystack.encoding.DualEncoder`, as the recipe reads), searches
exactly (one matrix product) and scores the ranking with ir-measures: MRR@10 is how high, on average,
each pseudo-query puts its own passage. The same check, byte for byte, scores the starting model and
the result, each read through its recipe, so the two numbers compare.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from simlm_haystack.encoding import DualEncoder
from simlm_haystack.errors import DataError
from simlm_haystack.evaluation.scoring import calc_metrics
from simlm_haystack.fingerprint import model_fingerprint
from simlm_haystack.models import LoadedModel, _from_pretrained, local_model_path
from simlm_haystack.pretraining.corpus import CorpusPassage
from simlm_haystack.pretraining.pairs import PseudoQueryPair
from simlm_haystack.recipes import Recipe

#: ir-measures name -> the name reported (as the fine-tuning evaluator names them).
LABEL_FREE_MEASURES = {"RR@10": "MRR@10", "R@10": "R@10", "R@100": "R@100"}
#: Documents ranked per query: enough for R@100.
RANKED = 100

Pair = TypeVar("Pair", bound=PseudoQueryPair)


@dataclass(frozen=True)
class HeldOutCheck:
    """Held-out pseudo-queries, the passage each must find (``answers``: query id -> document id), and the
    corpus searched (document ids are positions in the pair list, so duplicates and missing ids do not matter).

    :param source: Where the pseudo-queries come from (``"title"``, ``"inverse-cloze"``, ...), for the report.
    :param held_out: The ``file:line`` of every held-out passage (never trained on, by any method).
    """

    queries: dict[str, str]
    answers: dict[str, str]
    documents: dict[str, CorpusPassage]
    source: str
    held_out: tuple[str, ...] = ()

    def digest(self) -> str:
        """What decides the scores besides the model: every query, answer and document, hashed."""
        digest = hashlib.blake2b(digest_size=16)
        content = {
            "queries": self.queries,
            "answers": self.answers,
            "documents": {key: [p.title, p.text] for key, p in self.documents.items()},
        }
        digest.update(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "queries": len(self.queries),
            "documents": len(self.documents),
            "digest": self.digest(),
        }


def held_out_count(pairs: int, share: float, max_queries: int) -> int:
    """How many pairs to hold out: ``share`` of them (at least one), at most ``max_queries``, and never all."""
    if share <= 0 or max_queries <= 0 or pairs < 2:
        return 0
    return min(max(1, round(share * pairs)), max_queries, pairs - 1)


def hold_out(
    items: Sequence[Pair],
    *,
    share: float,
    max_queries: int,
    corpus_size: int,
    seed: int,
    source: str,
) -> tuple[list[Pair], HeldOutCheck | None]:
    """The items left to train on, and the check made of the others (``None`` when nothing is held out).

    Which items are held out, which pair each draws and which passages make up a capped corpus all come
    from ``seed`` alone, so every run with the same corpus and seed checks the same thing.
    """
    count = held_out_count(len(items), share, max_queries)
    if count == 0:
        return list(items), None
    order = np.random.default_rng([seed, 1]).permutation(len(items))
    held = sorted(int(i) for i in order[:count])
    held_set = set(held)
    training = [item for index, item in enumerate(items) if index not in held_set]
    queries, answers, documents = {}, {}, {}
    for index in held:
        query, passage = items[index].draw(np.random.default_rng([seed, 2, index]), evaluation=True)
        queries[f"q{index}"] = query
        answers[f"q{index}"] = str(index)
        documents[str(index)] = passage
    others = [int(i) for i in order[count:]]
    room = max(0, corpus_size - count)
    if len(others) > room:
        others = others[:room]  # already a seeded random order
    for index in sorted(others):
        documents[str(index)] = items[index].document
    held_out = tuple(items[index].document.where for index in held)
    return training, HeldOutCheck(queries, answers, documents, source, held_out)


def fresh_encoder(model: str | Path, recipe: Recipe) -> DualEncoder:
    """``model`` loaded from disk now (not from the process-wide cache, which would keep serving the weights
    of an output folder written earlier) and read through ``recipe``."""
    source = local_model_path(model)
    verbosity = transformers_logging.get_verbosity()
    # A checkpoint saved without BERT's pooler (which no recipe reads) would be reported as incomplete.
    transformers_logging.set_verbosity_error()
    try:
        tokenizer = _from_pretrained(AutoTokenizer, source, local_files_only=False)
        network = _from_pretrained(AutoModel, source, local_files_only=False).eval()
    finally:
        transformers_logging.set_verbosity(verbosity)
    return DualEncoder(LoadedModel(model=network, tokenizer=tokenizer, source=source), recipe)


def encoder_fingerprint(encoder: DualEncoder) -> str:
    return model_fingerprint(encoder.loaded.model, encoder.loaded.tokenizer)


def label_free_scores(encoder: Any, check: HeldOutCheck, *, batch_size: int = 32) -> dict[str, float]:
    """MRR@10, R@10 and R@100 (in percent) of the held-out queries finding their passages, by exact search.

    :param encoder: Anything with :meth:`DualEncoder.encode`'s signature (a :class:`DualEncoder`).
    """
    document_ids = list(check.documents)
    passages = [check.documents[key] for key in document_ids]
    query_ids = list(check.queries)
    document_vectors = encoder.encode(
        "document", [p.text for p in passages], [p.title for p in passages], batch_size=batch_size
    )
    query_vectors = encoder.encode("query", [check.queries[key] for key in query_ids], batch_size=batch_size)
    scores = query_vectors @ document_vectors.T
    depth = min(RANKED, len(document_ids))
    run: dict[str, dict[str, float]] = {}
    for row, query_id in enumerate(query_ids):
        top = np.argpartition(-scores[row], depth - 1)[:depth]
        run[query_id] = {document_ids[column]: float(scores[row, column]) for column in top}
    qrels = {query_id: {check.answers[query_id]: 1} for query_id in query_ids}
    metrics = calc_metrics(qrels, run, tuple(LABEL_FREE_MEASURES))
    return {name: round(100 * metrics[measure], 3) for measure, name in LABEL_FREE_MEASURES.items()}


class ScoreCache:
    """Scores of a model already measured on the same check, kept in ``directory/heldout_scores.json``.

    The key is the model's weights and tokenizer (their fingerprint, not its name), the recipe, and what
    was measured (the held-out check's digest, or a BEIR collection and split), so a score is reused only
    where measuring again would give the same number.
    """

    FILE = "heldout_scores.json"

    def __init__(self, directory: str | Path | None) -> None:
        self.path = Path(directory) / self.FILE if directory is not None else None

    @staticmethod
    def key(fingerprint: str, recipe: Recipe, what: dict[str, Any]) -> str:
        text = json.dumps([fingerprint, recipe.to_dict(), what], sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{self.path} is not a score cache ({error}); delete it to measure again") from None

    def get(self, key: str) -> dict[str, float] | None:
        entry = self._read().get(key)
        return None if entry is None else entry["scores"]

    def put(self, key: str, scores: dict[str, float], note: dict[str, Any]) -> None:
        if self.path is None:
            return
        entries = self._read()
        entries[key] = {"scores": scores, **note}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
