"""A Haystack component that gives Documents BM25 sparse embeddings, with no model to download."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

from simlm_haystack.components.base import DOCUMENT_READING_DOC, ReadsDocuments, canonical_type, register_short_type
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.sparse import BM25_SETTINGS_DOC, BM25Encoder, BM25Settings


@component
class BM25SparseDocumentEmbedder(ReadsDocuments):
    """Sets each Document's ``sparse_embedding`` to its BM25 term weights (fastembed's ``Qdrant/bm25`` scheme).

    The weights are BM25's term-frequency part; the IDF part comes from the collection, whose sparse
    vector must be configured with Qdrant's IDF modifier (qdrant-haystack: ``use_sparse_embeddings=True``
    and ``sparse_idf=True``). No model is downloaded: Qdrant Edge's ``Bm25`` computes the weights.

    The title comes from ``Document.meta[title_field]`` and is read as ``title + " " + text``, the text the
    MiniLM and TAS-B recipes read (BM25 has no title-pair reading). Fields in ``meta_fields_to_embed`` are
    joined before the content with ``embedding_separator``, as Haystack's own embedders do.

    ```python
    from haystack import Document
    from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder

    embedder = BM25SparseDocumentEmbedder()
    result = embedder.run([Document(content="Paris is the capital of France.", meta={"title": "Paris"})])
    result["documents"][0].sparse_embedding  # SparseEmbedding(indices=[...], values=[...])
    ```

    Its input and output are ``FastembedSparseDocumentEmbedder``'s, so it takes that component's place in
    qdrant-haystack's hybrid pipelines; with the default settings, its vectors are the ones
    ``FastembedSparseDocumentEmbedder(model="Qdrant/bm25")`` makes.
    """

    @docstring_with(bm25_settings=BM25_SETTINGS_DOC, document_reading=DOCUMENT_READING_DOC)
    def __init__(
        self,
        *,
        k: float = 1.2,
        b: float = 0.75,
        avg_len: float | str = 256.0,
        language: str = "english",
        stemmer: bool | str = True,
        stopwords: bool | str | list[str] = True,
        max_token_len: int | None = 40,
        avg_len_documents: int | None = None,
        title_field: str | None = "title",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        """
        {bm25_settings}
        {document_reading}
        :raises SettingsError: A BM25 setting is out of range or names a language Qdrant Edge lacks.
        """
        self.settings = BM25Settings.of_arguments(locals())
        self.encoder = BM25Encoder(self.settings)
        self.title_field = title_field
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def use_settings(self, settings: BM25Settings) -> None:
        """Encode with ``settings`` from now on: how a write adopts the ``avg_len`` measured on (or kept with)
        its collection when this embedder was made with ``avg_len="corpus"``."""
        self.settings = settings
        self.encoder = BM25Encoder(settings)

    def measure_avg_len(self, documents: list[Document]) -> None:
        """Encode from now on with ``avg_len`` measured on ``documents`` as this embedder reads them (title and
        text, the meta fields it embeds): how a write into an empty collection settles ``avg_len="corpus"``."""
        titles, texts = self._titles_and_texts(documents, text_embedder="BM25SparseTextEmbedder")
        self.use_settings(self.settings.measured(texts, titles))

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component."""
        return default_to_dict(
            self,
            **self.settings.to_dict(),
            title_field=self.title_field,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25SparseDocumentEmbedder:
        """Deserialise a component written by :meth:`to_dict`; ``data`` is not changed."""
        return default_from_dict(cls, canonical_type(cls, data))

    def warm_up(self) -> None:
        """Nothing to load (BM25 has no model); here so that code written for fastembed's embedder runs."""

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed Documents; returns new Documents with ``sparse_embedding`` set, the input left untouched.

        :param documents: The Documents to embed.
        :returns: ``{"documents": [...]}`` in the input order.
        :raises TypeError: ``documents`` is not a list of Documents (the message names the first item that is not).
        """
        titles, texts = self._titles_and_texts(documents, text_embedder="BM25SparseTextEmbedder")
        if not documents:
            return {"documents": []}
        vectors = self.encoder.encode_documents(texts, titles)
        return {
            "documents": [
                replace(
                    document, sparse_embedding=SparseEmbedding(indices=list(vector.indices), values=list(vector.values))
                )
                for document, vector in zip(documents, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Like :meth:`run`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.run, documents)


register_short_type(BM25SparseDocumentEmbedder)
