"""Training data: JSONL examples or a BEIR train split, checked line by line before training starts.

One JSONL line is one query with its passages::

    {"query": "...", "positives": [{"title": "...", "text": "..."} | "doc-id", ...],
     "negatives": [...], "scores": {"doc-id": 9.1, ...}}

A passage is an object (``text``; ``title``, ``id`` and a teacher ``score`` optional) or a document
id looked up in a corpus. ``scores`` (optional) maps document ids to teacher scores; the
distillation losses and the TAS margin bins need one for every passage of every example.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document
from torch.utils.data import Dataset

from simlm_haystack.corpus import read_jsonl
from simlm_haystack.errors import DataError
from simlm_haystack.evaluation.data import BeirCollection, load_beir, read_corpus


@dataclass(frozen=True)
class Passage:
    """A document as the recipe reads it; ``score`` is a teacher's score for the example's query."""

    text: str
    title: str | None = None
    id: str | None = None
    score: float | None = None


@dataclass
class TrainingExample:
    """One query, its relevant passages and (optionally) hard negatives."""

    query: str
    positives: list[Passage]
    negatives: list[Passage] = field(default_factory=list)
    query_id: str | None = None
    where: str = ""  # "file:line", for error messages raised after loading

    @property
    def has_teacher_scores(self) -> bool:
        return all(passage.score is not None for passage in (*self.positives, *self.negatives))


@dataclass(frozen=True)
class Draw:
    """Which passages of an example a batch uses: the sampler decides, so an epoch is reproducible."""

    example: int
    positive: int
    negatives: tuple[int, ...]


Corpus = dict[str, Passage]


def passage_from_document(document: Document) -> Passage:
    """A Haystack ``Document`` (title in ``meta["title"]``, as the corpus readers put it) as a passage."""
    return Passage(text=document.content or "", title=document.meta.get("title") or None, id=document.id)


def load_corpus(path: str | Path) -> Corpus:
    """A BEIR ``corpus.jsonl`` (or any JSONL with ``_id``, ``title``, ``text``) keyed by id."""
    return {document.id: passage_from_document(document) for document in read_corpus(path)}


def _passage(value: Any, scores: dict[str, float], corpus: Corpus | None, where: str, role: str) -> Passage:
    if isinstance(value, str | int) and not isinstance(value, bool):
        doc_id = str(value)
        if corpus is None:
            raise DataError(f"{where}: {role} {doc_id!r} is a document id, but no corpus was given to look it up")
        if doc_id not in corpus:
            raise DataError(f"{where}: {role} {doc_id!r} is not in the corpus")
        return Passage(text=corpus[doc_id].text, title=corpus[doc_id].title, id=doc_id, score=scores.get(doc_id))
    if isinstance(value, dict):
        text = value.get("text", value.get("content"))
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: a {role} needs a non-empty 'text' (fields: {sorted(value)})")
        doc_id = None if value.get("id", value.get("_id")) is None else str(value.get("id", value.get("_id")))
        score = value.get("score", scores.get(doc_id) if doc_id is not None else None)
        if score is not None and not isinstance(score, int | float):
            raise DataError(f"{where}: the score of a {role} must be a number, got {score!r}")
        return Passage(text=text, title=value.get("title") or None, id=doc_id, score=score)
    raise DataError(f"{where}: a {role} must be a document id or an object with 'text', got {type(value).__name__}")


def parse_example(record: dict[str, Any], where: str, corpus: Corpus | None = None) -> TrainingExample:
    """Check one JSONL record and turn it into a :class:`TrainingExample`; errors name ``where``."""
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        raise DataError(f"{where}: no 'query' (a non-empty string) on this line")
    positives, negatives = record.get("positives"), record.get("negatives", [])
    if not isinstance(positives, list) or not positives:
        raise DataError(f"{where}: 'positives' must be a non-empty list")
    if not isinstance(negatives, list):
        raise DataError(f"{where}: 'negatives' must be a list")
    scores = record.get("scores") or {}
    if not isinstance(scores, dict) or not all(isinstance(v, int | float) for v in scores.values()):
        raise DataError(f"{where}: 'scores' must map document ids to numbers")
    scores = {str(key): float(value) for key, value in scores.items()}
    example = TrainingExample(
        query=query,
        positives=[_passage(p, scores, corpus, where, "positive") for p in positives],
        negatives=[_passage(n, scores, corpus, where, "negative") for n in negatives],
        query_id=None if record.get("query_id") is None else str(record["query_id"]),
        where=where,
    )
    if scores and not example.has_teacher_scores:
        raise DataError(f"{where}: 'scores' is given but does not score every positive and negative")
    return example


def load_training_jsonl(path: str | Path, corpus: Corpus | str | Path | None = None) -> list[TrainingExample]:
    """Read and check every line of a training JSONL file (ids are looked up in ``corpus``)."""
    if corpus is not None and not isinstance(corpus, dict):
        corpus = load_corpus(corpus)
    examples = [parse_example(record, f"{path}:{number}", corpus) for number, record in read_jsonl(path)]
    if not examples:
        raise DataError(f"{path}: no training examples")
    return examples


def load_beir_training(collection: BeirCollection | str | Path, split: str = "train") -> list[TrainingExample]:
    """Examples from a BEIR collection: each query of ``split`` with its relevant documents as positives.

    Unlike evaluation, training cannot use a judgement of a document the corpus lacks: that is an error.
    """
    if not isinstance(collection, BeirCollection):
        collection = load_beir(collection, splits=[split])
    corpus = {document.id: document for document in collection.documents}
    examples = []
    for query_id, judged in collection.split(split).items():
        where = collection.where_judged(split, query_id)
        missing = [doc_id for doc_id in judged if doc_id not in corpus]
        if missing:
            raise DataError(f"{where}: query {query_id!r} judges documents that are not in the corpus: {missing[:5]}")
        positives = [passage_from_document(corpus[doc_id]) for doc_id, relevance in judged.items() if relevance > 0]
        if positives:
            examples.append(TrainingExample(collection.queries[query_id], positives, query_id=query_id, where=where))
    if not examples:
        raise DataError(f"{collection.qrels_file(split)}: no query has a relevant document")
    return examples


def _passage_record(passage: Passage) -> dict[str, Any]:
    record: dict[str, Any] = {"id": passage.id, "title": passage.title, "text": passage.text}
    if passage.score is not None:
        record["score"] = passage.score
    return {key: value for key, value in record.items() if value is not None}


def save_training_jsonl(examples: Iterable[TrainingExample], path: str | Path) -> Path:
    """Write examples as self-contained JSONL (passages inline), readable by :func:`load_training_jsonl`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            record: dict[str, Any] = {"query": example.query}
            if example.query_id is not None:
                record["query_id"] = example.query_id
            record["positives"] = [_passage_record(p) for p in example.positives]
            record["negatives"] = [_passage_record(n) for n in example.negatives]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def check_examples(examples: Sequence[TrainingExample], *, n_negatives: int, needs_teacher_scores: bool) -> None:
    """What the loss and sampler will need, checked before the first step rather than found mid-epoch."""
    for example in examples:
        if n_negatives > 0 and not example.negatives:
            raise DataError(
                f"{example.where}: no negatives, but {n_negatives} per query were asked for "
                "(mine some with `mine_hard_negatives`, or train with n_negatives=0: in-batch negatives only)"
            )
        if needs_teacher_scores and not example.has_teacher_scores:
            raise DataError(f"{example.where}: the loss needs teacher scores for every positive and negative")


class TrainingDataset(Dataset):
    """Looks up what a :class:`Draw` names; which passages to use is the sampler's decision."""

    def __init__(self, examples: Sequence[TrainingExample]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, draw: Draw) -> dict[str, Any]:
        example = self.examples[draw.example]
        passages = [example.positives[draw.positive], *(example.negatives[i] for i in draw.negatives)]
        return {"query": example.query, "passages": passages}
