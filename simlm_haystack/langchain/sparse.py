"""LangChain-Qdrant ``SparseEmbeddings`` for BM25, through the same encoder as the Haystack sparse embedders."""

from __future__ import annotations

from langchain_core.runnables.config import run_in_executor
from langchain_qdrant import SparseEmbeddings, SparseVector

from simlm_haystack.docstrings import docstring_with
from simlm_haystack.sparse import BM25_SETTINGS_DOC, BM25Encoder, BM25Settings
from simlm_haystack.sparse import SparseVector as BM25Vector


def _langchain_vector(vector: BM25Vector) -> SparseVector:
    return SparseVector(indices=list(vector.indices), values=list(vector.values))


@docstring_with(bm25_settings=BM25_SETTINGS_DOC)
class BM25SparseEmbeddings(SparseEmbeddings):
    """BM25 sparse vectors for ``QdrantVectorStore``'s hybrid and sparse modes, with no model to download.

    fastembed's ``Qdrant/bm25`` scheme (what ``FastEmbedSparse(model_name="Qdrant/bm25")`` makes),
    computed by Qdrant Edge; the same vectors as
    :class:`~simlm_haystack.components.bm25_document_embedder.BM25SparseDocumentEmbedder` and
    :class:`~simlm_haystack.components.bm25_text_embedder.BM25SparseTextEmbedder` with the same settings.
    Documents carry BM25's term-frequency weights, queries weight 1 per term: the collection's sparse
    vector needs Qdrant's IDF modifier for the scores to be BM25's.

    ```python
    from simlm_haystack.langchain.sparse import BM25SparseEmbeddings

    sparse = BM25SparseEmbeddings()
    vectors = sparse.embed_documents(["Paris is the capital of France."], titles=["Paris"])
    query = sparse.embed_query("capital of France")
    ```

    {bm25_settings}
    :raises SettingsError: A BM25 setting is out of range or names a language Qdrant Edge lacks.
    """

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
        self.settings = BM25Settings.of_arguments(locals())
        self.encoder = BM25Encoder(self.settings)

    @classmethod
    def from_settings(cls, settings: BM25Settings) -> BM25SparseEmbeddings:
        """Sparse embeddings with ``settings`` (e.g. those recorded with a collection)."""
        return cls(**settings.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    def embed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[SparseVector]:
        """BM25 term weights of each passage, its title (``None``: none) read as ``title + " " + text``.

        :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or
            ``None`` (the message names the item).
        :raises ValueError: ``titles`` and ``texts`` differ in length.
        """
        return [_langchain_vector(vector) for vector in self.encoder.encode_documents(texts, titles)]

    def embed_query(self, text: str) -> SparseVector:
        """Weight 1 for each distinct term of the query (empty when every term is a stopword).

        :raises TypeError: ``text`` is not a string.
        :raises EmptyQueryError: ``text`` is empty or only whitespace.
        """
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.embed_query expects a string, got {type(text).__name__}")
        return _langchain_vector(self.encoder.encode_query(text))

    async def aembed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[SparseVector]:
        """Like :meth:`embed_documents`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_documents, texts, titles)

    async def aembed_query(self, text: str) -> SparseVector:
        """Like :meth:`embed_query`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_query, text)
