"""Exact SimLM / TAS-B dual-encoder embedders for Haystack 3, stored in Qdrant."""

from haystack.core.serialization_security import allow_deserialization_module

from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.pipelines import build_indexing_pipeline, build_query_pipeline
from simlm_haystack.components.retriever import DualEncoderRetriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.errors import (
    CollectionMismatchError,
    DataError,
    EmptyQueryError,
    EncoderMismatchError,
    ModelLoadError,
    RecipeError,
    SimlmHaystackError,
)
from simlm_haystack.indexing import index_documents
from simlm_haystack.models import load_model
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import RECIPE_FILE, RECIPES, Recipe, get_recipe
from simlm_haystack.settings import EncoderSettings
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EdgeDocumentStore, edge_document_store, push_collection, qdrant_document_store
from simlm_haystack.stores.edge import EdgeEmbeddingRetriever, EdgeHybridRetriever, EdgeSparseEmbeddingRetriever
from simlm_haystack.stores.fusion import HybridSearch

# Haystack 3 refuses to deserialise components from modules outside its allowlist. Importing this
# package trusts its own components, so pipeline YAML that uses them loads with Pipeline.loads.
# Without importing it first, pass allowed_modules=["simlm_haystack"] or set
# HAYSTACK_DESERIALIZATION_ALLOWLIST=simlm_haystack.
allow_deserialization_module("simlm_haystack")

__version__ = "0.1.0"

__all__ = [
    "RECIPES",
    "RECIPE_FILE",
    "BM25Settings",
    "BM25SparseDocumentEmbedder",
    "BM25SparseTextEmbedder",
    "CollectionMismatchError",
    "DataError",
    "DualEncoder",
    "DualEncoderDocumentEmbedder",
    "DualEncoderRetriever",
    "DualEncoderTextEmbedder",
    "EdgeDocumentStore",
    "EdgeEmbeddingRetriever",
    "EdgeHybridRetriever",
    "EdgeSparseEmbeddingRetriever",
    "EmptyQueryError",
    "EncoderMismatchError",
    "EncoderSettings",
    "HybridSearch",
    "ModelLoadError",
    "Recipe",
    "RecipeError",
    "SimlmHaystackError",
    "build_indexing_pipeline",
    "build_query_pipeline",
    "edge_document_store",
    "get_recipe",
    "index_documents",
    "load_model",
    "push_collection",
    "qdrant_document_store",
    "resolve_recipe",
]
