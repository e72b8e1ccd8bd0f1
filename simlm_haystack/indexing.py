"""Resumable, bounded-memory indexing: documents in, embedded and written chunk by chunk."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

from haystack import Document
from haystack.components.writers import DocumentWriter
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.types import DuplicatePolicy
from tqdm.auto import tqdm

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.writing import already_written, write_setup
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.errors import SimlmHaystackError, StoreError
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import RETRIEVAL_DOC, Retrieval
from simlm_haystack.stores.qdrant import is_transient, transient_retrying

logger = logging.getLogger(__name__)


def document_chunks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    """Lists of up to ``size`` documents, read lazily, so that a corpus never sits in memory whole."""
    iterator = iter(documents)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _write_with_retries(
    writer: DocumentWriter, documents: list[Document], *, retries: int, backoff_seconds: float
) -> int:
    """Write once, retrying only transient store errors, after ``backoff_seconds`` x 1, 2, 4, ..."""
    retrying = transient_retrying(retries=retries, backoff_seconds=backoff_seconds)
    return retrying(lambda: writer.run(documents)["documents_written"])


@docstring_with(retrieval_settings=RETRIEVAL_DOC)
def index_documents(
    documents: Iterable[Document],
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    chunk_size: int = 1024,
    total: int | None = None,
    progress_bar: bool = True,
    skip_existing: bool = True,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    allow_other_encoder: bool = False,
) -> int:
    """Encode and write documents chunk by chunk, in bounded memory; resumable.

    The same set-up (:func:`~simlm_haystack.components.writing.write_setup`) and components as
    :func:`~simlm_haystack.components.pipelines.build_indexing_pipeline`
    (with ``retrieval="sparse"`` or ``"hybrid"``, BM25 sparse vectors are written beside the dense ones), run
    directly so that the caller's embedder (a component can belong to only one Pipeline) can be used again
    afterwards. Writes
    overwrite by id, so a document is never stored twice. With ``skip_existing``, documents already
    stored with the same content and meta are not encoded again: re-running after an interruption
    does only the missing work. Transient store errors are retried with exponential backoff; a
    write that still fails raises :class:`StoreError` saying how much was written. After the last chunk
    the store finishes the bulk write its own way (Qdrant Edge builds its HNSW index then).

    Before anything is encoded, the embedder's identity is kept with an empty collection or checked
    against the one kept there (:mod:`simlm_haystack.stores.identity`): a collection filled by another
    model, recipe or sparse side is an :class:`~simlm_haystack.EncoderMismatchError` unless
    ``allow_other_encoder``.

    {retrieval_settings}
    :returns: The number of documents written by this call (skipped ones not counted).
    """
    setup = write_setup(
        document_embedder, document_store, retrieval=retrieval, bm25=bm25, allow_other_encoder=allow_other_encoder
    )
    sparse_embedder = setup.sparse_embedder
    chunks = document_chunks(documents, chunk_size)
    if sparse_embedder is not None and sparse_embedder.settings.measures_corpus:
        # BM25's avg_len="corpus": measured on the whole corpus when it is a list, else on its first chunk.
        first = [] if isinstance(documents, Sequence) else next(chunks, [])
        setup.fit_sparse(documents if isinstance(documents, Sequence) else first)
        chunks = chain([first], chunks) if first else chunks
    setup.check_collection()
    writer = DocumentWriter(document_store=document_store, policy=DuplicatePolicy.OVERWRITE)
    written = skipped = 0
    with tqdm(total=total, disable=not progress_bar, desc="Indexing", unit="doc") as progress:
        for chunk in chunks:
            try:
                done = already_written(document_store, chunk) if skip_existing else set()
                todo = [document for document in chunk if document.id not in done]
                if todo:
                    embedded = document_embedder.run(todo)["documents"]
                    if sparse_embedder is not None:
                        embedded = sparse_embedder.run(embedded)["documents"]
                    written += _write_with_retries(writer, embedded, retries=retries, backoff_seconds=backoff_seconds)
            except SimlmHaystackError:
                raise  # already says what went wrong (e.g. a model that cannot be loaded)
            except Exception as error:
                if not (is_transient(error) or isinstance(error, OSError | DocumentStoreError)):
                    raise
                raise StoreError(
                    f"Writing to Qdrant collection {document_store.index!r} failed after {written} documents "
                    f"were written in this run ({type(error).__name__}: {error}). Everything written is kept: "
                    "run the same command again to resume; documents already stored are skipped."
                ) from error
            skipped += len(chunk) - len(todo)
            progress.update(len(chunk))
            progress.set_postfix(written=written, skipped=skipped, refresh=False)
    if skipped:
        logger.info("Skipped %d documents already in collection %r", skipped, document_store.index)
    setup.finish()
    return written
