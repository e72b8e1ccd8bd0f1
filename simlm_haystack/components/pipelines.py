"""The indexing and query pipelines: our embedders wired to a document store's writer and retriever.

Each store names its own retriever (``store_support(store).embedding_retriever()``, see
:mod:`simlm_haystack.stores.support`), so the pipelines, the drop-in retriever and the evaluation work
with Qdrant (server, cluster or ``qdrant-client``'s local mode) and with Qdrant Edge alike. Writing needs
no choice: Haystack's ``DocumentWriter`` writes to any document store.

Before anything is encoded, each checks the collection's encoder identity against its embedder: the
indexing pipeline is an :class:`EncoderCheckedPipeline` (its warm-up loads the embedder, then checks);
the query pipeline's one component, the drop-in retriever, checks in its own warm-up.
"""

from __future__ import annotations

from typing import Any

from haystack import Pipeline
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.retriever import DualEncoderRetriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.settings import HoldsEncoderSettings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.support import store_support


class EncoderCheckedPipeline(Pipeline):
    """A Haystack ``Pipeline`` that, when it warms up, checks each collection it writes to or searches
    against the encoder of its embedder (see :mod:`simlm_haystack.stores.identity`).

    The checks are not serialised: a pipeline loaded back from YAML is a plain ``Pipeline``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # Pipeline's own arguments, as Pipeline.from_dict passes them
        self._collection_checks: list[tuple[HoldsEncoderSettings, CollectionCheck]] = []

    def add_collection_check(self, embedder: HoldsEncoderSettings, check: CollectionCheck) -> None:
        """Run ``check`` for ``embedder``'s encoder at every warm-up until it is settled."""
        self._collection_checks.append((embedder, check))

    def warm_up(self) -> None:
        """Warm the components up (the embedder loads its model), then check the collections."""
        super().warm_up()
        for embedder, check in self._collection_checks:
            check.run(lambda embedder=embedder: EncoderIdentity.of(embedder.model, embedder.load_encoder()))


def embedding_retriever(
    document_store: EmbeddingDocumentStore, *, top_k: int = 10, filters: dict[str, Any] | None = None
) -> Any:
    """The store's own dense retriever: ``EdgeEmbeddingRetriever`` for Qdrant Edge, ``QdrantEmbeddingRetriever``
    for a ``QdrantDocumentStore``."""
    return store_support(document_store).embedding_retriever(top_k=top_k, filters=filters)


def build_indexing_pipeline(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    policy: DuplicatePolicy = DuplicatePolicy.OVERWRITE,
    allow_other_encoder: bool = False,
) -> EncoderCheckedPipeline:
    """``embedder -> DocumentWriter(document_store)``; run it with ``{"embedder": {"documents": docs}}``.

    When it warms up, before it encodes anything, the embedder's identity is kept with an empty collection,
    or checked against the one kept there (:mod:`simlm_haystack.stores.identity`): another model or recipe
    is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.
    """
    support = store_support(document_store)
    pipeline = EncoderCheckedPipeline()
    pipeline.add_component("embedder", document_embedder)
    pipeline.add_component("writer", DocumentWriter(document_store=document_store, policy=policy))
    pipeline.connect("embedder.documents", "writer.documents")
    pipeline.add_collection_check(
        document_embedder,
        CollectionCheck(support.collection_identity, writes=True, allow_other_encoder=allow_other_encoder),
    )
    return pipeline


def build_query_pipeline(
    text_embedder: DualEncoderTextEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    top_k: int = 10,
    filters: dict[str, Any] | None = None,
    allow_other_encoder: bool = False,
) -> Pipeline:
    """A pipeline of one component, ``"retriever"``: a :class:`~simlm_haystack.DualEncoderRetriever` around
    ``text_embedder`` and the store's own retriever (see :func:`embedding_retriever`). Run it with
    ``{"retriever": {"query": query}}`` (optionally ``"filters"``, ``"top_k"``); connect ``"retriever.documents"``
    to what comes next (a prompt builder, a ranker).

    ``filters`` (Haystack filters) apply to every search unless a run passes its own. When the pipeline
    warms up, before any query is encoded, the text embedder is checked against the encoder identity kept
    with the collection (:mod:`simlm_haystack.stores.identity`): another model or recipe is an
    :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.

    Why one component and not ``text_embedder -> retriever``: ``Pipeline.run`` deep-copies every component's
    inputs, and the query vector's copy costs more than the search (each of its floats is checked against
    Haystack's runtime ``Component`` protocol: about 6 ms a query for 384 floats, BENCHMARKS.md "Query
    latency"). The retriever passes the vector from its embedder to its store retriever directly. A pipeline
    you wire yourself from ``DualEncoderTextEmbedder`` and a store retriever works too, and pays that copy.
    """
    pipeline = Pipeline()
    retriever = DualEncoderRetriever.from_embedder(
        text_embedder, document_store, top_k=top_k, filters=filters, allow_other_encoder=allow_other_encoder
    )
    pipeline.add_component("retriever", retriever)
    return pipeline
