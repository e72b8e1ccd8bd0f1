"""A Hayhooks ``PipelineWrapper`` around the package's search: ``hayhooks run --pipelines-dir examples/hayhooks``
deploys this folder as ``POST /search_wrapper/run`` with ``{"query": ..., "top_k": ..., "filters": ...}``, with the
request checks and answers of ``simlm-haystack serve`` (see docs/serving.md).

Which collection and model: the environment, read when Hayhooks sets the wrapper up (it creates it without
arguments).
"""

from __future__ import annotations

import os

from haystack import Pipeline

from simlm_haystack.components.pipelines import build_query_pipeline
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.serving import SearchWrapper
from simlm_haystack.stores import edge_document_store


class PipelineWrapper(SearchWrapper):
    """Searches collection ``SIMLM_INDEX`` (default ``Document``) under ``SIMLM_QDRANT_PATH`` (default ``qdrant_data``)
    with ``SIMLM_MODEL`` (default all-MiniLM-L6-v2), ``SIMLM_RETRIEVAL`` ``dense`` (default) or ``hybrid``."""

    def build_pipeline(self) -> Pipeline:
        retrieval = os.environ.get("SIMLM_RETRIEVAL", "dense")
        embedder = DualEncoderTextEmbedder(
            model=os.environ.get("SIMLM_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
        )
        store = edge_document_store(
            embedder,
            path=os.environ.get("SIMLM_QDRANT_PATH", "qdrant_data"),
            index=os.environ.get("SIMLM_INDEX", "Document"),
            use_sparse_embeddings=retrieval != "dense" or None,
        )
        return build_query_pipeline(embedder, store, retrieval=retrieval)
