"""The evaluation's index: a fingerprint of what made the stored vectors, and whether the collection can be reused.

Every document written by :func:`ensure_indexed` carries a fingerprint of what made its vector (model
weights, tokenizer, recipe, precision, how the embedder reads titles and meta, and the whole corpus) in
``meta["simlm_haystack_fingerprint"]``. The collection is reused when it holds exactly the corpus and every
document carries the current fingerprint. That check needs only Haystack's public document-store API,
works on embedded and server Qdrant alike, and an interrupted indexing run (fewer tagged documents than
the corpus) is never mistaken for a finished one.

The model enters that fingerprint through the same cached weights fingerprint as the encoder identity every
collection keeps (:mod:`simlm_haystack.stores.identity`, written by ``index_documents``, and added here when a
collection indexed before collections kept one is reused). The identity does not replace the per-document tag:
it says which model and recipe filled a collection, not which corpus, precision or title and meta settings.

The corpus itself goes through :func:`~simlm_haystack.indexing.index_documents` (the document embedder
and Haystack's ``DocumentWriter``), so the stored vectors are those of the indexing a user runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from haystack import Document
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.evaluation.inference import eval_mode
from simlm_haystack.indexing import index_documents
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores.fusion import Retrieval
from simlm_haystack.stores.identity import EncoderIdentity
from simlm_haystack.stores.support import store_support

logger = logging.getLogger(__name__)

#: The meta field that records what made a stored vector (see the module docstring).
FINGERPRINT_FIELD = "simlm_haystack_fingerprint"


@dataclass
class IndexReport:
    """What :func:`ensure_indexed` did: reused the collection, or encoded and wrote the corpus."""

    fingerprint: str
    reused: bool
    documents: int
    written: int = 0
    encode_seconds: float = 0.0
    write_seconds: float = 0.0


def index_fingerprint(
    document_embedder: DualEncoderDocumentEmbedder, documents: Sequence[Document], bm25: BM25Settings | None = None
) -> str:
    """A digest of everything that decides the stored vectors and documents.

    The model enters through :meth:`~simlm_haystack.encoding.DualEncoder.fingerprint` (its weights and
    tokenizer, not its name: a trainer that updates a checkpoint in place or in memory gets a new
    fingerprint, so the next evaluation re-encodes instead of reusing stale vectors); then the
    embedder's settings that change a vector, the BM25 settings of the sparse vectors (if any), and every
    document's id, content and meta.
    """
    encoder = document_embedder.load_encoder()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(encoder.fingerprint().encode())
    settings = {
        "recipe": encoder.recipe.to_dict(),
        "precision": encoder.precision,
        "title_field": document_embedder.title_field,
        "meta_fields_to_embed": document_embedder.meta_fields_to_embed,
        "embedding_separator": document_embedder.embedding_separator,
        **({"bm25": bm25.to_dict()} if bm25 is not None else {}),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for document in documents:
        digest.update(json.dumps([document.id, document.content, document.meta], sort_keys=True, default=str).encode())
    return digest.hexdigest()


class _TimedEmbedder:
    """Forwards ``run`` to the document embedder and adds up the time spent in it.

    ``index_documents`` interleaves encoding and writing chunk by chunk; this splits its time
    between the two without a second indexing path.
    """

    def __init__(self, embedder: DualEncoderDocumentEmbedder) -> None:
        self.embedder = embedder
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        # The embedder's model, encoder, warm_up and load_encoder, for the encoder check of index_documents.
        return getattr(self.embedder, name)

    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        start = time.perf_counter()
        try:
            return self.embedder.run(documents)
        finally:
            self.seconds += time.perf_counter() - start


def ensure_indexed(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    documents: Sequence[Document],
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | None = None,
    reindex: bool = False,
    chunk_size: int = 1024,
    progress_bar: bool = True,
) -> IndexReport:
    """Make ``document_store`` hold exactly ``documents``, encoded by ``document_embedder``.

    Reuses the collection when it holds the same corpus encoded the same way (see the module
    docstring); otherwise, or with ``reindex=True``, deletes what the collection holds and encodes
    and writes the corpus through :func:`~simlm_haystack.indexing.index_documents`. An interrupted
    earlier run of the same fingerprint is completed, not restarted.

    With ``retrieval="sparse"`` or ``"hybrid"`` the documents get BM25 sparse vectors (``bm25``) too.

    The collection belongs to the evaluation: other documents in it are deleted.
    """
    sparse = (bm25 or BM25Settings()) if retrieval != "dense" else None
    with eval_mode(document_embedder):
        fingerprint = index_fingerprint(document_embedder, documents, sparse)
        stored = document_store.count_documents()
        tagged = (
            document_store.count_documents_by_filter(
                {"field": f"meta.{FINGERPRINT_FIELD}", "operator": "==", "value": fingerprint}
            )
            if stored
            else 0
        )
        if not reindex and tagged == stored == len(documents):
            collection = store_support(document_store).collection_identity()
            if collection.identity() is None:  # indexed before collections kept their encoder's identity
                # This encoder filled it: every document carries its fingerprint.
                identity = EncoderIdentity.of(
                    document_embedder.model,
                    document_embedder.load_encoder(),
                    sparse=sparse.to_dict() if sparse is not None else None,
                )
                collection.write(identity.to_dict())
            logger.info(
                "Collection %r already holds this corpus with fingerprint %s", document_store.index, fingerprint
            )
            return IndexReport(fingerprint=fingerprint, reused=True, documents=len(documents))
        if stored and (reindex or tagged < stored):
            logger.warning(
                "Deleting the %d documents of collection %r to index %d documents again",
                stored,
                document_store.index,
                len(documents),
            )
            document_store.delete_all_documents()
        timed = _TimedEmbedder(document_embedder)
        start = time.perf_counter()
        written = index_documents(
            # A list: BM25's avg_len="corpus" is measured on the whole corpus.
            [replace(document, meta={**document.meta, FINGERPRINT_FIELD: fingerprint}) for document in documents],
            timed,  # type: ignore[arg-type]  # duck-typed: index_documents only calls run()
            document_store,
            retrieval=retrieval,
            bm25=sparse,
            chunk_size=chunk_size,
            total=len(documents),
            progress_bar=progress_bar,
        )
        total_seconds = time.perf_counter() - start
    return IndexReport(
        fingerprint=fingerprint,
        reused=False,
        documents=len(documents),
        written=written,
        encode_seconds=timed.seconds,
        write_seconds=total_seconds - timed.seconds,
    )
