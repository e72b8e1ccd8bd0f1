"""How the LangChain store lays a document out as a Qdrant point: its vectors, payload keys, ids and title.

Two layouts: LangChain's (``"page_content"`` and ``"metadata"``, the point id the caller's id where Qdrant
takes it) and Haystack's (:data:`HAYSTACK_LAYOUT`), in which both frameworks read and write the same points.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from haystack_integrations.document_stores.qdrant.converters import DENSE_VECTORS_NAME, SPARSE_VECTORS_NAME, convert_id
from langchain_core.documents import Document
from langchain_qdrant import SparseEmbeddings
from qdrant_client import models

from simlm_haystack.langchain.embeddings import DualEncoderEmbeddings
from simlm_haystack.langchain.sparse import BM25SparseEmbeddings
from simlm_haystack.sparse import document_text

#: Keyword values under which this store reads and writes points as Haystack's ``QdrantDocumentStore``
#: (qdrant-haystack) does: the text under ``"content"``, the meta under ``"meta"``, one unnamed dense
#: vector, the document id under ``"id"`` and, as the point id, qdrant-haystack's uuid5 of it. Pass them
#: to ``from_existing_collection`` to search a collection indexed by Haystack or the CLI, or to
#: ``from_documents`` to index one that Haystack can search. For a Haystack store with
#: ``use_sparse_embeddings=True`` use :data:`HAYSTACK_HYBRID_LAYOUT`.
HAYSTACK_LAYOUT: dict[str, str] = {"content_payload_key": "content", "metadata_payload_key": "meta", "vector_name": ""}

#: :data:`HAYSTACK_LAYOUT` for the collections of a Haystack ``QdrantDocumentStore(use_sparse_embeddings=True,
#: sparse_idf=True)``: qdrant-haystack names the dense vector ``"text-dense"`` and the sparse one
#: ``"text-sparse"``. With ``retrieval_mode=RetrievalMode.HYBRID`` (or ``SPARSE``) and the same sparse
#: embeddings as the Haystack side (:class:`~simlm_haystack.langchain.sparse.BM25SparseEmbeddings` for
#: ``BM25SparseDocumentEmbedder``), LangChain searches what Haystack's hybrid indexing wrote, and Haystack's
#: ``QdrantHybridRetriever`` what LangChain wrote; in DENSE mode it reads the ``"text-dense"`` vector alone.
HAYSTACK_HYBRID_LAYOUT: dict[str, str] = {
    **HAYSTACK_LAYOUT,
    "vector_name": DENSE_VECTORS_NAME,
    "sparse_vector_name": SPARSE_VECTORS_NAME,
}

#: The payload key that keeps a document's id as its writer gave it, in both layouts (Haystack's key):
#: a point id is only what Qdrant accepts, so it is not always the caller's id.
ID_PAYLOAD_KEY = "id"
#: The largest point id Qdrant takes as an integer (unsigned 64 bits).
_MAX_POINT_INTEGER = 2**64 - 1


@dataclass(frozen=True)
class VectorLayout:
    """The vectors of a store's points under its retrieval mode, and the encoders that make them.

    :param dense: The dense encoder where the mode reads and writes the dense vector, else ``None``.
    :param vector_name: The dense vector's name; ``""``: the unnamed vector.
    :param distance: The dense vector's distance (the recipe's).
    :param sparse: The sparse encoder where the mode reads and writes the sparse vector, else ``None``.
    :param sparse_vector_name: The sparse vector's name.
    """

    dense: DualEncoderEmbeddings | None
    vector_name: str
    distance: models.Distance
    sparse: SparseEmbeddings | None
    sparse_vector_name: str

    @property
    def bm25(self) -> bool:
        """Whether the sparse side is BM25, whose scores need the sparse vector's IDF modifier."""
        return isinstance(self.sparse, BM25SparseEmbeddings)


def build_vectors(
    layout: VectorLayout, texts: Sequence[str], titles: Sequence[str | None] | None = None
) -> list[dict[str, Any]]:
    """Each text's vectors under ``layout``, each text read with its title (no ``titles``: none has one).

    The dense encoder reads the title as its recipe says; :class:`BM25SparseEmbeddings` takes the titles
    beside the texts (``title + " " + text``, as Haystack's ``BM25SparseDocumentEmbedder`` reads them); any
    other ``SparseEmbeddings``, whose ``embed_documents`` takes texts only, is given that same joined text.
    """
    titles = list(titles) if titles is not None else [None] * len(texts)
    vectors: list[dict[str, Any]] = [{} for _ in texts]
    if layout.dense is not None:
        dense = layout.dense.embed_documents(list(texts), titles)
        for vector, values in zip(vectors, dense, strict=True):
            vector[layout.vector_name] = values
    if layout.sparse is not None:
        if isinstance(layout.sparse, BM25SparseEmbeddings):
            sparse = layout.sparse.embed_documents(list(texts), titles)
        else:
            sparse = layout.sparse.embed_documents(
                [document_text(text, title) for text, title in zip(texts, titles, strict=True)]
            )
        for vector, values in zip(vectors, sparse, strict=True):
            vector[layout.sparse_vector_name] = models.SparseVector(indices=values.indices, values=values.values)
    return vectors


