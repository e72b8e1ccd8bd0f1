"""Hard negatives mined with the current model through the evaluation's indexing and retrieval (Qdrant)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from haystack import Document
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.errors import DataError
from simlm_haystack.evaluation.index import ensure_indexed
from simlm_haystack.evaluation.retrieval import retrieve
from simlm_haystack.recipes import Recipe
from simlm_haystack.stores import qdrant_document_store
from simlm_haystack.training.data import TrainingExample, passage_from_document, save_training_jsonl


def negatives_from_run(
    examples: Sequence[TrainingExample],
    results: Sequence[Mapping[str, float]],
    documents: Mapping[str, Document],
    *,
    ranks: tuple[int, int] = (10, 100),
    margin: float | None = None,
) -> list[TrainingExample]:
    """Each example, given ``results[i]`` (its retrieved ``{doc_id: score}``), with negatives taken
    from the non-positive results ranked ``ranks[0] < rank <= ranks[1]``: the top ones are skipped,
    as they are often relevant documents nobody judged.

    With ``margin``, a candidate is kept only if it scores at least ``margin`` below every positive
    (a positive the run did not retrieve counts as scoring the run's lowest score).
    """
    start, stop = ranks
    if not 0 <= start < stop:
        raise ValueError(f"ranks must be (start, stop) with 0 <= start < stop, not {ranks}")
    mined = []
    for example, retrieved in zip(examples, results, strict=True):
        ranking = sorted(retrieved.items(), key=lambda item: -item[1])
        positive_ids = {p.id for p in example.positives}
        candidates = [(doc_id, score) for doc_id, score in ranking if doc_id not in positive_ids][start:stop]
        if margin is not None and ranking:
            lowest = ranking[-1][1]
            ceiling = min(retrieved.get(p.id, lowest) for p in example.positives) - margin
            candidates = [(doc_id, score) for doc_id, score in candidates if score <= ceiling]
        mined.append(replace(example, negatives=[passage_from_document(documents[d]) for d, _ in candidates]))
    return mined


def mine_hard_negatives(
    document_embedder: DualEncoderDocumentEmbedder,
    text_embedder: DualEncoderTextEmbedder,
    document_store: QdrantDocumentStore,
    examples: Sequence[TrainingExample],
    documents: Sequence[Document],
    *,
    ranks: tuple[int, int] = (10, 100),
    margin: float | None = None,
    progress_bar: bool = False,
) -> list[TrainingExample]:
    """Index ``documents`` (or reuse the index, see :func:`~simlm_haystack.evaluation.ensure_indexed`),
    retrieve for every training query, and keep ranks ``ranks`` as negatives (:func:`negatives_from_run`).

    Positives must be documents of the corpus (ids), so that they can be told apart from negatives.
    Write the result with :func:`~simlm_haystack.training.data.save_training_jsonl`.
    """
    by_id = {document.id: document for document in documents}
    for example in examples:
        if any(p.id not in by_id for p in example.positives):
            raise DataError(f"{example.where}: mining needs every positive to be a document id of the corpus")
    ensure_indexed(document_embedder, document_store, documents, progress_bar=progress_bar)
    queries = {str(number): example.query for number, example in enumerate(examples)}
    depth = ranks[1] + max(len(example.positives) for example in examples)
    run = retrieve(text_embedder, document_store, queries, top_k=depth, progress_bar=progress_bar)
    return negatives_from_run(examples, [run[key] for key in queries], by_id, ranks=ranks, margin=margin)


def mine_with_model(
    model: str,
    examples: Sequence[TrainingExample],
    documents: Sequence[Document],
    *,
    recipe: str | Recipe | None = None,
    ranks: tuple[int, int] = (10, 100),
    margin: float | None = None,
    save_to: str | Path | None = None,
    progress_bar: bool = False,
) -> list[TrainingExample]:
    """Hard negatives from ``model`` as it is (before training): ``documents`` indexed by our embedders
    into an in-memory Qdrant collection, then :func:`mine_hard_negatives`. With ``save_to``, the mined
    examples are also written there as training JSONL (a run can start from them again)."""
    document_embedder = DualEncoderDocumentEmbedder(model=model, recipe=recipe, progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(model=model, recipe=recipe)
    store = qdrant_document_store(document_embedder, location=":memory:", index="mining")
    try:
        mined = mine_hard_negatives(
            document_embedder,
            text_embedder,
            store,
            examples,
            documents,
            ranks=ranks,
            margin=margin,
            progress_bar=progress_bar,
        )
    finally:
        store.close()
    if save_to is not None:
        save_training_jsonl(mined, save_to)
    return mined
