"""Where the benchmarks find their BEIR collection, and the parts of it they read.

Every benchmark that reads SciFact takes the collection folder as ``--data`` (``scifact_eval``: as its
positional argument; :func:`benchmarks.common.add_data_argument`), defaulting to ``../shared/data/scifact``
beside the repository root. The readers here are the package's own (:func:`simlm_haystack.corpus.read_documents`,
:mod:`simlm_haystack.evaluation.data`), so a benchmark reads a collection as the library does.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from haystack import Document

from benchmarks.common import DEFAULT_DATA
from simlm_haystack.corpus import read_documents
from simlm_haystack.evaluation.data import qrels_file, read_qrels, read_queries


def corpus_file(data: Path = DEFAULT_DATA) -> Path:
    """The collection's ``corpus.jsonl``."""
    return Path(data) / "corpus.jsonl"


def iter_corpus(data: Path = DEFAULT_DATA) -> Iterator[Document]:
    """The corpus as Documents, streamed in file order (``id`` = BEIR ``_id``, the title in ``meta["title"]``)."""
    return read_documents(corpus_file(data))


def corpus_documents(data: Path = DEFAULT_DATA, limit: int | None = None) -> list[Document]:
    """The first ``limit`` corpus documents (all of them for ``None``), in file order."""
    return list(islice(iter_corpus(data), limit))


def all_queries(data: Path = DEFAULT_DATA) -> list[str]:
    """Every query text of ``queries.jsonl``, in file order (judged or not)."""
    return list(read_queries(Path(data) / "queries.jsonl").values())


def test_queries(data: Path = DEFAULT_DATA) -> list[str]:
    """The texts of the queries the test split judges, in the order of their first judgement in ``qrels/test.tsv``."""
    queries = read_queries(Path(data) / "queries.jsonl")
    qrels, _ = read_qrels(qrels_file(Path(data), "test"))
    return [queries[query_id] for query_id in qrels]
