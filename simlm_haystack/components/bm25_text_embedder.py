"""A Haystack component that turns a query into a BM25 sparse embedding, with no model to download."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

from simlm_haystack.components.base import canonical_type, register_short_type
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.sparse import BM25_SETTINGS_DOC, BM25Encoder, BM25Settings


@component
class BM25SparseTextEmbedder:
    """Embeds a query as BM25 does: weight 1 for each distinct term (fastembed's ``Qdrant/bm25`` scheme).

    Searched against documents embedded by
    :class:`~simlm_haystack.components.bm25_document_embedder.BM25SparseDocumentEmbedder` with the same
    settings, in a sparse vector with Qdrant's IDF modifier, the score is each document's BM25 score.

    ```python
    from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder

    embedder = BM25SparseTextEmbedder()
    sparse_embedding = embedder.run("what is the capital of France?")["sparse_embedding"]
    ```

    Its input and output are ``FastembedSparseTextEmbedder``'s (``text`` in, ``sparse_embedding`` out),
    so it feeds ``QdrantHybridRetriever``'s ``query_sparse_embedding``.
    """

    @docstring_with(bm25_settings=BM25_SETTINGS_DOC)
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
    ) -> None:
        """
        The settings must be the document embedder's: they choose the terms (stopwords, stemmer, length
        limit). ``k``, ``b`` and ``avg_len`` do not change a query's vector; they are here so that one set
        of settings serialises for both sides.

        {bm25_settings}
        :raises SettingsError: A BM25 setting is out of range or names a language Qdrant Edge lacks.
        """
        self.settings = BM25Settings.of_arguments(locals())
        self.encoder = BM25Encoder(self.settings)

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component."""
        return default_to_dict(self, **self.settings.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25SparseTextEmbedder:
        """Deserialise a component written by :meth:`to_dict`; ``data`` is not changed."""
        return default_from_dict(cls, canonical_type(cls, data))

    def warm_up(self) -> None:
        """Nothing to load (BM25 has no model); here so that code written for fastembed's embedder runs."""

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, SparseEmbedding]:
        """Embed one query.

        :param text: The query.
        :returns: ``{"sparse_embedding": SparseEmbedding(...)}``; empty when every term is a stopword.
        :raises TypeError: ``text`` is not a string.
        :raises EmptyQueryError: ``text`` is empty or only whitespace.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self).__name__} expects a string, got {type(text).__name__}. "
                "To embed Documents, use BM25SparseDocumentEmbedder."
            )
        vector = self.encoder.encode_query(text)
        return {"sparse_embedding": SparseEmbedding(indices=list(vector.indices), values=list(vector.values))}

    @component.output_types(sparse_embedding=SparseEmbedding)
    async def run_async(self, text: str) -> dict[str, SparseEmbedding]:
        """Like :meth:`run`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.run, text)


register_short_type(BM25SparseTextEmbedder)
