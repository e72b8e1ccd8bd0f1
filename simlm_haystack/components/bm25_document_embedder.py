"""A Haystack component that gives Documents BM25 sparse embeddings, with no model to download."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

from simlm_haystack.components.base import canonical_type, register_short_type
from simlm_haystack.sparse import BM25Encoder, BM25Settings


@component
class BM25SparseDocumentEmbedder:
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

    def __init__(
        self,
        *,
        k: float = 1.2,
        b: float = 0.75,
        avg_len: float = 256.0,
        language: str = "english",
        stemmer: bool | str = True,
        stopwords: bool | str | list[str] = True,
        max_token_len: int | None = 40,
        title_field: str | None = "title",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        """
        :param k: BM25's term-frequency saturation (>= 0): how soon repeating a term stops adding weight.
        :param b: BM25's length normalisation, from 0 (none) to 1 (full).
        :param avg_len: The average document length in tokens that ``b`` compares with (default 256,
            fastembed's and Edge's).
        :param language: The language of the default stopwords and Snowball stemmer.
        :param stemmer: ``True``: the Snowball stemmer of ``language``; ``False``: none; a language name:
            that language's Snowball stemmer.
        :param stopwords: ``True``: the stopwords of ``language``; ``False``: none; a language name: that
            language's stopwords; a list of words: exactly those.
        :param max_token_len: Tokens longer than this many characters are dropped; ``None`` keeps all.
        :param title_field: The meta field that holds a document's title; ``None`` reads no title.
        :param meta_fields_to_embed: Meta fields put before the content.
        :param embedding_separator: The separator between those fields and the content.
        :raises SettingsError: A BM25 setting is out of range or names a language Qdrant Edge lacks.
        """
        self.settings = BM25Settings(
            k=k,
            b=b,
            avg_len=avg_len,
            language=language,
            stemmer=stemmer,
            stopwords=stopwords,  # type: ignore[arg-type]  # a list is kept as a tuple
            max_token_len=max_token_len,
        )
        self.encoder = BM25Encoder(self.settings)
        self.title_field = title_field
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

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

    def _title_and_text(self, document: Document) -> tuple[str | None, str]:
        title = document.meta.get(self.title_field) if self.title_field else None
        meta_values = [
            str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None
        ]
        text = self.embedding_separator.join([*meta_values, document.content or ""])
        return (None if title is None else str(title)), text

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed Documents; returns new Documents with ``sparse_embedding`` set, the input left untouched.

        :param documents: The Documents to embed.
        :returns: ``{"documents": [...]}`` in the input order.
        :raises TypeError: ``documents`` is not a list of Documents (the message names the first item that is not).
        """
        if not isinstance(documents, list):
            raise TypeError(
                f"{type(self).__name__} expects a list of Documents, got {type(documents).__name__}. "
                "To embed a string, use BM25SparseTextEmbedder."
            )
        for position, document in enumerate(documents):
            if not isinstance(document, Document):
                raise TypeError(
                    f"{type(self).__name__} expects a list of Documents; item {position} is {type(document).__name__}"
                )
        if not documents:
            return {"documents": []}
        titles, texts = zip(*(self._title_and_text(document) for document in documents), strict=True)
        vectors = self.encoder.encode_documents(list(texts), list(titles))
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
