"""Retrieval quality through the real pipeline: index with the document embedder, search Qdrant, score with ir-measures.

Nothing here encodes or searches on its own: the corpus goes through :func:`~simlm_haystack.indexing.index_documents`
(the document embedder and Haystack's ``DocumentWriter``), and every query through the text embedder's encoder
and ``QdrantEmbeddingRetriever``. So the numbers are those of the pipeline a user runs.

Reusing an index: every document written by :func:`ensure_indexed` carries a fingerprint of what made
its vector (model weights, tokenizer, recipe, precision, how the embedder reads titles and meta, and the
whole corpus) in ``meta["simlm_haystack_fingerprint"]``. The collection is reused when it holds exactly
the corpus and every document carries the current fingerprint. That check needs only Haystack's public
document-store API, works on embedded and server Qdrant alike, and an interrupted indexing run (fewer
tagged documents than the corpus) is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ir_measures
import torch
from haystack import Document
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from tqdm.auto import tqdm

from simlm_haystack.components.base import DualEncoderComponentBase
from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.evaluation.data import BeirCollection, Qrels, load_beir
from simlm_haystack.fingerprint import model_fingerprint
from simlm_haystack.indexing import index_documents

logger = logging.getLogger(__name__)

#: The meta field that records what made a stored vector (see the module docstring).
FINGERPRINT_FIELD = "simlm_haystack_fingerprint"

#: BEIR's headline measure, MS MARCO's, and the recall a re-ranker or a hard-negative miner can work with.
DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100", "R@1000")

#: The packages whose versions change the numbers; recorded with every result.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "simlm-haystack",
    "torch",
    "transformers",
    "tokenizers",
    "haystack-ai",
    "qdrant-client",
    "qdrant-haystack",
    "ir-measures",
)

#: Query id -> {document id: score}; the shape ir-measures reads.
Run = dict[str, dict[str, float]]


@dataclass
class IndexReport:
    """What :func:`ensure_indexed` did: reused the collection, or encoded and wrote the corpus."""

    fingerprint: str
    reused: bool
    documents: int
    written: int = 0
    encode_seconds: float = 0.0
    write_seconds: float = 0.0


@dataclass
class EvaluationResult:
    """Measures, counts, timings and provenance of one evaluation.

    ``run`` holds the retrieved ranking of every judged query (kept out of :meth:`to_dict`).
    """

    metrics: dict[str, float]
    counts: dict[str, int]
    timings: dict[str, float]
    model: str
    recipe: dict[str, Any]
    collection: str
    split: str
    top_k: int
    fingerprint: str
    reused_index: bool
    store: dict[str, Any]
    versions: dict[str, str]
    run: Run = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the run, as JSON-ready values."""
        return {
            "metrics": self.metrics,
            "model": self.model,
            "recipe": self.recipe,
            "collection": self.collection,
            "split": self.split,
            "top_k": self.top_k,
            "counts": self.counts,
            "timings": self.timings,
            "reused_index": self.reused_index,
            "fingerprint": self.fingerprint,
            "store": self.store,
            "versions": self.versions,
        }


