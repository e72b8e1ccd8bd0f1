"""Thin Haystack shells around :mod:`simlm_haystack.encoding`."""

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder

__all__ = ["DualEncoderDocumentEmbedder", "DualEncoderTextEmbedder"]
