"""Document stores sized and distanced from a model's recipe: Qdrant (server, cluster, local mode) and Qdrant Edge."""

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores.edge import EdgeDocumentStore, edge_document_store
from simlm_haystack.stores.identity import EncoderIdentity, read_identity
from simlm_haystack.stores.push import PushReport, push_collection
from simlm_haystack.stores.qdrant import check_store, qdrant_document_store

#: The stores our retrievers search by embedding (see ``components.pipelines.embedding_retriever``).
EmbeddingDocumentStore = QdrantDocumentStore | EdgeDocumentStore

__all__ = [
    "EdgeDocumentStore",
    "EmbeddingDocumentStore",
    "EncoderIdentity",
    "PushReport",
    "check_store",
    "edge_document_store",
    "push_collection",
    "qdrant_document_store",
    "read_identity",
]
