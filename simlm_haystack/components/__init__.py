"""Thin Haystack shells around :mod:`simlm_haystack.encoding` (dense) and :mod:`simlm_haystack.sparse` (BM25)."""

from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder

__all__ = [
    "BM25SparseDocumentEmbedder",
    "BM25SparseTextEmbedder",
    "DualEncoderDocumentEmbedder",
    "DualEncoderTextEmbedder",
]
