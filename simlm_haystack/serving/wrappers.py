"""The two deployments, as Hayhooks ``PipelineWrapper`` classes: searching a collection (``POST /search/run``, and the
same as an MCP tool) and adding documents to it (``POST /index/run``).

``simlm-haystack serve`` builds them around the pipeline and embedder it loaded once. With Hayhooks' own commands
(``hayhooks run --pipelines-dir``), subclass :class:`SearchWrapper` in a ``pipeline_wrapper.py`` and build the
pipeline in ``build_pipeline()`` (see ``examples/hayhooks/``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from hayhooks import BasePipelineWrapper
from haystack import Document, Pipeline
from haystack.errors import FilterError
from typing_extensions import TypedDict  # pydantic reads typing_extensions.TypedDict on Python < 3.12

from simlm_haystack.backends import cpu_threads
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.retriever import DualEncoderRetriever
from simlm_haystack.components.writing import write_setup
from simlm_haystack.errors import EmptyQueryError
from simlm_haystack.indexing import index_documents
from simlm_haystack.serving.requests import DocumentIn, RequestError, RequestLimits, check_search
from simlm_haystack.stores.fusion import Retrieval


class Hit(TypedDict):
    """One document found: its id, text, meta and score (higher is nearer)."""

    id: str
    content: str | None
    meta: dict[str, Any]
    score: float | None


class SearchResult(TypedDict):
    """The documents found, best first."""

    documents: list[Hit]


class IndexResult(TypedDict):
    """How many documents were written, and their ids (in the request's order)."""

    written: int
    ids: list[str]


def hit(document: Document) -> Hit:
    """What a search returns of ``document``: no vectors."""
    return {"id": document.id, "content": document.content, "meta": document.meta, "score": document.score}


async def run_wrapper(wrapper: BasePipelineWrapper, arguments: dict[str, Any]) -> Any:
    """Call a wrapper as Hayhooks' route does: its ``run_api_async`` when it has one, else its ``run_api`` on a
    worker thread."""
    if type(wrapper).run_api_async is not BasePipelineWrapper.run_api_async:
        return await wrapper.run_api_async(**arguments)
    return await run_in_threadpool(wrapper.run_api, **arguments)


def refused(error: Exception) -> HTTPException:
    """The HTTP error a refused request becomes: its status (422 unless said) and message, never a traceback."""
    return HTTPException(status_code=getattr(error, "status", 422), detail=str(error))


class SearchWrapper(BasePipelineWrapper):
    """Searches one collection: a Haystack pipeline whose component ``"retriever"`` is a
    :class:`~simlm_haystack.DualEncoderRetriever`.

    Requests served asynchronously (Hayhooks' REST route, ``simlm-haystack serve``, the MCP tool) search on a pool of
    ``workers`` threads, first come first served: one query's forward pass runs on one core, so that many threads
    use every core, and more would only share them, every request then waiting for all the others (measured in
    BENCHMARKS.md, "Issue 28").

    :param pipeline: The query pipeline (:func:`~simlm_haystack.components.pipelines.build_query_pipeline`); without
        one, a subclass's :meth:`build_pipeline` gives it.
    :param limits: What one request may ask for.
    :param workers: Searches run at once (default: the cores this process may use).
    """

    limits: RequestLimits = RequestLimits()

    def __init__(
        self, *, pipeline: Pipeline | None = None, limits: RequestLimits | None = None, workers: int | None = None
    ) -> None:
        super().__init__()
        self._given = pipeline
        if limits is not None:
            self.limits = limits
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers or cpu_threads()
        self._retriever: DualEncoderRetriever | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_made = threading.Lock()

    def setup(self) -> None:
        """Take the pipeline given, else :meth:`build_pipeline`'s, then load the model and check the collection's
        encoder identity (:meth:`DualEncoderRetriever.warm_up`): a mismatch stops the deployment."""
        self.pipeline = self._given if self._given is not None else self.build_pipeline()
        self.retriever.warm_up()

    def build_pipeline(self) -> Pipeline:
        """The query pipeline to serve, for a wrapper made without one (Hayhooks creates a ``PipelineWrapper``
        without arguments): override it, e.g. with
        :func:`~simlm_haystack.components.pipelines.build_query_pipeline`."""
        raise TypeError("SearchWrapper needs pipeline=, or a subclass whose build_pipeline() returns one")

    @property
    def retriever(self) -> DualEncoderRetriever:
        """The pipeline's ``"retriever"`` component."""
        if self._retriever is None:
            if self.pipeline is None:
                raise RuntimeError("the pipeline is not set up yet")
            component = self.pipeline.get_component("retriever")
            if not isinstance(component, DualEncoderRetriever):
                raise TypeError(f"component 'retriever' is a {type(component).__name__}, not a DualEncoderRetriever")
            self._retriever = component
        return self._retriever

    def run_api(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> SearchResult:
        """Search the collection: the documents nearest in meaning to the query, best first.

        :param query: A question or statement in natural language, as a person would ask it.
        :param top_k: How many documents to return.
        :param filters: Haystack filters on the documents' meta, e.g.
            ``{"field": "meta.title", "operator": "==", "value": "..."}``.
        :returns: The documents found (id, content, meta, score), best first.
        """
        try:
            check_search(query, top_k, filters, self.limits)
            # The retriever itself, not Pipeline.run: the same result without copying the inputs.
            documents = self.retriever.run(query=query, filters=filters or None, top_k=top_k)["documents"]
        except (RequestError, EmptyQueryError, FilterError) as error:
            raise refused(error) from None
        return {"documents": [hit(document) for document in documents]}

    async def run_api_async(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> SearchResult:
        search = functools.partial(self.run_api, query, top_k, filters)
        return await asyncio.get_running_loop().run_in_executor(self.pool, search)

    # Hayhooks documents the route and its fields from the method it calls (this one, when it is defined).
    run_api_async.__doc__ = run_api.__doc__

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads searches run on (made on first use)."""
        with self._pool_made:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="search")
            return self._pool


class IndexWrapper(BasePipelineWrapper):
    """Adds documents to the collection a :class:`SearchWrapper` searches, through
    :func:`~simlm_haystack.index_documents` (the write path of ``simlm-haystack index``: the encoder identity kept or
    checked, dense and BM25 vectors as the collection is laid out, unchanged documents skipped). One write at a
    time; searches go on meanwhile, and see a document whole or not at all.

    :param document_embedder: The embedder of the documents (the query encoder's model and recipe).
    :param document_store: The store the search deployment reads.
    :param retrieval: ``"dense"``, or ``"sparse"``/``"hybrid"`` to write BM25 vectors too.
    :param allow_other_encoder: Write into a collection filled by another encoder (with a warning).
    :param limits: What one request may ask for.
    """

    skip_mcp = True  # an agent searches; adding documents is for the application

    def __init__(
        self,
        *,
        document_embedder: DualEncoderDocumentEmbedder,
        document_store: Any,
        retrieval: Retrieval = "dense",
        allow_other_encoder: bool = False,
        limits: RequestLimits | None = None,
    ) -> None:
        super().__init__()
        self.document_embedder = document_embedder
        self.document_store = document_store
        self.retrieval: Retrieval = retrieval
        self.allow_other_encoder = allow_other_encoder
        self.limits = limits or RequestLimits()
        self._writing = threading.Lock()

    def setup(self) -> None:
        """Load the document encoder (the query side's model, loaded once per process) and check it against the
        collection (an empty one takes its identity), so that a mismatch stops the deployment, not a first write."""
        write_setup(
            self.document_embedder,
            self.document_store,
            retrieval=self.retrieval,
            allow_other_encoder=self.allow_other_encoder,
        ).check_collection()

    def run_api(self, documents: list[DocumentIn]) -> IndexResult:
        """Add documents to the collection; a search right after finds them.

        :param documents: The documents: ``content`` (required), optional ``id`` and ``meta`` (with ``title``).
        :returns: How many were written (unchanged ones already stored are skipped) and every document's id.
        """
        try:
            batch = [_document(item, position, self.limits) for position, item in enumerate(documents)]
            if len(batch) > self.limits.max_documents:
                raise RequestError(f"documents: {len(batch)} in one request; at most {self.limits.max_documents}")
        except RequestError as error:
            raise refused(error) from None
        with self._writing:  # one write at a time
            written = index_documents(
                batch,
                self.document_embedder,
                self.document_store,
                retrieval=self.retrieval,
                chunk_size=max(len(batch), 1),
                progress_bar=False,
                allow_other_encoder=self.allow_other_encoder,
            )
        return {"written": written, "ids": [document.id for document in batch]}


def _document(item: Any, position: int, limits: RequestLimits) -> Document:
    """The Haystack document of one request item (a model instance, or a dict when called without the model)."""
    where = f"documents[{position}]"
    if isinstance(item, dict):
        try:
            item = DocumentIn.model_validate(item)
        except ValueError as error:
            raise RequestError(f"{where}: {str(error).splitlines()[-1].strip()}") from None
    if not isinstance(item, DocumentIn):
        raise RequestError(f"{where} must be an object with 'content', not {type(item).__name__}")
    if not item.content.strip():
        raise RequestError(f"{where}.content is only whitespace: there is nothing to index")
    return Document(id=item.id or "", content=item.content, meta=dict(item.meta))
