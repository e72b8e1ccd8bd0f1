"""The labelled scores of a model, before and after pre-training: nDCG@10, MRR@10 and R@100 on SciFact test and on
the dev draw of train queries, from one index of the corpus, cached so that a campaign measures its start once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.fine_tuning import with_dev_split
from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.evaluation import BeirCollection, evaluate, load_beir
from simlm_haystack.pretraining.heldout import ScoreCache, encoder_fingerprint, fresh_encoder
from simlm_haystack.recipes import Recipe
from simlm_haystack.training.evaluator import MEASURES as JUDGED_MEASURES


def judged_collection(data: Path, dev_queries: int) -> BeirCollection:
    """SciFact's test split and a ``dev`` split of ``dev_queries`` train queries (``train_scifact``'s draw)."""
    collection = with_dev_split(load_beir(data, splits=["train", "test"]), dev_queries)
    qrels = {split: collection.qrels[split] for split in ("test", "dev") if split in collection.qrels}
    return dataclasses.replace(collection, qrels=qrels)  # train's judgements are never read past this point


def judged_scores(model: str, recipe: Recipe, collection: BeirCollection, cache: ScoreCache) -> dict[str, dict]:
    """nDCG@10, MRR@10 and R@100 (percent) of every split of ``collection``, the corpus indexed once; cached
    (by weights, recipe, collection, split and its queries) so the start is measured once per campaign."""
    encoder = fresh_encoder(model, recipe)
    fingerprint = encoder_fingerprint(encoder)
    keys = {
        split: ScoreCache.key(
            fingerprint,
            recipe,
            {"beir": str(Path(collection.path).resolve()), "split": split, "queries": sorted(judged)},
        )
        for split, judged in collection.qrels.items()
    }
    scores = {split: cache.get(key) for split, key in keys.items()}
    missing = [split for split, value in scores.items() if value is None]
    if missing:
        document_embedder = DualEncoderDocumentEmbedder.from_encoder(encoder, batch_size=32, progress_bar=False)
        text_embedder = DualEncoderTextEmbedder.from_encoder(encoder, batch_size=32)
        store = qdrant_document_store(
            encoder.recipe, embedding_dim=encoder.embedding_dim, location=":memory:", index="zero-shot"
        )
        for split in missing:  # the second split reuses the index (same fingerprint)
            result = evaluate(
                document_embedder,
                text_embedder,
                store,
                collection,
                split,
                top_k=100,
                measures=tuple(JUDGED_MEASURES),
                progress_bar=False,
            )
            scores[split] = {name: round(100 * result.metrics[measure], 3) for measure, name in JUDGED_MEASURES.items()}
            cache.put(keys[split], scores[split], {"model": str(model), "recipe": recipe.name, "split": split})
        store.close()
    return scores
