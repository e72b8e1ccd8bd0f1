"""Fine-tune a checkpoint on SciFact train through a recipe (SimLM's by default); evaluate on SciFact test.

    .venv/bin/python -m benchmarks.train_scifact --data ../shared/data/scifact --output /tmp/simlm-scifact
    .venv/bin/python -m benchmarks.train_scifact --recipe minilm --output /tmp/minilm-scifact  # MiniLM's own reading

1. Evaluate the starting model read through ``--recipe`` (default ``simlm``: [CLS], (title, text) pairs,
   32/144 tokens; ``minilm``: mean pooling, 256 tokens) on the test split through the evaluator (corpus
   indexed into embedded Qdrant).
2. Mine hard negatives for the train queries with the starting model from that same index.
3. Fine-tune with InfoNCE over in-batch and mined negatives (``--temperature``: the recipe's, 0.02
   for ``simlm`` and 0.05 for ``minilm``, unless given), for ``--epochs``, or for a wall-clock
   ``--budget-minutes`` (:mod:`benchmarks.time_budget`).
4. Evaluate the fine-tuned output directory on the test split through the embedders, which read its
   saved recipe. Prints a table and writes ``benchmark.json`` in the output directory.

``--cache DIR`` keeps the corpus vectors in an embedded Qdrant folder there (reused while the
fingerprint of weights, recipe and corpus matches, so the starting model's evaluation is encoded
once) and the mined negatives of each model (``mined-<fingerprint>-<start>-<stop>.jsonl``).
``--dev-queries N`` holds N train queries out of training (a fixed draw, whatever ``--seed``) as a
``dev`` split, evaluated from the same index as test: SciFact has no dev split, and settings are
chosen on it rather than on test.
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
from benchmarks.fine_tuning import CPU_TRAINING, Evaluation, mine, with_dev_split
from benchmarks.time_budget import TimeBudget
from simlm_haystack.evaluation import load_beir
from simlm_haystack.training import LOSSES, DualEncoderTrainingArguments, build_trainer, load_training_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument(
        "--recipe", default="simlm", help="how the model is read and trained (default simlm; minilm: MiniLM's own)"
    )
    add_data_argument(parser)
    parser.add_argument("--output", default="/tmp/simlm-scifact")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--budget-minutes", type=float, help="train for this wall time instead of --epochs")
    parser.add_argument("--learning-rate", type=float, default=4e-5)
    parser.add_argument("--warmup", type=float, default=0.1, help="share of the steps (or of the budget)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--negatives", type=int, default=1)
    parser.add_argument("--loss", default="infonce", choices=tuple(LOSSES), help="the training loss")
    parser.add_argument("--temperature", type=float, help="InfoNCE temperature (default: the recipe's)")
    parser.add_argument("--ranks", type=int, nargs=2, default=(3, 50), help="mining window (start, stop)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dev-queries", type=int, default=0, help="train queries held out as a dev split")
    parser.add_argument("--cache", type=Path, help="folder for reusable corpus vectors and mined negatives")
    parser.add_argument("--precision", default="fast", help="evaluation precision (fast: same maths as exact)")
    parser.add_argument(
        "--mined", help="train on this mined JSONL from an earlier run: skips the before-evaluation and the mining"
    )
    arguments = parser.parse_args()
    logging.getLogger("haystack").setLevel(logging.ERROR)
    output = Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    if arguments.cache:
        arguments.cache.mkdir(parents=True, exist_ok=True)
    splits = ["test", "dev"] if arguments.dev_queries else ["test"]
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(arguments).items()},
        "load_average": {"start": load_average()},
    }
    started = time.perf_counter()
    timings: dict[str, float] = {}

    collection = with_dev_split(load_beir(arguments.data, splits=["train", "test"]), arguments.dev_queries)
    before = None
    if arguments.mined:
        mined = load_training_jsonl(arguments.mined)
    else:
        evaluation = Evaluation(arguments.model, arguments.recipe, arguments.cache, arguments.precision)
        before = evaluation.run(collection, splits)
        timings["evaluate_before_s"] = time.perf_counter() - started
        mined, reused = mine(
            evaluation, collection, tuple(arguments.ranks), arguments.cache, output / "train-mined.jsonl"
        )
        evaluation.close()
        timings["mine_s"] = time.perf_counter() - started - sum(timings.values())
        report["mined_from_cache"] = reused
    train_ids = set(collection.split("train"))
    mined = [example for example in mined if example.query_id in train_ids]  # the dev queries stay out

    model_dir = output / "model"
    budget = arguments.budget_minutes
    args = DualEncoderTrainingArguments(
        output_dir=str(model_dir),
        loss=arguments.loss,
        temperature=arguments.temperature,
        n_negatives=arguments.negatives,
        per_device_train_batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate,
        num_train_epochs=1000 if budget else arguments.epochs,
        warmup_steps=0 if budget else arguments.warmup,
        lr_scheduler_type="constant" if budget else "linear",
        weight_decay=0.01,
        seed=arguments.seed,
        **CPU_TRAINING,
    )
    report["load_average"]["train_start"] = load_average()
    train_started = time.perf_counter()
    trainer = build_trainer(arguments.model, mined, args, recipe=arguments.recipe)
    if budget:
        trainer.add_callback(TimeBudget(train_started + 60 * budget, warmup=arguments.warmup))
    trainer.train()
    trainer.save_model(str(model_dir))
    timings["train_s"] = time.perf_counter() - train_started
    report["load_average"]["train_end"] = load_average()

    evaluation = Evaluation(str(model_dir), None, None, arguments.precision)  # recipe read from the output dir
    after = evaluation.run(collection, splits)
    evaluation.close()
    timings["evaluate_after_s"] = time.perf_counter() - started - sum(timings.values())
    timings["total_s"] = time.perf_counter() - started
    report["load_average"]["end"] = load_average()

    report.update(
        train_queries=len(mined),
        negatives_per_query=sum(len(e.negatives) for e in mined) / len(mined),
        temperature=trainer.loss.temperature,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch,
        seconds_per_step=round(timings["train_s"] / max(trainer.state.global_step, 1), 2),
        before={split: result["metrics"] for split, result in before.items()} if before else None,
        after={split: result["metrics"] for split, result in after.items()},
        evaluations={"before": before, "after": after},
        timings={key: round(value, 1) for key, value in timings.items()},
        log=trainer.state.log_history,
    )
    (output / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| model | split | nDCG@10 | MRR@10 | R@100 |\n|---|---|---:|---:|---:|")
    for label, metrics in (("starting model (before)", report["before"]), ("fine-tuned (after)", report["after"])):
        for split, values in (metrics or {}).items():
            print(f"| {label} | {split} | {values['nDCG@10']:.2f} | {values['RR@10']:.2f} | {values['R@100']:.2f} |")
    minutes = timings["total_s"] / 60
    print(f"\nsteps {trainer.state.global_step}, wall time {minutes:.1f} min: {json.dumps(report['timings'])}")


if __name__ == "__main__":
    main()
