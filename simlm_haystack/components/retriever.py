"""A drop-in retriever: query text in, Documents out, over a Qdrant (or Qdrant Edge) collection."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.backends import Backend
from simlm_haystack.components.base import canonical_type, register_short_type
from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import HF_TOKEN, SETTINGS_DOC, settings_arguments
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.feedback import PseudoRelevanceFeedback
from simlm_haystack.stores.fusion import (
    FUSION_DOC,
    RETRIEVAL_DOC,
    FusionMethod,
    HybridSearch,
    Retrieval,
    check_retrieval,
)
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.support import store_support


@component
class DualEncoderRetriever:
    """Embeds a query and searches Qdrant (or Qdrant Edge) with it: by its dense vector
    (:class:`DualEncoderTextEmbedder`), its BM25 sparse vector (``BM25SparseTextEmbedder``), or both, fused.

    Replaces a retriever in an existing RAG pipeline: it takes ``query`` (plus optional ``filters`` and
    ``top_k``) and returns ``documents``. It composes its parts as Haystack's ``TextEmbeddingRetriever``
    does, calling them directly (no inner ``Pipeline``, whose copies of every input would cost more than the
    search), and adds what that one cannot: a sparse side, flat encoder settings (so that the YAML swap and
    serialisation stay those of the embedders) and the check of the collection's encoder identity when it
    warms up. The store names its own retriever for each kind of search.

    ```python
    from simlm_haystack import DualEncoderRetriever, qdrant_document_store

    store = qdrant_document_store("simlm", embedding_dim=768, path="qdrant_data", index="docs")
    retriever = DualEncoderRetriever(model="intfloat/simlm-base-msmarco-finetuned", document_store=store)
    documents = retriever.run(query="what is the capital of France?")["documents"]
    retriever.close()  # releases the store (a local Qdrant folder is locked while open)
    ```
    """

    @docstring_with(retrieval_settings=RETRIEVAL_DOC, fusion_settings=FUSION_DOC, encoder_settings=SETTINGS_DOC)
    def __init__(
        self,
        *,
        model: str,
        document_store: EmbeddingDocumentStore,
        recipe: str | Recipe | dict[str, Any] | None = None,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        retrieval: Retrieval = "dense",
        fusion: FusionMethod = HybridSearch.fusion,
        rrf_k: int = HybridSearch.rrf_k,
        rrf_weights: list[float] | None = None,
        prefetch_limit: int = HybridSearch.prefetch_limit,
        bm25: BM25Settings | dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        precision: Precision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        allow_other_encoder: bool = False,
        feedback: PseudoRelevanceFeedback | dict[str, Any] | None = None,
    ) -> None:
        """
        :param document_store: The Qdrant or Qdrant Edge store the documents were written to with the same model.
        :param top_k: How many documents to return.
        :param filters: Haystack filters applied to every search (a run's ``filters`` replace them).
        :param allow_other_encoder: Search a collection whose kept encoder identity (model weights or recipe)
            differs from this one, with a warning; otherwise that is an
            :class:`~simlm_haystack.EncoderMismatchError` when the retriever warms up, before any query is
            encoded (see :mod:`simlm_haystack.stores.identity`).
        :param feedback: Pseudo-relevance feedback (:class:`~simlm_haystack.stores.feedback.PseudoRelevanceFeedback`
            or its dict): a first search's best documents move the query (Rocchio for the dense vector, expansion
            terms for the BM25 one) for a second search. Off by default: on SciFact it did not beat plain hybrid
            search beyond noise and costs a second search (BENCHMARKS.md, issue 27).
        {retrieval_settings}
        {fusion_settings}
        {encoder_settings}
        """
        check_retrieval(retrieval)
        self.text_embedder = DualEncoderTextEmbedder(**settings_arguments(locals()))
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.retrieval = retrieval
        self.search = HybridSearch(
            fusion=fusion,
            rrf_k=rrf_k,
            rrf_weights=rrf_weights,  # type: ignore[arg-type]  # a list; HybridSearch keeps it as a tuple
            prefetch_limit=prefetch_limit,
        )
        self.bm25 = bm25
        self.sparse_embedder = (
            None if retrieval == "dense" else BM25SparseTextEmbedder(**BM25Settings.of(bm25).to_dict())
        )
        self.allow_other_encoder = allow_other_encoder
        self.feedback = PseudoRelevanceFeedback.of(feedback)
        support = store_support(document_store)
        self.retriever = support.retriever(retrieval, top_k=top_k, filters=filters, search=self.search)
        self._collection_check = CollectionCheck(
            support.collection_identity, writes=False, allow_other_encoder=allow_other_encoder
        )

    @classmethod
    def from_embedder(
        cls,
        text_embedder: DualEncoderTextEmbedder,
        document_store: EmbeddingDocumentStore,
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        allow_other_encoder: bool = False,
        **search: Any,
    ) -> DualEncoderRetriever:
        """A retriever around an existing text embedder (its settings, and its model if loaded: e.g. one made
        with ``DualEncoderTextEmbedder.from_encoder`` around the model a trainer is training); ``search`` are
        the search settings (``retrieval``, ``fusion``, ``rrf_k``, ``rrf_weights``, ``prefetch_limit``, ``bm25``)."""
        retriever = cls(
            **text_embedder.settings.arguments(),
            document_store=document_store,
            top_k=top_k,
            filters=filters,
            allow_other_encoder=allow_other_encoder,
            **search,
        )
        retriever.text_embedder = text_embedder
        return retriever

    @property
    def uses_dense(self) -> bool:
        return self.retrieval != "sparse"

    def warm_up(self) -> None:
        """Load the query encoder (unless the search is sparse alone), then check the collection against what
        this retriever encodes (once settled, this costs nothing)."""
        if self.uses_dense:
            self.text_embedder.warm_up()
        self._collection_check.run(self._identity)

    def _identity(self) -> EncoderIdentity:
        dense = self.text_embedder if self.uses_dense else None
        return EncoderIdentity.of(
            dense.model if dense else None,
            dense.load_encoder() if dense else None,
            sparse=self.sparse_embedder.settings.to_dict() if self.sparse_embedder else None,
        )

    def _query_vectors(self, query: str) -> dict[str, Any]:
        vectors: dict[str, Any] = {}
        if self.sparse_embedder is not None:  # first: its EmptyQueryError costs no forward pass
            vectors["query_sparse_embedding"] = self.sparse_embedder.run(text=query)["sparse_embedding"]
        if self.uses_dense:
            vectors["query_embedding"] = self.text_embedder.run(text=query)["embedding"]
        return vectors

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """The ``top_k`` documents nearest to ``query``.

        :param query: The query text.
        :param filters: Haystack filters for this search (replacing the retriever's own).
        :param top_k: How many documents, for this search.
        :returns: ``{"documents": [...]}``, best first.
        """
        self.warm_up()
        vectors = self._query_vectors(query)
        if self.feedback is not None:
            first = self.retriever.run(**vectors, filters=filters, top_k=self.feedback.documents, return_embedding=True)
            vectors = self.feedback.moved(vectors, first["documents"])
        return self.retriever.run(**vectors, filters=filters, top_k=top_k)

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Like :meth:`run`, without blocking the event loop (each part's ``run_async``)."""
        self.warm_up()
        vectors = await asyncio.to_thread(self._query_vectors, query)
        if self.feedback is not None:
            first = await self.retriever.run_async(
                **vectors, filters=filters, top_k=self.feedback.documents, return_embedding=True
            )
            vectors = self.feedback.moved(vectors, first["documents"])
        return await self.retriever.run_async(**vectors, filters=filters, top_k=top_k)

    def close(self) -> None:
        """Close the document store's Qdrant client (a local store's folder lock is released)."""
        self.document_store.close()

    async def close_async(self) -> None:
        """Close the document store's asynchronous Qdrant client."""
        await self.document_store.close_async()

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store (secrets as environment-variable references only)."""
        return default_to_dict(
            self,
            document_store=self.document_store,
            top_k=self.top_k,
            filters=self.filters,
            retrieval=self.retrieval,
            **self.search.to_dict(),
            bm25=self.bm25,
            allow_other_encoder=self.allow_other_encoder,
            feedback=None if self.feedback is None else self.feedback.to_dict(),
            **self.text_embedder.settings.to_dict(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderRetriever:
        """Deserialise a retriever written by :meth:`to_dict`; ``data`` is not changed."""
        return default_from_dict(cls, canonical_type(cls, data))


register_short_type(DualEncoderRetriever)
