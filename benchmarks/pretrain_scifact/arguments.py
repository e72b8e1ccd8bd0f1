"""The command line of a pre-training run, and the package's pre-training arguments it makes."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import benchmarks.pretrain_scifact
from benchmarks.common import MODEL, add_data_argument
from simlm_haystack.pretraining import PretrainingArguments, PretrainingDataArguments

QUERY_SOURCES = ("title", "inverse-cloze", "cropping", "both")
#: BENCHMARKS.md's tuned fine-tuning (Issue 12: 70.26 / 70.71 test nDCG@10 for fine-tuning alone).
TUNED_FINE_TUNING = (
    "--epochs 4 --learning-rate 1e-4 --batch-size 16 --negatives 1 --dev-queries 200 --loss full-contrastive"
)
FIELDS = {field.name for cls in (PretrainingArguments, PretrainingDataArguments) for field in dataclasses.fields(cls)}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pretrain_scifact", description=benchmarks.pretrain_scifact.__doc__.splitlines()[0]
    )
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--recipe", help="the reading pre-trained (default: the model's own, minilm for MiniLM)")
    add_data_argument(parser, help_text="a BEIR folder (default: SciFact, %(default)s)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--method", choices=("query-as-context", "simlm"), default="query-as-context")
    parser.add_argument("--variant", choices=("contrastive", "generative"), default="contrastive")
    parser.add_argument(
        "--queries",
        choices=QUERY_SOURCES,
        default="title",
        help="pseudo-queries: the title, or cut from the abstract (with --method simlm: the check's queries only)",
    )
    parser.add_argument("--titles", choices=("use", "ignore"), help="default: use for --queries title, else ignore")
    parser.add_argument("--max-steps", type=int, default=-1, help="pre-training steps (default: --epochs)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--pretrain-minutes", type=float, help="stop by wall time instead (time-based lr schedule)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs (or passages) per step")
    parser.add_argument("--gradcache-chunk-size", type=int, help="contrastive: GradCache chunks (big batches)")
    parser.add_argument("--learning-rate", type=float, help="default: the method's")
    parser.add_argument("--temperature", type=float, help="contrastive: default the recipe's")
    parser.add_argument("--qc-mask-rate", type=float, help="masked-LM term's mask rate (default: the variant's)")
    parser.add_argument("--generator", default="corpus", help="simlm: corpus (trained first), unigram, or a model")
    parser.add_argument("--generator-steps", type=int, default=500, help="--generator corpus: its training steps")
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--freeze-layers", type=int, default=0)
    parser.add_argument("--heldout-share", type=float, default=0.05)
    parser.add_argument("--heldout-corpus-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="any pre-training argument")
    parser.add_argument("--cache", type=Path, help="score cache shared by runs (the start is measured once)")
    parser.add_argument("--no-judged", action="store_true", help="skip nDCG@10 (the label-free check only)")
    parser.add_argument(
        "--dev-queries",
        type=int,
        default=200,
        help="train queries drawn as the dev split (benchmarks.train_scifact's draw)",
    )
    parser.add_argument("--campaign-log", type=Path, help="JSON list of run summaries to add this run to")
    parser.add_argument("--name", help="this run's name in --campaign-log (default: the output folder's name)")
    parser.add_argument("--slice", type=int, help="smoke test: only the first N documents (and their queries)")
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--fine-tune", action="store_true", help="then fine-tune with benchmarks.train_scifact")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7], help="fine-tuning seeds")
    parser.add_argument(
        "--finetune-args",
        default=TUNED_FINE_TUNING,
        help="benchmarks.train_scifact arguments (default: BENCHMARKS.md's tuned fine-tuning)",
    )
    return parser


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_overrides(options: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, object]:
    """The ``--set FIELD=VALUE`` settings, each checked to be a field of the pre-training arguments."""
    given: dict[str, object] = {}
    for item in options.set:
        name, value = item.split("=", 1)
        if name not in FIELDS:
            parser.error(f"--set {name}: not a field of PretrainingArguments or PretrainingDataArguments")
        given[name] = parse_value(value)
    return given


def pretraining_arguments(
    options: argparse.Namespace, corpus: Path, output: Path, overrides: dict[str, object]
) -> tuple[PretrainingDataArguments, PretrainingArguments, dict[str, Any]]:
    """The package's data and training arguments for this run, and the training settings the result records."""
    query_source = {"query_field": "title"} if options.queries == "title" else {"pseudo_queries": options.queries}
    data_fields = {field.name for field in dataclasses.fields(PretrainingDataArguments)}
    data_arguments = PretrainingDataArguments(
        model=options.model,
        recipe=options.recipe,
        corpus=str(corpus),
        heldout_share=options.heldout_share,
        heldout_corpus_size=options.heldout_corpus_size,
        eval_data=None,  # judged apart, test and dev from one index of the corpus
        score_cache=str(options.cache) if options.cache else None,
        **query_source,
        **{name: value for name, value in overrides.items() if name in data_fields},
    )
    schedule = (
        {"max_steps": 10**6, "lr_scheduler_type": "constant"}
        if options.pretrain_minutes
        else {"max_steps": options.max_steps, "num_train_epochs": options.epochs}
    )
    method = {"method": options.method, "qc_variant": options.variant}
    if options.method == "simlm":
        method.update(generator=options.generator, generator_steps=options.generator_steps)
    training_settings = {
        **method,
        "per_device_train_batch_size": options.batch_size,
        "gradcache_chunk_size": options.gradcache_chunk_size,
        "learning_rate": options.learning_rate,
        "temperature": options.temperature,
        "qc_mask_rate": options.qc_mask_rate,
        "freeze_embeddings": options.freeze_embeddings,
        "freeze_layers": options.freeze_layers,
        **{name: value for name, value in overrides.items() if name not in data_fields},
    }
    args = PretrainingArguments(
        output_dir=str(output / "model"),
        save_strategy="no",
        logging_steps=options.logging_steps,
        seed=options.seed,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        **schedule,
        **training_settings,
    )
    return data_arguments, args, training_settings
