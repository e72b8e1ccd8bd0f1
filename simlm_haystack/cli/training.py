"""``train`` and ``pretrain``: their arguments come from the dataclasses (see :mod:`.arguments`)."""

from __future__ import annotations

import argparse

from simlm_haystack.cli.arguments import parse_dataclass_arguments, parse_train_arguments


def cmd_pretrain(args: argparse.Namespace) -> int:
    from simlm_haystack.pretraining import PretrainingArguments, PretrainingDataArguments
    from simlm_haystack.pretraining.run import run

    data, training_args = parse_dataclass_arguments(
        (PretrainingDataArguments, PretrainingArguments),
        args.passthrough,
        prog="simlm-haystack pretrain",
        description="Pre-train an encoder on an unlabeled corpus (see simlm_haystack.pretraining).",
    )
    outcome = run(data, training_args)
    trainer = outcome.trainer
    if trainer.is_world_process_zero():
        method = training_args.method
        if method != "simlm":
            method += f" ({training_args.qc_variant})"
        print(
            f"Pre-trained {data.model} (read as {outcome.report.trained_recipe.name!r}) with {method} for "
            f"{trainer.state.global_step} steps on {len(trainer.train_dataset)} passages; encoder, tokenizer and "
            f"recipe in {training_args.output_dir}"
        )
        # The report ends with the verdict: the last thing the user reads is whether it helped.
        for line in outcome.report.lines():
            print(line)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from simlm_haystack.errors import DataError
    from simlm_haystack.evaluation import load_beir
    from simlm_haystack.evaluation.data import read_corpus
    from simlm_haystack.training import (
        RetrievalEvaluator,
        load_beir_training,
        load_training_jsonl,
        mine_with_model,
        passage_from_document,
        train,
    )
    from simlm_haystack.training.dev_split import DEV_SPLIT, carve_dev_split

    model_args, data_args, training_args = parse_train_arguments(args.passthrough)
    # Every data problem is reported before a model is loaded.
    evaluator = None
    if Path(data_args.train).is_dir():
        collection = load_beir(data_args.train, splits=[data_args.split])
        collection = carve_dev_split(collection, data_args.split, data_args.dev_queries, seed=data_args.dev_seed)
        examples, documents = load_beir_training(collection, data_args.split), collection.documents
        if DEV_SPLIT in collection.qrels and data_args.dev_queries:
            evaluator = RetrievalEvaluator(collection, DEV_SPLIT)
            print(
                f"Holding {len(collection.split(DEV_SPLIT))} training queries out as the dev split (seed "
                f"{data_args.dev_seed}); the checkpoint is chosen on them"
            )
    else:
        if data_args.dev_queries:
            raise DataError("--dev_queries needs a BEIR folder as --train (its queries are drawn from its qrels)")
        documents = read_corpus(data_args.corpus) if data_args.corpus else None
        corpus = {document.id: passage_from_document(document) for document in documents or []}
        examples = load_training_jsonl(data_args.train, corpus=corpus if documents is not None else None)
    # --eval is reported once at the end, never chosen on; loaded now so that a bad folder fails before training.
    reporter = RetrievalEvaluator(data_args.eval, data_args.eval_split) if data_args.eval else None
    evaluating_by_default = training_args.eval_strategy == "no" and training_args.save_strategy in ("steps", "epoch")
    if evaluator is not None and evaluating_by_default:
        # --dev_queries: evaluate the dev split at every checkpoint and keep the best one by nDCG@10.
        training_args = dataclasses.replace(
            training_args,
            eval_strategy=training_args.save_strategy.value,
            eval_steps=training_args.save_steps,
            load_best_model_at_end=True,
            metric_for_best_model=training_args.metric_for_best_model or "nDCG@10",
        )
    output = Path(training_args.output_dir)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{output}: cannot create the output directory ({error.strerror})") from None
    if data_args.mine_negatives:
        if documents is None:
            raise DataError("--mine_negatives needs a corpus: a BEIR folder as --train, or --corpus")
        examples = mine_with_model(
            model_args.model,
            examples,
            documents,
            recipe=model_args.recipe,
            ranks=(data_args.mine_ranks[0], data_args.mine_ranks[1]),
            margin=data_args.mine_margin,
            save_to=output / "train-mined.jsonl",
            progress_bar=not training_args.disable_tqdm,
        )
        print(f"Mined hard negatives into {output / 'train-mined.jsonl'}")
    resume = training_args.resume_from_checkpoint
    trainer = train(
        model_args.model,
        examples,
        training_args,
        recipe=model_args.recipe,
        evaluator=evaluator,
        resume_from_checkpoint=True if resume == "last" else resume,
    )
    best = trainer.state.best_model_checkpoint
    print(
        f"Trained {trainer.state.global_step} steps on {len(examples)} queries; saved "
        + (f"the best checkpoint on dev ({best}, nDCG@10 {trainer.state.best_metric:.2f}) " if best else "the model ")
        + f"with its tokenizer and recipe to {output}"
    )
    if reporter is not None and trainer.is_world_process_zero():
        metrics = reporter(trainer._encoder_in_training())
        print(
            f"On {data_args.eval} ({data_args.eval_split}; reported, not used to choose): "
            + ", ".join(f"{name} {value:.2f}" for name, value in metrics.items())
        )
    return 0
