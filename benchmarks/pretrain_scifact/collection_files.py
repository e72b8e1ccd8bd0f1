"""The files a run reads in place of the collection's own: a small slice of it (a smoke test), and its corpus
without titles (a collection that has none)."""

from __future__ import annotations

import json
from pathlib import Path


def write_slice(data: Path, output: Path, size: int) -> Path:
    """The first ``size`` documents, and every query whose judged documents are all among them."""
    documents = (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:size]
    kept = {json.loads(line)["_id"] for line in documents}
    output.mkdir(parents=True, exist_ok=True)
    (output / "corpus.jsonl").write_text("\n".join(documents) + "\n", encoding="utf-8")
    (output / "qrels").mkdir(exist_ok=True)
    queries: set[str] = set()
    for split in ("train", "test"):
        header, *rows = (data / "qrels" / f"{split}.tsv").read_text().splitlines()
        judged: dict[str, set[str]] = {}
        for row in rows:
            query, document, _ = row.split("\t")
            judged.setdefault(query, set()).add(document)
        complete = {query for query, documents in judged.items() if documents <= kept}
        keep = [row for row in rows if row.split("\t")[0] in complete]
        (output / "qrels" / f"{split}.tsv").write_text("\n".join([header, *keep]) + "\n")
        queries |= complete
    lines = [line for line in (data / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in queries]
    (output / "queries.jsonl").write_text("\n".join(lines) + "\n")
    return output


def corpus_without_titles(corpus: Path, output: Path) -> Path:
    """The corpus as a collection without titles would be: every line without its ``title``."""
    lines = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            record.pop("title", None)
            lines.append(json.dumps(record, ensure_ascii=False))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output
