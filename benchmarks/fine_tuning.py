"""What the fine-tuning benchmarks share: one model's evaluation on SciFact, the dev split drawn from train,
and the mining of hard negatives (``train_scifact``, ``evaluate_scifact_model``, ``finetune_budget``,
``pretrain_scifact``).

The dev draw lives here alone so that every benchmark that holds train queries out holds out the same ones.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path

from benchmarks.common import load_average
from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.evaluation import BeirCollection, evaluate
from simlm_haystack.training import (
    TrainingExample,
    load_beir_training,
    load_training_jsonl,
    mine_hard_negatives,
    save_training_jsonl,
)

MEASURES = ("nDCG@10", "RR@10", "R@100")
#: The Trainer settings every fine-tuning benchmark shares: on the CPU, a loss logged every 5 steps, no checkpoint
#: saved on the way, no progress bar and no experiment tracker (the result file is the record).
CPU_TRAINING = {"logging_steps": 5, "save_strategy": "no", "use_cpu": True, "report_to": [], "disable_tqdm": True}
DEV_SEED = 1234  # the dev draw does not move with --seed


def with_dev_split(collection: BeirCollection, size: int) -> BeirCollection:
    """``size`` train queries moved to a ``dev`` split (a fixed random draw)."""
    if not size:
        return collection
    train = collection.split("train")
    dev_ids = set(random.Random(DEV_SEED).sample(sorted(train), size))
    qrels = dict(collection.qrels)
    qrels["train"] = {query: judged for query, judged in train.items() if query not in dev_ids}
    qrels["dev"] = {query: judged for query, judged in train.items() if query in dev_ids}
    return replace(collection, qrels=qrels)


class Evaluation:
    """One model's corpus index (embedded Qdrant under ``cache``, or in memory) and its evaluations."""

    def __init__(self, model: str, recipe: str | None, cache: Path | None, precision: str) -> None:
        self.document_embedder = DualEncoderDocumentEmbedder(
            model=model, recipe=recipe, precision=precision, progress_bar=False
        )
        self.text_embedder = DualEncoderTextEmbedder(model=model, recipe=recipe, precision=precision)
        if cache is None:
            self.store = qdrant_document_store(self.document_embedder, location=":memory:")
        else:
            index = (
                "m"
                + hashlib.blake2b(
                    str(Path(model).resolve() if Path(model).exists() else model).encode(), digest_size=8
                ).hexdigest()
            )
            self.store = qdrant_document_store(self.document_embedder, path=str(cache / "qdrant"), index=index)
        self.fingerprint = ""

    def run(self, collection: BeirCollection, splits: list[str]) -> dict[str, dict]:
        """Metrics (percent), timings and the load average of each split; the corpus is encoded at most once."""
        results = {}
        for split in splits:
            load_before = load_average()
            result = evaluate(
                self.document_embedder,
                self.text_embedder,
                self.store,
                collection,
                split,
                top_k=100,
                measures=MEASURES,
                progress_bar=False,
            )
            self.fingerprint = result.fingerprint
            results[split] = {
                "metrics": {name: round(100 * value, 3) for name, value in result.metrics.items()},
                "queries": result.counts["queries"],
                "timings": result.timings,
                "reused_index": result.reused_index,
                "load_average": [load_before, load_average()],
            }
            print(f"{self.document_embedder.model} {split}: {json.dumps(results[split]['metrics'])}", flush=True)
        return results

    def close(self) -> None:
        self.store.close()


def mine(
    evaluation: Evaluation, collection: BeirCollection, ranks: tuple[int, int], cache: Path | None, out: Path
) -> tuple[list[TrainingExample], bool]:
    """The starting model's hard negatives for every train query (cached by fingerprint and ranks), and whether
    they came from the cache."""
    cached = cache / f"mined-{evaluation.fingerprint}-{ranks[0]}-{ranks[1]}.jsonl" if cache else None
    if cached is not None and cached.is_file():
        return load_training_jsonl(cached), True
    examples = load_beir_training(collection, split="train")
    mined = mine_hard_negatives(
        evaluation.document_embedder,
        evaluation.text_embedder,
        evaluation.store,
        examples,
        collection.documents,
        ranks=ranks,
    )
    save_training_jsonl(mined, cached or out)
    return load_training_jsonl(cached or out), False  # what a user would train from
