"""Loading a BEIR collection (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``); errors name the line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from haystack import Document

from simlm_haystack.corpus import ID_FIELDS, read_jsonl, record_to_document
from simlm_haystack.errors import DataError

logger = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")

#: Relevance judgements: query id -> {document id: relevance}; the shape ir-measures reads.
Qrels = dict[str, dict[str, int]]


def qrels_file(folder: Path, split: str) -> Path:
    """Where BEIR keeps a split's judgements: ``<folder>/qrels/<split>.tsv``."""
    return folder / "qrels" / f"{split}.tsv"


@dataclass(frozen=True)
class BeirCollection:
    """A BEIR collection held in memory.

    :param path: The collection's folder.
    :param documents: The corpus, in file order; ``Document.id`` is the BEIR ``_id``, the title is
        in ``meta["title"]``.
    :param queries: Query id -> query text, every query of ``queries.jsonl``.
    :param qrels: Split name -> the split's judgements. Judgements of documents missing from the
        corpus are kept, as BEIR keeps them: they count as relevant documents that cannot be found.
    :param missing_documents: Split name -> how many judgements name a document missing from the corpus.
    :param first_judgement_lines: Split name -> query id -> the line of the query's first judgement in
        ``qrels/<split>.tsv``, so that an error found after loading names the line (see :meth:`where_judged`).
    """

    path: Path
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, Qrels]
    missing_documents: dict[str, int] = field(default_factory=dict)
    first_judgement_lines: dict[str, dict[str, int]] = field(default_factory=dict)

    def split(self, name: str) -> Qrels:
        """The judgements of one split; an error naming the loaded splits if it was not loaded."""
        try:
            return self.qrels[name]
        except KeyError:
            raise DataError(
                f"{self.path}: split {name!r} was not loaded (loaded: {', '.join(sorted(self.qrels)) or 'none'})"
            ) from None

    def qrels_file(self, split: str) -> Path:
        """The judgements file of a split: ``<path>/qrels/<split>.tsv``."""
        return qrels_file(self.path, split)

    def where_judged(self, split: str, query_id: str) -> str:
        """``"<qrels file>:<line>"`` of the query's first judgement in the split (``?`` for an unknown line)."""
        return f"{self.qrels_file(split)}:{self.first_judgement_lines.get(split, {}).get(query_id, '?')}"

    def judged_queries(self, split: str) -> dict[str, str]:
        """Query id -> text for the queries the split judges, in qrels order."""
        return {query_id: self.queries[query_id] for query_id in self.split(split)}


def _require_id(record: dict, where: str) -> None:
    # Without an id, record_to_document would hash the content; BEIR qrels could never name such a document.
    if not any(name in record for name in ID_FIELDS):
        raise DataError(f"{where}: no '_id' field (fields: {sorted(record)})")


def read_corpus(path: str | Path) -> list[Document]:
    """The documents of a BEIR ``corpus.jsonl``; a malformed line or a repeated id is a :class:`DataError`."""
    documents: list[Document] = []
    first_line: dict[str, int] = {}
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        _require_id(record, where)
        document = record_to_document(record, where=where)
        if document.id in first_line:
            raise DataError(f"{where}: duplicate document id {document.id!r} (first on line {first_line[document.id]})")
        first_line[document.id] = number
        documents.append(document)
    return documents


def read_queries(path: str | Path) -> dict[str, str]:
    """Query id -> text from a BEIR ``queries.jsonl``; a malformed line or a repeated id is a :class:`DataError`."""
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        _require_id(record, where)
        query = record_to_document(record, where=where)
        if not query.content:
            raise DataError(f"{where}: query {query.id!r} has no text")
        if query.id in first_line:
            raise DataError(f"{where}: duplicate query id {query.id!r} (first on line {first_line[query.id]})")
        first_line[query.id] = number
        queries[query.id] = query.content
    return queries


def read_qrels(path: str | Path) -> tuple[Qrels, dict[str, int]]:
    """Judgements from a BEIR ``qrels/<split>.tsv`` (header ``query-id corpus-id score``).

    :returns: The judgements, and the line of each query's first judgement (for error messages).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    qrels: Qrels = {}
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        header_seen = False
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            columns = line.rstrip("\r\n").split("\t")
            if not header_seen:
                if tuple(column.strip() for column in columns) != QRELS_HEADER:
                    raise DataError(f"{path}:{number}: expected the header {'<TAB>'.join(QRELS_HEADER)!r}")
                header_seen = True
                continue
            if len(columns) != 3:
                raise DataError(f"{path}:{number}: expected 3 tab-separated columns, got {len(columns)}")
            query_id, document_id, score = (column.strip() for column in columns)
            if not query_id or not document_id:
                raise DataError(f"{path}:{number}: empty query-id or corpus-id")
            try:
                relevance = int(score)
            except ValueError:
                raise DataError(f"{path}:{number}: score must be an integer, got {score!r}") from None
            judged = qrels.setdefault(query_id, {})
            if document_id in judged:
                raise DataError(f"{path}:{number}: query {query_id!r} judges document {document_id!r} twice")
            judged[document_id] = relevance
            first_line.setdefault(query_id, number)
    if not header_seen:
        raise DataError(f"{path}: empty (expected the header {'<TAB>'.join(QRELS_HEADER)!r} and judgements)")
    return qrels, first_line


def load_beir(path: str | Path, splits: Sequence[str] = ("test",)) -> BeirCollection:
    """Load a BEIR collection folder and the judgements of ``splits``.

    Every problem that would make the numbers wrong is a :class:`DataError` naming the file and
    line: a missing file, a malformed line, a repeated document or query id, a judgement of a query
    that ``queries.jsonl`` lacks. A judgement of a document the corpus lacks is counted, logged as a
    warning and kept (it is a relevant document no system can find), as in BEIR.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such collection folder (expected corpus.jsonl, queries.jsonl, qrels/)")
    qrels_paths = {split: qrels_file(path, split) for split in splits}
    for required in (path / "corpus.jsonl", path / "queries.jsonl", *qrels_paths.values()):
        if not required.is_file():
            raise DataError(f"{required}: no such file")
    documents = read_corpus(path / "corpus.jsonl")
    queries = read_queries(path / "queries.jsonl")
    document_ids = {document.id for document in documents}
    all_qrels: dict[str, Qrels] = {}
    missing_documents: dict[str, int] = {}
    first_judgement_lines: dict[str, dict[str, int]] = {}
    for split, qrels_path in qrels_paths.items():
        qrels, first_line = read_qrels(qrels_path)
        for query_id, line in first_line.items():
            if query_id not in queries:
                raise DataError(f"{qrels_path}:{line}: query {query_id!r} is not in {path / 'queries.jsonl'}")
        missing = sum(document_id not in document_ids for judged in qrels.values() for document_id in judged)
        if missing:
            logger.warning(
                "%s: %d judgements name documents that are not in the corpus; they count as relevant "
                "documents that cannot be retrieved",
                qrels_path,
                missing,
            )
        all_qrels[split] = qrels
        missing_documents[split] = missing
        first_judgement_lines[split] = first_line
    return BeirCollection(path, documents, queries, all_qrels, missing_documents, first_judgement_lines)
