"""A LlamaIndex retriever over a collection written by this package: the Haystack drop-in retriever, composed."""

from __future__ import annotations

from typing import Any

from haystack.utils import ComponentDevice, Secret
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilters

from simlm_haystack.backends import Backend
from simlm_haystack.components.retriever import DualEncoderRetriever as HaystackRetriever
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import Precision
from simlm_haystack.llama_index.embedding import DualEncoderEmbedding
from simlm_haystack.llama_index.filters import haystack_filters
from simlm_haystack.llama_index.nodes import document_node
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import HF_TOKEN, SETTINGS_DOC, settings_arguments
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import FUSION_DOC, RETRIEVAL_DOC, FusionMethod, HybridSearch, Retrieval


@docstring_with(retrieval_settings=RETRIEVAL_DOC, fusion_settings=FUSION_DOC, encoder_settings=SETTINGS_DOC)
class DualEncoderRetriever(BaseRetriever):
    """Embeds a query and searches Qdrant (or Qdrant Edge) with it, dense, sparse (BM25) or hybrid, in LlamaIndex.

    Built as the Haystack :class:`~simlm_haystack.DualEncoderRetriever` is, which it holds and runs
    (:attr:`haystack_retriever`): one encoding path and one search under both frameworks, so that the same
    query finds the same documents with the same scores. Hybrid search fuses inside Qdrant (DBSF or RRF, see
    :mod:`simlm_haystack.stores.fusion`), not on the client. Before the first query it checks the collection's
    encoder identity, as the other frameworks do (an :class:`~simlm_haystack.EncoderMismatchError` for a
    collection written by another model, recipe or BM25). Each document comes back as a ``NodeWithScore``: a
    ``TextNode`` of its id, text and meta (the title among it), with its score
    (:func:`~simlm_haystack.llama_index.nodes.document_node`).

    It is a LlamaIndex ``BaseRetriever`` (``retrieve``, ``aretrieve``), so it plugs into ``RetrieverQueryEngine``,
    ``ContextChatEngine``, ``CondensePlusContextChatEngine``, ...

    ```python
    from llama_index.core.query_engine import RetrieverQueryEngine
    from simlm_haystack import edge_document_store
    from simlm_haystack.llama_index import DualEncoderRetriever

    store = edge_document_store("simlm", embedding_dim=768, path="edge_data", index="docs")
    retriever = DualEncoderRetriever(model="intfloat/simlm-base-msmarco-finetuned", document_store=store)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)
    ```

    :param document_store: The Qdrant or Qdrant Edge store the documents were written to with the same model.
    :param top_k: How many documents to return.
    :param filters: LlamaIndex ``MetadataFilters`` (on the nodes' metadata) or Haystack filters, applied to every
        search (see :mod:`simlm_haystack.llama_index.filters`).
    :param allow_other_encoder: Search a collection whose kept encoder identity differs from this one, with a
        warning, instead of refusing it.
    :param callback_manager: LlamaIndex's callback manager.
    :param verbose: LlamaIndex's verbose flag.
    {retrieval_settings}
    {fusion_settings}
    {encoder_settings}
    """

    def __init__(
        self,
        *,
        model: str,
        document_store: EmbeddingDocumentStore,
        recipe: str | Recipe | dict[str, Any] | None = None,
        top_k: int = 10,
        filters: MetadataFilters | dict[str, Any] | None = None,
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
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        #: The Haystack retriever that embeds and searches.
        self.haystack_retriever = HaystackRetriever(
            **settings_arguments(locals()),
            document_store=document_store,
            top_k=top_k,
            filters=haystack_filters(filters),
            retrieval=retrieval,
            fusion=fusion,
            rrf_k=rrf_k,
            rrf_weights=rrf_weights,
            prefetch_limit=prefetch_limit,
            bm25=bm25,
            allow_other_encoder=allow_other_encoder,
        )
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_embedding(
        cls, embedding: DualEncoderEmbedding, document_store: EmbeddingDocumentStore, **search: Any
    ) -> DualEncoderRetriever:
        """A retriever with ``embedding``'s settings (and its model, if loaded); ``search`` are the other
        parameters (``top_k``, ``filters``, ``retrieval``, the fusion settings, ``bm25``, ...)."""
        retriever = cls(**embedding.settings.arguments(), document_store=document_store, **search)
        if embedding.encoder is not None:
            retriever.haystack_retriever.text_embedder.encoder = embedding.encoder
        return retriever

    @property
    def document_store(self) -> EmbeddingDocumentStore:
        return self.haystack_retriever.document_store

    @property
    def top_k(self) -> int:
        return self.haystack_retriever.top_k

    @property
    def retrieval(self) -> Retrieval:
        return self.haystack_retriever.retrieval

    def warm_up(self) -> None:
        """Load the query encoder and check the collection's encoder identity (done by the first query anyway)."""
        self.haystack_retriever.warm_up()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        documents = self.haystack_retriever.run(query=query_bundle.query_str)["documents"]
        return [document_node(document) for document in documents]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = await self.haystack_retriever.run_async(query=query_bundle.query_str)
        return [document_node(document) for document in result["documents"]]

    def close(self) -> None:
        """Close the document store (a local Qdrant or Edge folder is locked while open)."""
        self.haystack_retriever.close()
