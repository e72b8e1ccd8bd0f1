"""Document stores sized and distanced from a model's recipe: Qdrant (server, cluster, local mode) and Qdrant Edge."""

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores.edge import EdgeDocumentStore, edge_document_store
from simlm_haystack.stores.engines import embedded_engine
from simlm_haystack.stores.identity import CollectionCheck, EncoderIdentity
from simlm_haystack.stores.push import PushReport, push_collection
from simlm_haystack.stores.qdrant import check_store, qdrant_document_store
from simlm_haystack.stores.support import StoreSupport, read_identity, store_support

#: The stores our pipelines index into and search (each answers through :func:`store_support`).
EmbeddingDocumentStore = QdrantDocumentStore | EdgeDocumentStore

__all__ = [
    "CollectionCheck",
    "EdgeDocumentStore",
    "EmbeddingDocumentStore",
    "EncoderIdentity",
    "PushReport",
    "StoreSupport",
    "check_store",
    "edge_document_store",
    "embedded_engine",
    "push_collection",
    "qdrant_document_store",
    "read_identity",
    "store_support",
]
