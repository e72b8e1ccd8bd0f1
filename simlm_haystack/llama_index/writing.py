"""Writing from LlamaIndex: documents and nodes indexed into a collection in this package's layout.

Nodes from LlamaIndex readers and splitters become the Haystack Documents this package stores
(:func:`~simlm_haystack.llama_index.nodes.node_document`) and go through :func:`~simlm_haystack.index_documents`,
the write path of the ``index`` command: the collection's encoder identity is kept or checked before anything is
encoded, BM25 sparse vectors are written beside the dense ones for sparse and hybrid search, writes are chunked,
resumable and retried. Haystack, LangChain (in :data:`~simlm_haystack.langchain.HAYSTACK_LAYOUT`) and
LlamaIndex (:class:`~simlm_haystack.llama_index.DualEncoderRetriever`) then search the same points.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llama_index.core.schema import BaseNode

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.indexing import index_documents
from simlm_haystack.llama_index.embedding import DualEncoderEmbedding
from simlm_haystack.llama_index.nodes import node_documents
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import RETRIEVAL_DOC, Retrieval


def document_embedder(embedding: DualEncoderEmbedding, *, progress_bar: bool = False) -> DualEncoderDocumentEmbedder:
    """The Haystack document embedder of ``embedding``'s settings that reads a title where it does
    (``meta[title_key]``), sharing its model when it is loaded."""
    settings = embedding.settings.arguments()
    embedder = DualEncoderDocumentEmbedder(**settings, title_field=embedding.title_key, progress_bar=progress_bar)
    embedder.encoder = embedding.encoder
    return embedder


@docstring_with(retrieval_settings=RETRIEVAL_DOC)
def index_nodes(
    nodes: Iterable[BaseNode],
    embedding: DualEncoderEmbedding,
    document_store: EmbeddingDocumentStore,
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    chunk_size: int = 1024,
    total: int | None = None,
    progress_bar: bool = False,
    skip_existing: bool = True,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    allow_other_encoder: bool = False,
) -> int:
    """Embed LlamaIndex documents or nodes with ``embedding``'s model and write them into ``document_store``.

    Each node is stored under its ``node_id`` with its text alone, its metadata as the document's meta and, for a
    node cut from a document, that document's id (:mod:`simlm_haystack.llama_index.nodes`); its title is
    ``metadata[embedding.title_key]``, read as the recipe says, so the stored vector is the one
    ``embedding`` gives the node as a transformation. The write is :func:`~simlm_haystack.index_documents`'
    (see there: the encoder identity checked first, chunked, resumable, retried).

    ```python
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from simlm_haystack import edge_document_store
    from simlm_haystack.llama_index import DualEncoderEmbedding, index_nodes

    embedding = DualEncoderEmbedding(model="intfloat/simlm-base-msmarco-finetuned")
    nodes = SentenceSplitter().get_nodes_from_documents(SimpleDirectoryReader("docs").load_data())
    store = edge_document_store(embedding, path="edge_data", index="docs", use_sparse_embeddings=True)
    index_nodes(nodes, embedding, store, retrieval="hybrid")
    ```

    :param nodes: LlamaIndex ``Document`` s or nodes (any iterable, read lazily).
    :param embedding: The embedding whose settings (model, recipe, ...) and ``title_key`` encode the documents.
    :param document_store: A store from :func:`~simlm_haystack.edge_document_store` or
        :func:`~simlm_haystack.qdrant_document_store`.
    {retrieval_settings}
    :param chunk_size: Documents encoded and written at a time.
    :param total: The number of nodes, for the progress bar.
    :param progress_bar: Show a progress bar.
    :param skip_existing: Skip nodes stored already with the same text and metadata (a rerun resumes).
    :param retries: Retries of a write that fails transiently.
    :param backoff_seconds: The first wait before a retry (doubled each time).
    :param allow_other_encoder: Write into a collection filled by another encoder, with a warning.
    :returns: The number of documents written (skipped ones not counted).
    """
    embedder = document_embedder(embedding, progress_bar=False)
    written = index_documents(
        node_documents(nodes),
        embedder,
        document_store,
        retrieval=retrieval,
        bm25=bm25,
        chunk_size=chunk_size,
        total=total,
        progress_bar=progress_bar,
        skip_existing=skip_existing,
        retries=retries,
        backoff_seconds=backoff_seconds,
        allow_other_encoder=allow_other_encoder,
    )
    if embedding.encoder is None:
        embedding.encoder = embedder.encoder  # loaded by the write: shared from now on
    return written
