"""A drop-in retriever: query text in, Documents out, over a Qdrant (or Qdrant Edge) collection."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.backends import Backend
from simlm_haystack.components.base import canonical_type, register_short_type
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import HF_TOKEN, SETTINGS_DOC, docstring_with, settings_arguments
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.support import store_support


@component
class DualEncoderRetriever:
    """Embeds a query with :class:`DualEncoderTextEmbedder` and searches Qdrant (or Qdrant Edge) with it.

    Replaces a retriever in an existing RAG pipeline: it takes ``query`` (plus optional ``filters`` and
    ``top_k``) and returns ``documents``. It composes its two parts as Haystack's ``TextEmbeddingRetriever``
    does, calling them directly (no inner ``Pipeline``, whose copies of every input would cost more than the
    search), and adds what that one cannot: flat encoder settings (so that the YAML swap and serialisation
    stay those of the embedders) and the check of the collection's encoder identity when it warms up.

    ```python
    from simlm_haystack import DualEncoderRetriever, qdrant_document_store

    store = qdrant_document_store("simlm", embedding_dim=768, path="qdrant_data", index="docs")
    retriever = DualEncoderRetriever(model="intfloat/simlm-base-msmarco-finetuned", document_store=store)
    documents = retriever.run(query="what is the capital of France?")["documents"]
    retriever.close()  # releases the store (a local Qdrant folder is locked while open)
    ```
    """

    @docstring_with(encoder_settings=SETTINGS_DOC)
    def __init__(
        self,
        *,
        model: str,
        document_store: EmbeddingDocumentStore,
        recipe: str | Recipe | dict[str, Any] | None = None,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
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
    ) -> None:
        """
        :param document_store: The Qdrant or Qdrant Edge store the documents were written to with the same model.
        :param top_k: How many documents to return.
        :param filters: Haystack filters applied to every search (a run's ``filters`` replace them).
        :param allow_other_encoder: Search a collection whose kept encoder identity (model weights or recipe)
            differs from this one, with a warning; otherwise that is an
            :class:`~simlm_haystack.EncoderMismatchError` when the retriever warms up, before any query is
            encoded (see :mod:`simlm_haystack.stores.identity`).
        {encoder_settings}
        """
        self.text_embedder = DualEncoderTextEmbedder(**settings_arguments(locals()))
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.allow_other_encoder = allow_other_encoder
        support = store_support(document_store)
        self.retriever = support.embedding_retriever(top_k=top_k, filters=filters)
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
    ) -> DualEncoderRetriever:
        """A retriever around an existing text embedder (its settings, and its model if loaded: e.g. one made
        with ``DualEncoderTextEmbedder.from_encoder`` around the model a trainer is training)."""
        retriever = cls(
            **text_embedder.settings.arguments(),
            document_store=document_store,
            top_k=top_k,
            filters=filters,
            allow_other_encoder=allow_other_encoder,
        )
        retriever.text_embedder = text_embedder
        return retriever

    def warm_up(self) -> None:
        """Load the query encoder, then check the collection against it (once settled, this costs nothing)."""
        embedder = self.text_embedder
        embedder.warm_up()
        self._collection_check.run(lambda: EncoderIdentity.of(embedder.model, embedder.load_encoder()))

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
        embedding = self.text_embedder.run(text=query)["embedding"]
        return self.retriever.run(query_embedding=embedding, filters=filters, top_k=top_k)

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Like :meth:`run`, without blocking the event loop (each part's ``run_async``)."""
        self.warm_up()
        embedding = (await self.text_embedder.run_async(text=query))["embedding"]
        return await self.retriever.run_async(query_embedding=embedding, filters=filters, top_k=top_k)

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
            allow_other_encoder=self.allow_other_encoder,
            **self.text_embedder.settings.to_dict(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderRetriever:
        """Deserialise a retriever written by :meth:`to_dict`; ``data`` is not changed."""
        return default_from_dict(cls, canonical_type(cls, data))


register_short_type(DualEncoderRetriever)
