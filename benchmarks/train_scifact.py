"""Fine-tune all-MiniLM-L6-v2 with the SimLM recipe on SciFact train; evaluate on SciFact test.

    .venv/bin/python benchmarks/train_scifact.py --data /work/shared/data/scifact --output /tmp/simlm-scifact

1. Evaluate the base model with the ``simlm`` recipe ([CLS], (title, text) pairs, 32/144 tokens)
   on the test split through the evaluator (corpus indexed into an in-memory Qdrant).
2. Mine hard negatives for the train queries with the base model from that same index.
3. Fine-tune with InfoNCE (t = 0.02) over in-batch and mined negatives.
4. Evaluate the fine-tuned output directory on the test split through the embedders, which read its
   saved recipe. Prints a table and writes ``benchmark.json`` in the output directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.evaluation import evaluate, load_beir
from simlm_haystack.training import (
    DualEncoderTrainingArguments,
    load_beir_training,
    load_training_jsonl,
    mine_hard_negatives,
    save_training_jsonl,
    train,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MEASURES = ("nDCG@10", "RR@10", "R@100")


def evaluate_model(model: str, collection, recipe: str | None) -> tuple[dict[str, float], object, object, object]:
    document_embedder = DualEncoderDocumentEmbedder(model=model, recipe=recipe, progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(model=model, recipe=recipe, progress_bar=False)
    store = qdrant_document_store(document_embedder, location=":memory:")
    result = evaluate(document_embedder, text_embedder, store, collection, "test", top_k=100, measures=MEASURES)
    metrics = {name: 100 * value for name, value in result.metrics.items()}
    print(f"{model}: {json.dumps(metrics)} (encode {result.timings['encode_documents_seconds']:.0f} s)", flush=True)
    return metrics, document_embedder, text_embedder, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--data", default="/work/shared/data/scifact")
    parser.add_argument("--output", default="/tmp/simlm-scifact")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--learning-rate", type=float, default=4e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--negatives", type=int, default=1)
    parser.add_argument("--ranks", type=int, nargs=2, default=(3, 50), help="mining window (start, stop)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--mined", help="train on this mined JSONL from an earlier run: skips the before-evaluation and the mining"
    )
    arguments = parser.parse_args()
    logging.getLogger("haystack").setLevel(logging.ERROR)
    output = Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    collection = load_beir(arguments.data, splits=["train", "test"])
    before: dict[str, float] | None = None
    if arguments.mined:
        mined = load_training_jsonl(arguments.mined)
    else:
        before, document_embedder, text_embedder, store = evaluate_model(arguments.model, collection, "simlm")
        timings["evaluate_before_s"] = time.perf_counter() - started
        mined_path = output / "train-mined.jsonl"
        examples = load_beir_training(collection, split="train")
        mined = mine_hard_negatives(
            document_embedder, text_embedder, store, examples, collection.documents, ranks=tuple(arguments.ranks)
        )
        save_training_jsonl(mined, mined_path)
        mined = load_training_jsonl(mined_path)  # what a user would train from
        timings["mine_s"] = time.perf_counter() - started - sum(timings.values())

    model_dir = output / "model"
    args = DualEncoderTrainingArguments(
        output_dir=str(model_dir),
        loss="infonce",
        n_negatives=arguments.negatives,
        per_device_train_batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate,
        num_train_epochs=arguments.epochs,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        weight_decay=0.01,
        seed=arguments.seed,
        logging_steps=5,
        save_strategy="no",
        use_cpu=True,
        report_to=[],
    )
    trainer = train(arguments.model, mined, args, recipe="simlm")
    timings["train_s"] = time.perf_counter() - started - sum(timings.values())

    after, *_ = evaluate_model(str(model_dir), collection, None)  # recipe read from simlm_haystack_recipe.json
    timings["evaluate_after_s"] = time.perf_counter() - started - sum(timings.values())
    timings["total_s"] = time.perf_counter() - started

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": subprocess.run(["lscpu"], capture_output=True, text=True)
        .stdout.split("Model name:")[-1]
        .splitlines()[0]
        .strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "arguments": vars(arguments),
        "train_queries": len(mined),
        "negatives_per_query": sum(len(e.negatives) for e in mined) / len(mined),
        "steps": trainer.state.global_step,
        "before": before,
        "after": after,
        "timings": {key: round(value, 1) for key, value in timings.items()},
        "log": trainer.state.log_history,
    }
    (output / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| model | nDCG@10 | MRR@10 | R@100 |\n|---|---:|---:|---:|")
    for label, metrics in (("all-MiniLM-L6-v2, simlm recipe (before)", before), ("fine-tuned (after)", after)):
        if metrics is None:
            continue
        print(f"| {label} | {metrics['nDCG@10']:.2f} | {metrics['RR@10']:.2f} | {metrics['R@100']:.2f} |")
    print(f"\nwall time {timings['total_s'] / 60:.1f} min: {json.dumps(report['timings'])}")


if __name__ == "__main__":
    main()
