"""Reading documents from JSONL (plain or BEIR ``corpus.jsonl``), with errors that name the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from haystack import Document

from simlm_haystack.errors import DataError

ID_FIELDS = ("_id", "id")
TEXT_FIELDS = ("text", "content")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-empty line; a malformed line is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def record_to_document(record: dict[str, Any], *, where: str = "") -> Document:
    """``{"_id"|"id", "title"?, "text"|"content", ...}`` -> ``Document(id, content, meta)``.

    The id is kept as given (stable across runs, so re-indexing overwrites instead of duplicating);
    the title and every other field go to ``meta``.
    """
    id_field = next((name for name in ID_FIELDS if name in record), None)
    text_field = next((name for name in TEXT_FIELDS if name in record), None)
    if text_field is None:
        raise DataError(f"{where}: no 'text' or 'content' field (fields: {sorted(record)})")
    text = record[text_field]
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: '{text_field}' must be a string, got {type(text).__name__}")
    meta = {key: value for key, value in record.items() if key not in (id_field, text_field)}
    if id_field is None:
        return Document(content=text, meta=meta)
    if not isinstance(record[id_field], str | int) or record[id_field] == "":
        raise DataError(f"{where}: '{id_field}' must be a non-empty string or integer")
    return Document(id=str(record[id_field]), content=text, meta=meta)


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream Documents from a JSONL file, one per line."""
    for number, record in read_jsonl(path):
        yield record_to_document(record, where=f"{path}:{number}")


def count_lines(path: str | Path) -> int:
    """Non-empty lines, for progress bars (a cheap pass over the file)."""
    with Path(path).open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())
