"""One pre-training run (``python -m benchmarks.pretrain_scifact``): the start's scores, pre-training, the
result's scores, the result file, and optionally fine-tuning."""

from __future__ import annotations

import logging
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers.utils import logging as transformers_logging

from benchmarks.common import cpu_model, load_average, running_module, write_results
from benchmarks.pretrain_scifact.arguments import parser, pretraining_arguments, set_overrides
from benchmarks.pretrain_scifact.campaign import fine_tune, log_run
from benchmarks.pretrain_scifact.collection_files import corpus_without_titles, write_slice
from benchmarks.pretrain_scifact.judged import judged_collection, judged_scores
from benchmarks.time_budget import BudgetFromTrainStart
from simlm_haystack.pretraining.heldout import ScoreCache
from simlm_haystack.pretraining.report import own_recipe
from simlm_haystack.pretraining.run import run
from simlm_haystack.recipe_resolution import resolve_recipe


def main() -> None:
    arguments = parser()
    options = arguments.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("haystack").setLevel(logging.ERROR)
    transformers_logging.disable_progress_bar()

    output = options.output
    output.mkdir(parents=True, exist_ok=True)
    data = write_slice(options.data, output / "data-slice", options.slice) if options.slice else options.data
    titles = options.titles or ("use" if options.queries == "title" else "ignore")
    if options.queries == "title" and titles == "ignore":
        arguments.error("--queries title needs the titles (--titles use)")
    corpus = data / "corpus.jsonl"
    if titles == "ignore":
        corpus = corpus_without_titles(corpus, output / "corpus-without-titles.jsonl")
    data_arguments, args, training_settings = pretraining_arguments(
        options, corpus, output, set_overrides(options, arguments)
    )
    budget = options.pretrain_minutes

    result: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, "-m", running_module(), *sys.argv[1:]]),
        "machine": cpu_model(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "configuration": {
            "model": options.model,
            "recipe": options.recipe,
            "queries": options.queries,
            "titles": titles,
            "corpus": str(corpus),
            "judged": None if options.no_judged else f"{data} (test, dev of {options.dev_queries} train queries)",
            **{key: value for key, value in training_settings.items()},
            "learning_rate": args.learning_rate,
            "qc_mask_rate": args.qc_mask_rate,
            "weight_decay": args.weight_decay,
            "warmup": args.warmup_steps,
            "epochs": None if budget or options.max_steps > 0 else options.epochs,
            "max_steps": options.max_steps if options.max_steps > 0 else None,
            "pretrain_minutes": budget,
            "seed": options.seed,
            "heldout_share": options.heldout_share,
            "heldout_corpus_size": options.heldout_corpus_size,
        },
        "load_average": {"start": load_average()},
    }
    callbacks = []
    if budget:
        # The deadline counts from the start of training: the checks of the start are not part of the budget,
        # and neither is the training of a --generator corpus (timed apart: setup_seconds).
        callbacks.append(BudgetFromTrainStart(60 * budget, warmup=args.warmup_steps if args.warmup_steps < 1 else 0.1))
    started = time.perf_counter()
    judged = None if options.no_judged else judged_collection(data, options.dev_queries)
    cache = ScoreCache(options.cache or output)
    result["judged"] = {}
    if judged is not None:
        start_recipe = own_recipe(options.model) or resolve_recipe(options.model, options.recipe)
        result["judged"]["start"] = judged_scores(options.model, start_recipe, judged, cache)
        result["judged"]["start_recipe"] = start_recipe.name
    result["load_average"]["train_start"] = load_average()
    outcome = run(data_arguments, args, callbacks=callbacks)
    trainer, report = outcome.trainer, outcome.report
    result["load_average"]["train_end"] = load_average()
    if judged is not None:
        result["judged"]["result"] = judged_scores(args.output_dir, report.trained_recipe, judged, cache)
        result["judged"]["result_recipe"] = report.trained_recipe.name
    result["load_average"]["end"] = load_average()
    steps = trainer.state.global_step
    training_seconds = report.timings.get("pretraining_seconds", 0.0)  # with the generator's training, if any
    train_runtime = next(
        (entry["train_runtime"] for entry in trainer.state.log_history if "train_runtime" in entry), training_seconds
    )
    result.update(
        seconds=round(time.perf_counter() - started, 1),
        steps=steps,
        epochs=trainer.state.epoch,
        training_pairs=len(trainer.train_dataset),
        seconds_per_step=round(train_runtime / steps, 2) if steps else None,
        # Building (a --generator corpus is trained there) and saving: pre-training time outside the Trainer's loop.
        setup_seconds=round(training_seconds - train_runtime, 1),
        report=report.to_dict(),
        log=[entry for entry in trainer.state.log_history if "loss" in entry],
    )
    result_path = output / "result.json"
    write_results(result_path, result)
    name = options.name or output.name
    if options.campaign_log:
        log_run(options.campaign_log, name, result)
    if options.fine_tune:
        # Fine-tuned through the reading pre-trained (benchmarks.train_scifact's default is simlm).
        finetune_args = [*shlex.split(options.finetune_args), "--recipe", report.trained_recipe.name]
        result["fine_tune"] = {}
        for seed in options.seeds:
            tuned = fine_tune(args.output_dir, data, output / f"fine-tune-seed{seed}", finetune_args, seed)
            result["fine_tune"][str(seed)] = tuned
            write_results(result_path, result)
            if options.campaign_log:
                log_run(options.campaign_log, name, result)

    print(f"\n{steps} steps ({result['seconds_per_step']} s each), {training_seconds / 60:.1f} min of training")
    for line in report.lines():
        print(line)
    for role in ("start", "result"):
        for split, values in (result["judged"].get(role) or {}).items():
            print(f"  {role} {split}: nDCG@10 {values['nDCG@10']:.2f}, MRR@10 {values['MRR@10']:.2f}")
    print(f"result: {result_path}")


if __name__ == "__main__":
    main()
