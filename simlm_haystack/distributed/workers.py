"""The Ray Data worker: a callable class that ``map_batches`` turns into a pool of actors, each loading the model once.

Each call takes one batch of the input (a :class:`~simlm_haystack.distributed.corpus.CorpusBlock` of a JSONL file,
or rows of a Ray dataset), makes Documents of it as :func:`~simlm_haystack.corpus.read_documents` does, and then
does what :func:`~simlm_haystack.index_documents` does with a chunk: skips the documents stored already with the
same content, embeds the others with the same ``DualEncoderDocumentEmbedder`` (and the BM25 sparse embedder, for
hybrid collections), and writes them. It returns a one-row report; or, with no store, the vectors themselves.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from haystack import Document

from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.writing import writer_identity
from simlm_haystack.distributed.corpus import CorpusBlock, read_block, rows_to_documents
from simlm_haystack.distributed.targets import WriteTarget
from simlm_haystack.errors import EncoderMismatchError, SimlmHaystackError
from simlm_haystack.stores.identity import EncoderIdentity

#: ``"blocks"``: rows are :class:`CorpusBlock` fields (a JSONL file the worker reads); ``"rows"``: rows are
#: documents (``_id``/``id``, ``title``, ``text``/``content``, other columns).
InputKind = Literal["blocks", "rows"]


@dataclass(frozen=True)
class BatchReport:
    """What one worker did with one batch (a block of lines, or a batch of dataset rows).

    :param documents: Documents in the batch.
    :param written: Documents encoded and written.
    :param skipped: Documents already stored with the same content and meta (not encoded).
    :param seconds: The time the worker spent on it (reading, checking, encoding, writing).
    :param worker_pid: The process id of the worker that did it.
    :param node: The host name of that worker's node.
    """

    documents: int
    written: int
    skipped: int
    seconds: float
    worker_pid: int
    node: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BatchReport:
        return cls(
            documents=int(row["documents"]),
            written=int(row["written"]),
            skipped=int(row["skipped"]),
            seconds=float(row["seconds"]),
            worker_pid=int(row["worker_pid"]),
            node=str(row["node"]),
        )


class DocumentWorker:
    """One worker of the pool (``dataset.map_batches(DocumentWorker, fn_constructor_kwargs=...)``).

    :param embedder: The document embedder's ``to_dict()`` (its device set to this worker's).
    :param sparse_embedder: The BM25 sparse embedder's ``to_dict()``, for a collection that keeps sparse vectors.
    :param identity: The encoder identity the driver checked the collection against
        (:class:`~simlm_haystack.stores.identity.EncoderIdentity` as a dict); the worker checks that it loaded the
        same weights (a node holding another checkpoint at the same path is an
        :class:`~simlm_haystack.errors.EncoderMismatchError` before it encodes anything). None: not checked.
    :param target: Where to write (:class:`WriteTarget`); None: return the vectors (``id``, ``embedding``).
    :param input_kind: See :data:`InputKind`.
    :param threads: Intra-op threads of the forward pass (the CPUs Ray gave the worker).
    :param skip_existing: Skip documents stored already with the same content and meta.
    """

    def __init__(
        self,
        *,
        embedder: dict[str, Any],
        sparse_embedder: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        target: WriteTarget | None,
        input_kind: InputKind,
        threads: int,
        skip_existing: bool,
    ) -> None:
        self.input_kind = input_kind
        self.skip_existing = skip_existing
        self.node = socket.gethostname()
        # An error raised here would reach the driver as text inside Ray's ActorDiedError; kept, it is raised by
        # the first call instead, and arrives as itself.
        self.setup_error: SimlmHaystackError | None = None
        try:
            self._set_up(embedder, sparse_embedder, identity, target, threads)
        except SimlmHaystackError as error:
            self.setup_error = error

    def _set_up(
        self,
        embedder: dict[str, Any],
        sparse_embedder: dict[str, Any] | None,
        identity: dict[str, Any] | None,
        target: WriteTarget | None,
        threads: int,
    ) -> None:
        import torch
        from transformers.utils import logging as transformers_logging

        # The driver loaded the same model and showed what there was to see; a bar or report per worker would
        # only break through the driver's progress bar.
        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        torch.set_num_threads(threads)
        self.embedder = DualEncoderDocumentEmbedder.from_dict(embedder)
        encoder = self.embedder.load_encoder()
        if encoder.graph is not None:
            encoder.graph.threads = threads
        self.sparse_embedder = BM25SparseDocumentEmbedder.from_dict(sparse_embedder) if sparse_embedder else None
        if identity is not None:
            self._check_encoder(EncoderIdentity.from_dict(identity, "the driver's encoder identity"))
        self.writer = target.open() if target is not None else None

    def _check_encoder(self, expected: EncoderIdentity) -> None:
        loaded = writer_identity(self.embedder, self.sparse_embedder)
        differences = expected.differences(loaded)
        if differences:
            raise EncoderMismatchError(
                f"The Ray worker on node {self.node} loaded {self.embedder.model!r} as another encoder than the driver "
                f"did (driver: {expected.describe()}; worker: {loaded.describe()}; they differ in "
                f"{'; and in '.join(differences)}). Every node must hold the same checkpoint at that path, or load "
                "it from the same hub revision; nothing was encoded."
            )

    def _documents(self, batch: Any) -> list[Document]:
        rows = batch.to_pylist()
        if self.input_kind == "blocks":
            return [document for row in rows for document in read_block(CorpusBlock(**row))]
        return rows_to_documents(rows)

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """One batch (a ``pyarrow.Table``): its report, or its vectors when there is no store."""
        if self.setup_error is not None:
            raise self.setup_error
        begun = time.perf_counter()
        documents = self._documents(batch)
        if self.writer is None:
            embedded = self.embedder.run(documents)["documents"] if documents else []
            dim = self.embedder.embedding_dim
            return {
                "id": np.array([document.id for document in embedded], dtype=object),
                "embedding": np.array([document.embedding for document in embedded], dtype=np.float32).reshape(-1, dim),
            }
        done = self.writer.already_written(documents) if self.skip_existing and documents else set()
        todo = [document for document in documents if document.id not in done]
        written = 0
        if todo:
            embedded = self.embedder.run(todo)["documents"]
            if self.sparse_embedder is not None:
                embedded = self.sparse_embedder.run(embedded)["documents"]
            written = self.writer.write(embedded)
        return {
            "documents": np.array([len(documents)]),
            "written": np.array([written]),
            "skipped": np.array([len(documents) - len(todo)]),
            "seconds": np.array([time.perf_counter() - begun]),
            "worker_pid": np.array([os.getpid()]),
            "node": np.array([self.node], dtype=object),
        }
