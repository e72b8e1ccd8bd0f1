"""sentence-transformers' trainer vs ours, from the same all-MiniLM-L6-v2, for the same wall-clock budget.

    .venv/bin/pip install datasets   # sentence-transformers' trainer needs it; nothing else here does
    .venv/bin/python -m benchmarks.finetune_budget --budget-minutes 6 --output /tmp/finetune-budget
    # --data DIR: another BEIR collection with train and test qrels (default ../shared/data/scifact)

Both fine-tune on SciFact train (809 queries) and are evaluated on SciFact test (300 queries) through
our evaluator (embedded Qdrant, top 100, ir-measures); both are stopped by the same
:class:`benchmarks.time_budget.TimeBudget` (time-based warm-up and linear decay, stop at the deadline). The
budget clock starts before the model is loaded and covers everything up to the saved model;
evaluation is outside it.

- **sentence-transformers**: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss``
  (scale 20, in-batch negatives), one (query, "title text") pair per relevant judgement (919), the
  ``no_duplicates`` batch sampler, the model's own reading (mean pooling, 256 tokens); evaluated
  with our ``minilm`` recipe, which is that reading.
- **ours**: :func:`simlm_haystack.training.build_trainer` with ``--ours-recipe`` (``simlm``: [CLS],
  (title, text) pairs, 32/144 tokens; ``minilm``: the model's own reading, as sentence-transformers')
  and ``--ours-loss`` (``infonce`` or SimLM's ``full-contrastive``). With ``--ours-negatives N > 0``
  the hard negatives are mined first with the starting model in that reading (corpus encoded into
  an in-memory Qdrant, nothing cached), inside the budget; with 0, in-batch negatives only and no mining.

Writes ``finetune_budget.json`` (merged with earlier runs in the same output folder, one entry per
``--label``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import MODEL, add_data_argument, cpu_model, load_average
from benchmarks.fine_tuning import CPU_TRAINING, Evaluation, mine
from benchmarks.time_budget import TimeBudget
from simlm_haystack.evaluation import load_beir
from simlm_haystack.models import local_model_path
from simlm_haystack.training import DualEncoderTrainingArguments, build_trainer, load_beir_training


def train_sentence_transformers(collection, output: Path, options: argparse.Namespace) -> dict:
    # Imported here: only this trainer needs datasets (not installed by the project's extras), so --help and
    # `--trainers ours` run without it.
    from datasets import Dataset
    from datasets.table import InMemoryTable
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    started = time.perf_counter()
    deadline = started + 60 * options.budget_minutes
    model = SentenceTransformer(str(local_model_path(MODEL)), device="cpu")
    documents = {document.id: document for document in collection.documents}
    anchors, positives = [], []
    for query_id, judged in collection.split("train").items():
        for document_id, relevance in judged.items():
            if relevance > 0:
                document = documents[document_id]
                anchors.append(collection.queries[query_id])
                positives.append(f"{document.meta.get('title') or ''} {document.content}".strip())
    # A given fingerprint: datasets' own (a dill hash of the Arrow table) fails with pyarrow 24 ("Can't pickle
    # MonthDayNano").
    table = InMemoryTable.from_pydict({"anchor": anchors, "positive": positives})
    dataset = Dataset(table, fingerprint="scifact-train-pairs")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output),
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.st_learning_rate,
        num_train_epochs=1000,
        lr_scheduler_type="constant",
        warmup_steps=0,
        batch_sampler="no_duplicates",
        seed=options.seed,
        **CPU_TRAINING,
    )
    loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.add_callback(TimeBudget(deadline, warmup=options.warmup))
    trainer.train()
    model.save(str(output))
    return {
        "pairs": len(dataset),
        "learning_rate": options.st_learning_rate,
        "scale": loss.scale,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "budget_s": round(time.perf_counter() - started, 1),
        "log": [entry for entry in trainer.state.log_history if "loss" in entry],
    }


def train_ours(collection, output: Path, options: argparse.Namespace) -> dict:
    started = time.perf_counter()
    deadline = started + 60 * options.budget_minutes
    mine_seconds = 0.0
    if options.ours_negatives:
        evaluation = Evaluation(MODEL, options.ours_recipe, None, "fast")
        examples, _ = mine(evaluation, collection, tuple(options.ranks), None, output / "train-mined.jsonl")
        evaluation.close()
        mine_seconds = time.perf_counter() - started
    else:
        examples = load_beir_training(collection, split="train")
    args = DualEncoderTrainingArguments(
        output_dir=str(output),
        loss=options.ours_loss,
        temperature=options.temperature,
        n_negatives=options.ours_negatives,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        num_train_epochs=1000,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.01,
        seed=options.seed,
        **CPU_TRAINING,
    )
    trainer = build_trainer(MODEL, examples, args, recipe=options.ours_recipe)
    trainer.add_callback(TimeBudget(deadline, warmup=options.warmup))
    trainer.train()
    trainer.save_model(str(output))
    return {
        "queries": len(examples),
        "recipe": options.ours_recipe,
        "loss": options.ours_loss,
        "negatives": options.ours_negatives,
        "mining_ranks": list(options.ranks) if options.ours_negatives else None,
        "mine_s": round(mine_seconds, 1),
        "learning_rate": options.learning_rate,
        "temperature": trainer.loss.temperature,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "budget_s": round(time.perf_counter() - started, 1),
        "log": [entry for entry in trainer.state.log_history if "loss" in entry],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--output", type=Path, default=Path("/tmp/finetune-budget"))
    parser.add_argument("--label", default="run", help="name of this comparison in the results file")
    parser.add_argument("--budget-minutes", type=float, default=6)
    parser.add_argument("--trainers", nargs="+", choices=("sentence-transformers", "ours"), default=None)
    parser.add_argument("--batch-size", type=int, default=32, help="queries per batch, both trainers")
    parser.add_argument("--warmup", type=float, default=0.1, help="share of the budget, both trainers")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--st-learning-rate", type=float, default=5e-5, help="the Trainer's default")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="ours")
    parser.add_argument("--temperature", type=float, default=None, help="ours (default: the recipe's)")
    parser.add_argument("--ours-recipe", default="simlm", help="ours: how the model reads texts (simlm or minilm)")
    parser.add_argument("--ours-loss", default="infonce", help="ours: infonce or full-contrastive")
    parser.add_argument("--ours-negatives", type=int, default=0, help="ours: mined negatives per query (0: none)")
    parser.add_argument("--ranks", type=int, nargs=2, default=(3, 50), help="ours: mining window")
    options = parser.parse_args()
    trainers = options.trainers or ["sentence-transformers", "ours"]
    logging.getLogger("haystack").setLevel(logging.ERROR)
    options.output.mkdir(parents=True, exist_ok=True)
    results_path = options.output / "finetune_budget.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    collection = load_beir(options.data, splits=["train", "test"])
    for name in trainers:
        output = options.output / f"{options.label}-{name}"
        entry = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "data": str(options.data),
            "budget_minutes": options.budget_minutes,
            "batch_size": options.batch_size,
            "warmup": options.warmup,
            "seed": options.seed,
            "load_average": {"start": load_average()},
        }
        train = train_sentence_transformers if name == "sentence-transformers" else train_ours
        entry["training"] = train(collection, output, options)
        entry["load_average"]["trained"] = load_average()
        evaluation = Evaluation(str(output), "minilm" if name == "sentence-transformers" else None, None, "fast")
        entry["test"] = evaluation.run(collection, ["test"])["test"]
        evaluation.close()
        entry["load_average"]["end"] = load_average()
        results.setdefault(options.label, {})[name] = entry
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| label | trainer | budget min | steps | nDCG@10 | MRR@10 | R@100 |\n|---|---|---:|---:|---:|---:|---:|")
    for label, entries in results.items():
        for name, entry in entries.items():
            metrics = entry["test"]["metrics"]
            print(
                f"| {label} | {name} | {entry['budget_minutes']:g} | {entry['training']['steps']} | "
                f"{metrics['nDCG@10']:.2f} | {metrics['RR@10']:.2f} | {metrics['R@100']:.2f} |"
            )


if __name__ == "__main__":
    main()
