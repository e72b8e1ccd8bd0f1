"""Retrieval quality of the model being trained, measured as ``simlm-haystack eval`` measures it."""

from __future__ import annotations

from pathlib import Path

from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.evaluation import BeirCollection, evaluate, load_beir
from simlm_haystack.stores import qdrant_document_store

#: ir-measures name -> the name the metric is logged under (``eval_`` is prefixed by the trainer).
MEASURES = {"nDCG@10": "nDCG@10", "RR@10": "MRR@10", "R@100": "R@100"}


class RetrievalEvaluator:
    """nDCG@10, MRR@10 and R@100 (in percent) of an encoder on one split of a BEIR collection.

    Each call indexes the corpus with the encoder as it is now into an in-memory Qdrant collection
    and searches every judged query of ``split``, through :func:`simlm_haystack.evaluation.evaluate`
    and our embedders wrapped around the encoder (no copy of the weights, no checkpoint needed).
    The trainer calls it at each evaluation and logs its metrics as ``eval_nDCG@10``, ...; select
    the best checkpoint with ``metric_for_best_model="nDCG@10"``.

    :param collection: A :class:`~simlm_haystack.evaluation.BeirCollection` or a BEIR folder.
    :param split: The qrels split evaluated.
    :param top_k: Documents retrieved per query (R@100 needs at least 100).
    :param batch_size: Texts encoded at a time.
    """

    def __init__(
        self, collection: BeirCollection | str | Path, split: str = "dev", *, top_k: int = 100, batch_size: int = 32
    ) -> None:
        self.collection = collection if isinstance(collection, BeirCollection) else load_beir(collection, [split])
        self.collection.split(split)  # a split that was not loaded is an error now, not at the first evaluation
        self.split = split
        self.top_k = top_k
        self.batch_size = batch_size
        self._store: QdrantDocumentStore | None = None

    def __call__(self, encoder: DualEncoder) -> dict[str, float]:
        document_embedder = DualEncoderDocumentEmbedder.from_encoder(
            encoder, batch_size=self.batch_size, progress_bar=False
        )
        text_embedder = DualEncoderTextEmbedder.from_encoder(encoder, batch_size=self.batch_size)
        if self._store is None:
            self._store = qdrant_document_store(
                encoder.recipe, embedding_dim=encoder.embedding_dim, location=":memory:", index="training-eval"
            )
        result = evaluate(
            document_embedder,
            text_embedder,
            self._store,
            self.collection,
            self.split,
            top_k=self.top_k,
            measures=tuple(MEASURES),
            progress_bar=False,
        )
        return {name: 100 * result.metrics[measure] for measure, name in MEASURES.items()}
