"""The peer the speed benchmarks measure ours against (sentence-transformers-haystack, set up as a Haystack
user would), and how two embedders' document vectors are compared."""

from __future__ import annotations

import numpy as np
from haystack import Document
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersDocumentEmbedder


def unit_vectors(documents: list[Document]) -> np.ndarray:
    """The documents' embeddings as rows of unit length (a row-wise dot product is then their cosine)."""
    array = np.asarray([document.embedding for document in documents], dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def peer_document_embedder(model: str, batch_size: int) -> SentenceTransformersDocumentEmbedder:
    """The peer as a user would set it up for title + text documents (warmed up)."""
    peer = SentenceTransformersDocumentEmbedder(
        model=model, meta_fields_to_embed=["title"], embedding_separator=" ", progress_bar=False,
        batch_size=batch_size,
    )  # fmt: skip
    peer.warm_up()
    return peer
