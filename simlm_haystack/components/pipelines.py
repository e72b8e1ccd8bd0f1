"""The indexing and query pipelines: our embedders wired to a document store's writer and retriever.

Each store names its own retriever (``store_support(store).retriever("dense")``, see
:mod:`simlm_haystack.stores.support`), so the pipelines, the drop-in retriever and the evaluation work
with Qdrant (server, cluster or ``qdrant-client``'s local mode) and with Qdrant Edge alike. Writing needs
no choice: Haystack's ``DocumentWriter`` writes to any document store.

Before anything is encoded, each checks the collection's encoder identity against its embedder: the
indexing pipeline is an :class:`EncoderCheckedPipeline` (its warm-up loads the embedder, then checks);
the query pipeline's one component, the drop-in retriever, checks in its own warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from haystack import Pipeline
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.retriever import DualEncoderRetriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.components.writing import write_setup
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import FUSION_DOC, RETRIEVAL_DOC, Retrieval
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.support import store_support


class EncoderCheckedPipeline(Pipeline):
    """A Haystack ``Pipeline`` that, when it warms up, checks each collection it writes to or searches
    against the encoder of its embedder (see :mod:`simlm_haystack.stores.identity`).

    The checks are not serialised: a pipeline loaded back from YAML is a plain ``Pipeline``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # Pipeline's own arguments, as Pipeline.from_dict passes them
        self._collection_checks: list[tuple[CollectionCheck, Callable[[], EncoderIdentity]]] = []

    def add_collection_check(self, check: CollectionCheck, identity: Callable[[], EncoderIdentity]) -> None:
        """Run ``check`` on the ``identity()`` of what the pipeline encodes at every warm-up until it is settled."""
        self._collection_checks.append((check, identity))

    def warm_up(self) -> None:
        """Warm the components up (the embedder loads its model), then check the collections."""
        super().warm_up()
        for check, identity in self._collection_checks:
            check.run(identity)


def embedding_retriever(
    document_store: EmbeddingDocumentStore, *, top_k: int = 10, filters: dict[str, Any] | None = None
) -> Any:
    """The store's own dense retriever: ``EdgeEmbeddingRetriever`` for Qdrant Edge, ``QdrantEmbeddingRetriever``
    for a ``QdrantDocumentStore``."""
    return store_support(document_store).retriever("dense", top_k=top_k, filters=filters)


@docstring_with(retrieval_settings=RETRIEVAL_DOC)
def build_indexing_pipeline(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    policy: DuplicatePolicy = DuplicatePolicy.OVERWRITE,
    allow_other_encoder: bool = False,
) -> EncoderCheckedPipeline:
    """``embedder [-> sparse_embedder] -> DocumentWriter(document_store)``; run it with
    ``{"embedder": {"documents": docs}}``.

    With ``retrieval="sparse"`` or ``"hybrid"``, a ``BM25SparseDocumentEmbedder`` (reading titles and meta as the
    embedder does) adds BM25 sparse vectors beside the dense ones, so that the collection serves all three
    kinds of search; the store must keep sparse vectors (``use_sparse_embeddings=True``).

    When it warms up, before it encodes anything, the embedder's identity (and the BM25 settings) is kept with
    an empty collection, or checked against the one kept there (:mod:`simlm_haystack.stores.identity`): another
    model, recipe or sparse side is an :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``.

    {retrieval_settings}
    """
    setup = write_setup(
        document_embedder, document_store, retrieval=retrieval, bm25=bm25, allow_other_encoder=allow_other_encoder
    )
    sparse_embedder = setup.sparse_embedder
    pipeline = EncoderCheckedPipeline()
    pipeline.add_component("embedder", document_embedder)
    pipeline.add_component("writer", DocumentWriter(document_store=document_store, policy=policy))
    if sparse_embedder is None:
        pipeline.connect("embedder.documents", "writer.documents")
    else:
        pipeline.add_component("sparse_embedder", sparse_embedder)
        pipeline.connect("embedder.documents", "sparse_embedder.documents")
        pipeline.connect("sparse_embedder.documents", "writer.documents")
    pipeline.add_collection_check(setup.collection_check(), setup.identity)
    return pipeline


@docstring_with(retrieval_settings=RETRIEVAL_DOC, fusion_settings=FUSION_DOC)
def build_query_pipeline(
    text_embedder: DualEncoderTextEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    top_k: int = 10,
    filters: dict[str, Any] | None = None,
    allow_other_encoder: bool = False,
    **search: Any,
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

    ``search`` are the retriever's search settings:

    {retrieval_settings}
    {fusion_settings}
    """
    pipeline = Pipeline()
    retriever = DualEncoderRetriever.from_embedder(
        text_embedder,
        document_store,
        top_k=top_k,
        filters=filters,
        allow_other_encoder=allow_other_encoder,
        **search,
    )
    pipeline.add_component("retriever", retriever)
    return pipeline
