"""Index a folder of .txt / .md files, or a JSONL file, into Qdrant with the indexing pipeline.

    python examples/index_folder.py DOCS_DIR_OR_JSONL [--model M] [--qdrant-path DIR | --qdrant-url URL]

Each file becomes one Document whose title is its file name; split long files first (e.g. with
Haystack's DocumentSplitter) since SimLM reads 144 tokens of a passage. For JSONL the fields are
``_id``/``id``, ``title`` and ``text``/``content`` (a BEIR ``corpus.jsonl`` works as it is).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from haystack import Document

from simlm_haystack import DualEncoderDocumentEmbedder, build_indexing_pipeline, qdrant_document_store
from simlm_haystack.corpus import read_documents


def documents_from(source: Path) -> Iterator[Document]:
    if source.is_file():
        yield from read_documents(source)
        return
    for path in sorted(source.rglob("*")):
        if path.suffix in {".txt", ".md"} and path.is_file():
            # The relative path is a stable id: indexing the folder again overwrites, never duplicates.
            relative = str(path.relative_to(source))
            yield Document(id=relative, content=path.read_text(encoding="utf-8"), meta={"title": path.stem})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--index", default="Document")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--qdrant-path", default="qdrant_data")
    where.add_argument("--qdrant-url")
    args = parser.parse_args()

    embedder = DualEncoderDocumentEmbedder(model=args.model)
    location = {"url": args.qdrant_url} if args.qdrant_url else {"path": args.qdrant_path}
    store = qdrant_document_store(embedder, index=args.index, **location)
    pipeline = build_indexing_pipeline(embedder, store)
    result = pipeline.run({"embedder": {"documents": list(documents_from(args.source))}})
    print(f"Wrote {result['writer']['documents_written']} documents; {store.count_documents()} in {args.index!r}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
