"""The set-up every write path shares, written once: :func:`~simlm_haystack.index_documents`,
:func:`~simlm_haystack.distributed.index_with_ray` and
:func:`~simlm_haystack.components.pipelines.build_indexing_pipeline` each start with :func:`write_setup`.

Before anything is encoded, a write checks the kind of search asked for, finds the store's support adapter
(:mod:`simlm_haystack.stores.support`), builds the BM25 embedder that reads documents as the dense one does (for
sparse and hybrid search), and keeps the encoder identity with an empty collection or checks it against the one
kept there (:mod:`simlm_haystack.stores.identity`). A resumed write skips what is stored already
(:func:`already_written`). After the last write, the store finishes its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from haystack import Document

from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.errors import SettingsError
from simlm_haystack.sparse import FIXED_AVG_LEN, BM25Settings
from simlm_haystack.stores.fusion import Retrieval, check_retrieval
from simlm_haystack.stores.identity import CollectionCheck, CollectionIdentity, EncoderIdentity
from simlm_haystack.stores.support import StoreSupport, store_support

logger = logging.getLogger(__name__)


def already_written(store: Any, documents: list[Document]) -> set[str]:
    """Ids of ``documents`` whose content and meta are in ``store`` already (their vectors need no work): what a
    resumed write skips."""
    stored = {document.id: document for document in store.get_documents_by_id([d.id for d in documents])}
    return {
        document.id
        for document in documents
        if document.id in stored
        and stored[document.id].content == document.content
        and stored[document.id].meta == document.meta
    }


def sparse_document_embedder(
    document_embedder: DualEncoderDocumentEmbedder, bm25: BM25Settings | dict[str, Any] | None
) -> BM25SparseDocumentEmbedder:
    """The BM25 document embedder that reads a document's title and meta as ``document_embedder`` does."""
    return BM25SparseDocumentEmbedder(
        **BM25Settings.of(bm25).to_dict(),
        title_field=document_embedder.title_field,
        meta_fields_to_embed=document_embedder.meta_fields_to_embed,
        embedding_separator=document_embedder.embedding_separator,
    )


def writer_identity(
    document_embedder: DualEncoderDocumentEmbedder, sparse_embedder: BM25SparseDocumentEmbedder | None
) -> EncoderIdentity:
    """The identity a writer keeps with (or checks against) a collection: its dense encoder, and its BM25
    settings when it writes sparse vectors too (loads the model)."""
    return EncoderIdentity.of(
        document_embedder.model,
        document_embedder.load_encoder(),
        sparse=sparse_embedder.settings.to_dict() if sparse_embedder is not None else None,
    )


@dataclass
class WriteSetup:
    """What a write into one store with one embedder needs before it encodes (made by :func:`write_setup`).

    :param document_embedder: The dense embedder.
    :param support: The store's answers (its encoder identity, what it does after a bulk write).
    :param sparse_embedder: The BM25 embedder, for ``retrieval="sparse"`` or ``"hybrid"``; None for dense only.
    :param allow_other_encoder: Write into a collection filled by another encoder (a warning, not an error).
    """

    document_embedder: DualEncoderDocumentEmbedder
    support: StoreSupport
    sparse_embedder: BM25SparseDocumentEmbedder | None
    allow_other_encoder: bool

    def identity(self) -> EncoderIdentity:
        """The encoder identity this write keeps with the collection (loads the model; with ``avg_len="corpus"``
        not yet measured, :meth:`fit_sparse` with no documents first)."""
        self.fit_sparse(None)
        return writer_identity(self.document_embedder, self.sparse_embedder)

    def collection_check(self) -> CollectionCheck:
        """The check of the collection against :meth:`identity`; it opens the collection only when it runs."""
        collection: Callable[[], CollectionIdentity] = self.support.collection_identity
        return CollectionCheck(collection, writes=True, allow_other_encoder=self.allow_other_encoder)

    def fit_sparse(self, documents: Sequence[Document] | None) -> None:
        """With ``avg_len="corpus"``: take the value measured on the collection when its record keeps one,
        else measure ``documents`` (the first a write sees) for an empty collection, or use the old default
        (256) for one filled before collections kept a record. Nothing to do for a fixed ``avg_len``; a record
        with a fixed one is left to the identity check, which refuses it naming both.

        :raises SettingsError: The collection is empty and no documents were given to measure.
        """
        if self.sparse_embedder is None or not self.sparse_embedder.settings.measures_corpus:
            return  # nothing to measure, or measured already
        settings = self.sparse_embedder.settings
        collection = self.support.collection_identity()
        recorded = collection.identity()
        if recorded is not None and recorded.sparse is not None:
            kept = BM25Settings.from_dict(recorded.sparse)
            if kept.avg_len_documents is not None:
                self.sparse_embedder.use_settings(
                    replace(settings, avg_len=kept.avg_len, avg_len_documents=kept.avg_len_documents)
                )
            return
        if recorded is None and collection.count() > 0:  # written before records: fastembed's 256 then
            logger.warning(
                "%s keeps no BM25 record; its sparse vectors were made with avg_len=256", collection.description
            )
            self.sparse_embedder.use_settings(replace(settings, avg_len=FIXED_AVG_LEN))
            return
        if not documents:
            raise SettingsError(
                "BM25 avg_len='corpus' is measured on the first documents written into an empty collection, and "
                "this write sees none before it starts (an indexing pipeline): index with index_documents or the "
                "CLI, or pass bm25=BM25Settings(avg_len='corpus').measured(texts, titles)"
            )
        self.sparse_embedder.measure_avg_len(list(documents))

    def check_collection(self) -> EncoderIdentity:
        """Load the embedder's model, then keep its identity with an empty collection or check it against the
        one kept there; returns the identity.

        :raises EncoderMismatchError: Another encoder filled the collection (unless ``allow_other_encoder``).
        """
        self.document_embedder.warm_up()
        identity = self.identity()
        self.collection_check().run(identity)
        return identity

    def finish(self) -> None:
        """After the last write: the store finishes a bulk write its own way (Qdrant Edge builds its HNSW graph)."""
        self.support.finish_writing()


def write_setup(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: Any,
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    allow_other_encoder: bool = False,
) -> WriteSetup:
    """The set-up of a write of ``document_embedder``'s vectors (and BM25 ones, unless ``retrieval="dense"``) into
    ``document_store``; nothing is loaded or opened yet.

    :raises SettingsError: ``retrieval`` is none of ``"dense"``, ``"sparse"``, ``"hybrid"``.
    :raises TypeError: ``document_store`` is not a store this package writes to.
    """
    check_retrieval(retrieval)
    support = store_support(document_store)
    sparse_embedder = None if retrieval == "dense" else sparse_document_embedder(document_embedder, bm25)
    return WriteSetup(document_embedder, support, sparse_embedder, allow_other_encoder)
