"""The deployments ``simlm-haystack serve`` serves, from one text embedder, one document embedder and one store: the
search (REST and an MCP tool, with a description an agent can act on) and, unless read-only, adding documents."""

from __future__ import annotations

from typing import Any

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.pipelines import build_query_pipeline
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.serving.app import Deployment
from simlm_haystack.serving.requests import RequestLimits, index_request_model, search_request_model
from simlm_haystack.serving.wrappers import IndexWrapper, SearchWrapper
from simlm_haystack.stores.fusion import HybridSearch, Retrieval

#: How many titles of the collection the tool description shows an agent.
SAMPLE_TITLES = 3


def sample_titles(document_store: Any, count: int = SAMPLE_TITLES) -> list[str]:
    """A few titles from the collection (an embedded Edge collection; empty for other stores, which would need a
    scroll request of their own)."""
    scroll = getattr(document_store, "scroll_points", None)
    if scroll is None:
        return []
    for records in scroll(count):
        titles = [((record.payload or {}).get("meta") or {}).get("title") for record in records]
        return [str(title)[:120] for title in titles if title][:count]
    return []


def search_description(
    document_store: Any, retrieval: Retrieval, *, holds: str | None = None, titles: list[str] | None = None
) -> str:
    """The MCP tool's description: what the collection holds and what a good query is.

    :param document_store: The store searched (its collection name and size are said).
    :param retrieval: How it is searched.
    :param holds: What the collection holds, in the operator's words (``serve --description``).
    :param titles: Some titles from it (:func:`sample_titles` when None).
    """
    count = document_store.count_documents()
    titles = sample_titles(document_store) if titles is None else titles
    how = {
        "dense": "by meaning (a dual-encoder's vectors)",
        "sparse": "by its words (BM25)",
        "hybrid": "by meaning and by words (dense vectors and BM25, fused)",
    }[retrieval]
    lines = [f"Search {count} documents of collection {document_store.index!r} {how}."]
    if holds:
        lines.append(f"The collection holds: {holds}.")
    if titles:
        lines.append("Some of their titles: " + "; ".join(repr(title) for title in titles) + ".")
    lines.append(
        "A good query is one question or statement in plain language, as a person would ask it (for example "
        "'does vitamin D lower the risk of fractures?'), not a list of keywords; ask several queries for several "
        "topics. Returns the top_k documents (id, content, meta, score), best first; 'filters' (Haystack's filter "
        "syntax on meta fields) narrow the search."
    )
    return " ".join(lines)


def build_deployments(
    text_embedder: DualEncoderTextEmbedder,
    document_embedder: DualEncoderDocumentEmbedder | None,
    document_store: Any,
    *,
    retrieval: Retrieval = "dense",
    search: HybridSearch | None = None,
    top_k: int = 10,
    allow_other_encoder: bool = False,
    limits: RequestLimits | None = None,
    search_name: str = "search",
    index_name: str = "index",
    holds: str | None = None,
    workers: int | None = None,
) -> list[Deployment]:
    """The search deployment around ``build_query_pipeline(text_embedder, document_store, ...)`` and, with a
    ``document_embedder``, the one adding documents through :func:`~simlm_haystack.index_documents`.

    :param text_embedder: The query encoder.
    :param document_embedder: The document encoder (same model and recipe), or None for a read-only server.
    :param document_store: The collection's store.
    :param retrieval: ``"dense"``, ``"sparse"`` or ``"hybrid"``.
    :param search: How hybrid search fuses.
    :param top_k: Documents returned when a request does not say.
    :param allow_other_encoder: Search and write a collection filled by another encoder (with a warning).
    :param limits: What one request may ask for.
    :param search_name: The search route and MCP tool name.
    :param index_name: The route adding documents.
    :param holds: What the collection holds, for the tool description.
    :param workers: Searches run at once (:class:`~simlm_haystack.serving.wrappers.SearchWrapper`).
    """
    limits = limits or RequestLimits()
    pipeline = build_query_pipeline(
        text_embedder,
        document_store,
        top_k=top_k,
        allow_other_encoder=allow_other_encoder,
        retrieval=retrieval,
        **(search or HybridSearch()).to_dict(),
    )
    searching = SearchWrapper(pipeline=pipeline, limits=limits, workers=workers)
    deployments = [
        Deployment(
            name=search_name,
            wrapper=searching,
            description=search_description(document_store, retrieval, holds=holds),
            request_model=search_request_model(search_name, limits, top_k=top_k),
        )
    ]
    if document_embedder is not None:
        indexing = IndexWrapper(
            document_embedder=document_embedder,
            document_store=document_store,
            # Written as the collection is laid out (BM25 vectors too if it keeps them), whatever the search.
            retrieval="hybrid" if getattr(document_store, "use_sparse_embeddings", False) else "dense",
            allow_other_encoder=allow_other_encoder,
            limits=limits,
        )
        deployments.append(
            Deployment(
                name=index_name,
                wrapper=indexing,
                description=f"Add documents to collection {document_store.index!r}",
                request_model=index_request_model(index_name, limits),
                mcp=False,
            )
        )
    return deployments
