"""Document stores sized and distanced from a model's recipe."""

from simlm_haystack.stores.qdrant import check_store, qdrant_document_store

__all__ = ["check_store", "qdrant_document_store"]