def is_haystack_layout(content_payload_key: str, metadata_payload_key: str) -> bool:
    """Whether these payload keys are Haystack's (:data:`HAYSTACK_LAYOUT`), whose point ids are always uuid5s."""
    return (content_payload_key, metadata_payload_key) == ("content", "meta")


def check_payload_keys(content_payload_key: str, metadata_payload_key: str) -> None:
    """Refuse content or metadata under :data:`ID_PAYLOAD_KEY`, where every point keeps its document id."""
    if ID_PAYLOAD_KEY in (content_payload_key, metadata_payload_key):
        raise ValueError(f"the payload key {ID_PAYLOAD_KEY!r} holds document ids; keep content and metadata apart")


def point_id(document_id: str | int, *, haystack_layout: bool) -> str | int:
    """The Qdrant point id a document id is stored under.

    In the Haystack layout always qdrant-haystack's uuid5 of the id as a string (``convert_id``), so that
    both frameworks address the same point. In LangChain's layout an id that Qdrant already takes keeps
    its point id: a UUID (any form Qdrant parses, sent in its canonical form) or an unsigned 64-bit
    integer, also written as a decimal string, because LangChain's ``Document.id`` turns ``7`` into
    ``"7"``. These are the only ids langchain-qdrant accepts, so its collections keep their point ids;
    any other id, which langchain-qdrant refuses, becomes the same uuid5 as in the Haystack layout.
    """
    if haystack_layout:
        return convert_id(str(document_id))
    if isinstance(document_id, str):
        with suppress(ValueError):
            return str(uuid.UUID(document_id))
        if document_id.isascii() and document_id.isdecimal() and str(int(document_id)) == document_id:
            document_id = int(document_id)
    if isinstance(document_id, int) and not isinstance(document_id, bool) and 0 <= document_id <= _MAX_POINT_INTEGER:
        return document_id
    return convert_id(str(document_id))


@dataclass(frozen=True)
class DocumentBatch:
    """Documents about to be written, checked: each text with its metadata, its title and its id."""

    texts: list[str]
    metadatas: list[dict | None]
    titles: list[str | None]
    ids: list[str | int]

    @classmethod
    def of(
        cls,
        texts: Iterable[str],
        metadatas: Sequence[Any] | None,
        ids: Sequence[str | int] | None,
        *,
        title_key: str | None,
        haystack_layout: bool,
    ) -> DocumentBatch:
        """The documents of ``add_texts``' arguments: each title is ``metadata[title_key]`` as a string
        (``None`` where there is none, or no ``title_key``); each missing id a new uuid4 (hex), as
        langchain-qdrant makes them; the ids strings in the Haystack layout, whose ids are strings.

        :raises TypeError: A text that is not a string, or a metadata neither a dict nor ``None``.
        :raises ValueError: Not one metadata, or one id, for each text.
        """
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"item {position} of texts is {type(text).__name__}, not a string")
        for name, values in (("metadatas", metadatas), ("ids", ids)):
            if values is not None and len(values) != len(texts):
                raise ValueError(f"Got {len(values)} {name} for {len(texts)} texts")
        all_metadatas = list(metadatas) if metadatas is not None else [None] * len(texts)
        titles: list[str | None] = []
        for position, metadata in enumerate(all_metadatas):
            if metadata is not None and not isinstance(metadata, dict):
                raise TypeError(f"item {position} of metadatas is {type(metadata).__name__}, not a dict")
            title = None if metadata is None or title_key is None else metadata.get(title_key)
            titles.append(None if title is None else str(title))
        given: Sequence[str | int | None] = ids if ids is not None else [None] * len(texts)
        all_ids: list[str | int] = [uuid.uuid4().hex if i is None else i for i in given]
        return cls(texts, all_metadatas, titles, [str(i) for i in all_ids] if haystack_layout else all_ids)

    def split(self, size: int) -> Iterator[DocumentBatch]:
        """These documents in batches of ``size``, in order."""
        for start in range(0, len(self.texts), size):
            part = slice(start, start + size)
            yield DocumentBatch(self.texts[part], self.metadatas[part], self.titles[part], self.ids[part])


def build_points(
    ids: Sequence[str | int],
    vectors: Sequence[models.VectorStruct],
    payloads: Sequence[dict[str, Any]],
    *,
    haystack_layout: bool,
) -> list[models.PointStruct]:
    """The points of these documents: each under its :func:`point_id`, its id as given kept in the payload
    (since the point id may be a hash of it; Haystack keeps it there too)."""
    return [
        models.PointStruct(
            id=point_id(document_id, haystack_layout=haystack_layout),
            vector=vector,
            payload={ID_PAYLOAD_KEY: str(document_id), **payload},
        )
        for document_id, vector, payload in zip(ids, vectors, payloads, strict=True)
    ]


def document_from_point(point: Any, content_payload_key: str, metadata_payload_key: str) -> Document:
    """The point as a LangChain ``Document``: its id is the one written (the payload's ``"id"``, or the
    point id for points written without one, e.g. by langchain-qdrant) and its metadata is the stored
    metadata as it is, with no ``_id`` or ``_collection_name`` added."""
    payload = point.payload or {}
    return Document(
        id=str(payload.get(ID_PAYLOAD_KEY, point.id)),
        page_content=payload.get(content_payload_key, ""),
        metadata=payload.get(metadata_payload_key) or {},
    )
