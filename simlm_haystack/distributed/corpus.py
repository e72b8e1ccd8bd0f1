"""A JSONL corpus cut into blocks of lines that Ray workers read themselves, and rows of a Ray dataset as Documents.

The driver reads the file once, as bytes, to find where each block of ``documents_per_block`` non-empty lines
starts and ends; a block is three numbers and a path, so millions of passages cost the driver a few thousand
small rows, and each worker reads its own lines from the file (which must be at the same path on every node: a
local cluster, or a shared file system). Keeping the line numbers lets a malformed line be reported as
:func:`simlm_haystack.corpus.read_documents` reports it, by file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document

from simlm_haystack.corpus import ID_FIELDS, record_to_document
from simlm_haystack.errors import DataError


@dataclass(frozen=True)
class CorpusBlock:
    """Lines ``first_line``... of a JSONL file: the bytes ``[start, end)``, whole lines only."""

    path: str
    start: int
    end: int
    first_line: int


def split_corpus(path: str | Path, documents_per_block: int) -> tuple[list[CorpusBlock], int]:
    """The file cut at line ends into blocks of up to ``documents_per_block`` non-empty lines, and the number of
    non-empty lines (documents) in it. One pass over the file; nothing is parsed."""
    if documents_per_block < 1:
        raise ValueError(f"documents_per_block must be at least 1, not {documents_per_block}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    where = str(path.resolve())  # workers may run in another directory
    blocks: list[CorpusBlock] = []
    documents = in_block = offset = start = first_line = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                if in_block == 0:
                    start, first_line = offset, number
                in_block += 1
                documents += 1
            offset += len(line)
            if in_block == documents_per_block:
                blocks.append(CorpusBlock(where, start, offset, first_line))
                in_block = 0
    if in_block:
        blocks.append(CorpusBlock(where, start, offset, first_line))
    return blocks, documents


def _record(line: str, where: str) -> dict[str, Any]:
    # As simlm_haystack.corpus.read_jsonl parses a line, with the same messages.
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def read_block(block: CorpusBlock) -> list[Document]:
    """The block's Documents, as :func:`simlm_haystack.corpus.read_documents` reads those lines: a malformed line
    is a :class:`~simlm_haystack.errors.DataError` naming the file and the line."""
    try:
        with open(block.path, "rb") as file:
            file.seek(block.start)
            data = file.read(block.end - block.start)
    except OSError as error:
        raise DataError(f"{block.path}: cannot be read on this Ray node ({error.strerror})") from None
    documents = []
    for number, raw in enumerate(data.split(b"\n"), start=block.first_line):
        where = f"{block.path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{where}: not UTF-8 ({error.reason} at byte {error.start} of the line)") from None
        if line.strip():
            documents.append(record_to_document(_record(line, where), where=where))
    return documents


def rows_to_documents(rows: list[dict[str, Any]]) -> list[Document]:
    """Rows of a Ray dataset (``"_id"``/``"id"``, ``"title"``, ``"text"``/``"content"``, any other column) as
    :func:`~simlm_haystack.corpus.record_to_document` reads a JSONL record; a bad row is a
    :class:`~simlm_haystack.errors.DataError` naming its id."""
    documents = []
    for row in rows:
        id_field = next((name for name in ID_FIELDS if row.get(name) is not None), None)
        where = f"the dataset row with {id_field}={row[id_field]!r}" if id_field else "a dataset row without an id"
        documents.append(record_to_document(row, where=where))
    return documents