def versions() -> dict[str, str]:
    """Python and the versions of the packages that change the numbers."""
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def index_fingerprint(document_embedder: DualEncoderDocumentEmbedder, documents: Sequence[Document]) -> str:
    """A digest of everything that decides the stored vectors and documents.

    The weights are hashed, not the model's name: a trainer that updates a checkpoint in place (or in
    memory) gets a new fingerprint, so the next evaluation re-encodes instead of reusing stale vectors.
    """
    document_embedder.warm_up()
    encoder = document_embedder.encoder
    assert encoder is not None
    digest = hashlib.blake2b(digest_size=16)
    digest.update(model_fingerprint(encoder.loaded.model, encoder.loaded.tokenizer).encode())
    settings = {
        "recipe": encoder.recipe.to_dict(),
        "precision": encoder.precision,
        "title_field": document_embedder.title_field,
        "meta_fields_to_embed": document_embedder.meta_fields_to_embed,
        "embedding_separator": document_embedder.embedding_separator,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for document in documents:
        digest.update(json.dumps([document.id, document.content, document.meta], sort_keys=True, default=str).encode())
    return digest.hexdigest()


class _TimedEmbedder:
    """Forwards ``run`` to the document embedder and adds up the time spent in it.

    ``index_documents`` interleaves encoding and writing chunk by chunk; this splits its time
    between the two without a second indexing path.
    """

    def __init__(self, embedder: DualEncoderDocumentEmbedder) -> None:
        self.embedder = embedder
        self.seconds = 0.0

    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        start = time.perf_counter()
        try:
            return self.embedder.run(documents)
        finally:
            self.seconds += time.perf_counter() - start


@contextmanager
def _eval_mode(*embedders: DualEncoderComponentBase) -> Iterator[None]:
    """Dropout off while evaluating (a trainer may hand over a model in training mode), restored afterwards."""
    models: dict[int, torch.nn.Module] = {}
    for embedder in embedders:
        embedder.warm_up()
        assert embedder.encoder is not None
        models[id(embedder.encoder.loaded.model)] = embedder.encoder.loaded.model
    was_training = {key: model.training for key, model in models.items()}
    for model in models.values():
        model.eval()
    try:
        yield
    finally:
        for key, model in models.items():
            model.train(was_training[key])


def ensure_indexed(
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: QdrantDocumentStore,
    documents: Sequence[Document],
    *,
    reindex: bool = False,
    chunk_size: int = 1024,
    progress_bar: bool = True,
) -> IndexReport:
    """Make ``document_store`` hold exactly ``documents``, encoded by ``document_embedder``.

    Reuses the collection when it holds the same corpus encoded the same way (see the module
    docstring); otherwise, or with ``reindex=True``, deletes what the collection holds and encodes
    and writes the corpus through :func:`~simlm_haystack.indexing.index_documents`. An interrupted
    earlier run of the same fingerprint is completed, not restarted.

    The collection belongs to the evaluation: other documents in it are deleted.
    """
    with _eval_mode(document_embedder):
        fingerprint = index_fingerprint(document_embedder, documents)
        stored = document_store.count_documents()
        tagged = (
            document_store.count_documents_by_filter(
                {"field": f"meta.{FINGERPRINT_FIELD}", "operator": "==", "value": fingerprint}
            )
            if stored
            else 0
        )
        if not reindex and tagged == stored == len(documents):
            logger.info(
                "Collection %r already holds this corpus with fingerprint %s", document_store.index, fingerprint
            )
            return IndexReport(fingerprint=fingerprint, reused=True, documents=len(documents))
        if stored and (reindex or tagged < stored):
            logger.warning(
                "Deleting the %d documents of collection %r to index %d documents again",
                stored,
                document_store.index,
                len(documents),
            )
            document_store.delete_all_documents()
        timed = _TimedEmbedder(document_embedder)
        start = time.perf_counter()
        written = index_documents(
            (replace(document, meta={**document.meta, FINGERPRINT_FIELD: fingerprint}) for document in documents),
            timed,  # type: ignore[arg-type]  # duck-typed: index_documents only calls run()
            document_store,
            chunk_size=chunk_size,
            total=len(documents),
            progress_bar=progress_bar,
        )
        total_seconds = time.perf_counter() - start
    return IndexReport(
        fingerprint=fingerprint,
        reused=False,
        documents=len(documents),
        written=written,
        encode_seconds=timed.seconds,
        write_seconds=total_seconds - timed.seconds,
    )


def _search(
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    queries: Mapping[str, str],
    *,
    top_k: int,
    batch_queries: bool,
    progress_bar: bool,
) -> tuple[Run, float, float]:
    """The run, the seconds spent encoding queries, and the seconds spent searching."""
    retriever = QdrantEmbeddingRetriever(document_store=document_store, top_k=top_k)
    query_ids = list(queries)
    encode_seconds = search_seconds = 0.0
    with _eval_mode(text_embedder):
        if batch_queries:
            # One batched pass of the same encoder the text embedder runs; the search is still the retriever's.
            start = time.perf_counter()
            encoder = text_embedder.encoder
            assert encoder is not None
            embeddings = encoder.encode(
                "query",
                [queries[query_id] for query_id in query_ids],
                batch_size=text_embedder.batch_size,
                progress_bar=progress_bar,
            ).tolist()
            encode_seconds = time.perf_counter() - start
        run: Run = {}
        for position, query_id in enumerate(tqdm(query_ids, disable=not progress_bar, desc="Searching", unit="query")):
            if batch_queries:
                embedding = embeddings[position]
            else:
                start = time.perf_counter()
                embedding = text_embedder.run(queries[query_id])["embedding"]
                encode_seconds += time.perf_counter() - start
            start = time.perf_counter()
            documents = retriever.run(query_embedding=embedding, top_k=top_k)["documents"]
            search_seconds += time.perf_counter() - start
            run[query_id] = {document.id: float(document.score) for document in documents}
    return run, encode_seconds, search_seconds


def retrieve(
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    queries: Mapping[str, str],
    *,
    top_k: int = 100,
    batch_queries: bool = True,
    progress_bar: bool = True,
) -> Run:
    """The top ``top_k`` documents of each query from Qdrant: ``{query id: {document id: score}}``.

    For evaluation and for mining hard negatives; the store must have been filled with the matching
    document embedder (:func:`ensure_indexed`). With ``batch_queries`` the queries are encoded in
    batches by the text embedder's encoder; otherwise one by one through ``text_embedder.run``, as
    a query pipeline does. Either way each search goes through ``QdrantEmbeddingRetriever``.
    """
    return _search(
        text_embedder, document_store, queries, top_k=top_k, batch_queries=batch_queries, progress_bar=progress_bar
    )[0]


def calc_metrics(qrels: Qrels, run: Run, measures: Sequence[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean measures over the queries of ``run`` with ir-measures, keyed by the measure names given."""
    parsed = {name: ir_measures.parse_measure(name) for name in measures}
    aggregate = ir_measures.calc_aggregate(list(parsed.values()), qrels, run)
    return {name: float(aggregate[measure]) for name, measure in parsed.items()}


def _store_description(document_store: QdrantDocumentStore) -> dict[str, Any]:
    where = document_store.url or document_store.host or document_store.path or document_store.location
    return {"index": document_store.index, "location": str(where), "similarity": document_store.similarity}


def evaluate(
    document_embedder: DualEncoderDocumentEmbedder,
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    collection: BeirCollection | str | Path,
    split: str = "test",
    *,
    top_k: int = 1000,
    measures: Sequence[str] = DEFAULT_MEASURES,
    reindex: bool = False,
    batch_queries: bool = True,
    chunk_size: int = 1024,
    progress_bar: bool = True,
) -> EvaluationResult:
    """Index the collection's corpus (or reuse it), search every judged query of ``split``, and score the run.

    :param document_embedder: Encodes the corpus; its model and recipe are recorded with the result.
    :param text_embedder: Encodes the queries (usually the same model and recipe).
    :param document_store: The Qdrant collection to fill; it belongs to the evaluation (see :func:`ensure_indexed`).
    :param collection: A :class:`BeirCollection`, or a BEIR folder to load.
    :param split: The qrels split whose queries are evaluated.
    :param top_k: Documents retrieved per query; recall is measured up to this depth.
    :param measures: ir-measures names; the defaults are nDCG@10, RR@10 (MRR@10), R@100 and R@1000.
    :param reindex: Encode and write the corpus even if the collection already holds it.
    :param batch_queries: Encode the queries in batches (see :func:`retrieve`).
    :param chunk_size: Documents encoded and written at a time.
    :param progress_bar: Show progress bars for indexing, query encoding and searching.
    """
    if not isinstance(collection, BeirCollection):
        collection = load_beir(collection, splits=[split])
    qrels = collection.split(split)
    queries = collection.judged_queries(split)
    index = ensure_indexed(
        document_embedder,
        document_store,
        collection.documents,
        reindex=reindex,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
    )
    run, query_encode_seconds, search_seconds = _search(
        text_embedder, document_store, queries, top_k=top_k, batch_queries=batch_queries, progress_bar=progress_bar
    )
    empty = sum(not ranking for ranking in run.values())
    if empty:
        # ir-measures averages over the queries that have results; say so rather than report an inflated mean.
        logger.warning("%d of %d queries retrieved nothing and are left out of the means", empty, len(run))
    metrics = calc_metrics(qrels, run, measures)
    assert document_embedder.encoder is not None
    return EvaluationResult(
        metrics=metrics,
        counts={
            "documents": len(collection.documents),
            "documents_written": index.written,
            "queries": len(queries),
            "judgements": sum(len(judged) for judged in qrels.values()),
            "judgements_of_missing_documents": collection.missing_documents.get(split, 0),
            "queries_without_results": empty,
            "retrieved": sum(len(ranking) for ranking in run.values()),
        },
        timings={
            "encode_documents_seconds": round(index.encode_seconds, 3),
            "write_documents_seconds": round(index.write_seconds, 3),
            "encode_queries_seconds": round(query_encode_seconds, 3),
            "search_seconds": round(search_seconds, 3),
            "documents_per_second": round(index.documents / index.encode_seconds, 2) if index.encode_seconds else 0.0,
        },
        model=document_embedder.model,
        recipe=document_embedder.encoder.recipe.to_dict(),
        collection=str(collection.path),
        split=split,
        top_k=top_k,
        fingerprint=index.fingerprint,
        reused_index=index.reused,
        store=_store_description(document_store),
        versions=versions(),
        run=run,
    )


def format_table(results: Sequence[EvaluationResult], labels: Sequence[str] | None = None) -> str:
    """A plain-text table: one row per result, measures in percent, then the timings in seconds."""
    labels = list(labels) if labels is not None else [result.recipe["name"] for result in results]
    measures = list(results[0].metrics) if results else []
    header = ["", *measures, "encode docs s", "search s", "reused"]
    rows = [
        [
            label,
            *(f"{100 * result.metrics[name]:.2f}" for name in measures),
            f"{result.timings['encode_documents_seconds']:.1f}",
            f"{result.timings['search_seconds']:.1f}",
            "yes" if result.reused_index else "no",
        ]
        for label, result in zip(labels, results, strict=True)
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(lines)
