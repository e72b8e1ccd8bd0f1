"""Pre-train one configuration on SciFact's corpus alone and measure what it gave, with and without labels.

    PYTHONPATH=. .venv/bin/python benchmarks/pretrain_scifact.py --queries title --output /tmp/pre/title
    PYTHONPATH=. .venv/bin/python benchmarks/pretrain_scifact.py --queries inverse-cloze --output /tmp/pre/ict \\
        --cache /tmp/pre/cache --epochs 1 --batch-size 32 --set learning_rate=5e-5 temperature=0.05

One run is one configuration, through the package's own code path (:func:`simlm_haystack.pretraining.run.run`,
what ``simlm-haystack pretrain`` calls):

1. the corpus is SciFact's ``corpus.jsonl`` (5,183 abstracts; no query, no judgement is read), with its
   titles, or without them (``--titles ignore``, the default for every query source but ``title``: the
   pseudo-queries then come from the abstracts alone, as for a corpus that has no titles);
2. ``--heldout-share`` of the (pseudo-query, passage) pairs are held out of training; the starting
   model is scored on them (MRR@10 of each held-out pseudo-query finding its passage among the whole
   corpus) read its own way (``minilm`` for all-MiniLM-L6-v2) and, if ``--recipe`` names another
   reading, read that way too; and zero-shot nDCG@10 on SciFact **test** and on a **dev** split of
   ``--dev-queries`` train queries (the same fixed draw as ``train_scifact.py --dev-queries``: settings
   are chosen on dev and on the label-free check, never on test), both from one index of the corpus
   (:func:`simlm_haystack.evaluation.evaluate`, in-memory Qdrant, our embedders, as
   :class:`~simlm_haystack.training.RetrievalEvaluator` measures);
3. pre-training (``--max-steps``, ``--epochs`` or ``--pretrain-minutes`` of wall time);
4. the result is scored the same ways; optionally (``--fine-tune``) it is then fine-tuned and
   evaluated by ``benchmarks/train_scifact.py`` (as BENCHMARKS.md's fine-tuning, through the recipe
   pre-trained; one run per ``--seeds``).

``--cache DIR`` keeps the starting model's scores (keyed by its weights, the recipe and the exact
check), so a campaign measures the start once. ``--set FIELD=VALUE`` sets any field of
``PretrainingArguments`` or ``PretrainingDataArguments`` (``--set freeze_layers=3 qc_mask_rate=0.15``).
``--slice N`` builds a small collection (the first N documents, the queries that judge only them) for a
smoke test. The result (``OUTPUT/result.json``): the configuration, machine, loads, timings, seconds per
step, the logged losses and the package's report (``pretraining_report.json``: every reading's scores,
the verdict), and ``judged``: the start's and the result's test and dev scores. ``--campaign-log FILE``
adds the run's summary to a JSON list there under ``--name`` (replacing an entry of that name), so a
campaign of runs keeps one record that an interruption does not lose. Issue 12's runs in BENCHMARKS.md
used this script as it was at commit 66998d0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from time_budget import TimeBudget
from transformers.utils import logging as transformers_logging

from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.evaluation import BeirCollection, evaluate, load_beir
from simlm_haystack.pretraining import PretrainingArguments, PretrainingDataArguments
from simlm_haystack.pretraining.heldout import ScoreCache, encoder_fingerprint, fresh_encoder
from simlm_haystack.pretraining.report import own_recipe
from simlm_haystack.pretraining.run import run
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe
from simlm_haystack.training.evaluator import MEASURES as JUDGED_MEASURES

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "scifact"  # ../shared/data/scifact from the repository
QUERY_SOURCES = ("title", "inverse-cloze", "cropping", "both")
#: BENCHMARKS.md's tuned fine-tuning (Issue 12: 70.26 / 70.71 test nDCG@10 for fine-tuning alone).
TUNED_FINE_TUNING = (
    "--epochs 4 --learning-rate 1e-4 --batch-size 16 --negatives 1 --dev-queries 200 --loss full-contrastive"
)
FIELDS = {field.name for cls in (PretrainingArguments, PretrainingDataArguments) for field in dataclasses.fields(cls)}


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return lscpu.split("Model name:")[-1].splitlines()[0].strip() if "Model name:" in lscpu else platform.processor()


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def write_slice(data: Path, output: Path, size: int) -> Path:
    """The first ``size`` documents, and every query whose judged documents are all among them."""
    documents = (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:size]
    kept = {json.loads(line)["_id"] for line in documents}
    output.mkdir(parents=True, exist_ok=True)
    (output / "corpus.jsonl").write_text("\n".join(documents) + "\n", encoding="utf-8")
    (output / "qrels").mkdir(exist_ok=True)
    queries: set[str] = set()
    for split in ("train", "test"):
        header, *rows = (data / "qrels" / f"{split}.tsv").read_text().splitlines()
        judged: dict[str, set[str]] = {}
        for row in rows:
            query, document, _ = row.split("\t")
            judged.setdefault(query, set()).add(document)
        complete = {query for query, documents in judged.items() if documents <= kept}
        keep = [row for row in rows if row.split("\t")[0] in complete]
        (output / "qrels" / f"{split}.tsv").write_text("\n".join([header, *keep]) + "\n")
        queries |= complete
    lines = [line for line in (data / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in queries]
    (output / "queries.jsonl").write_text("\n".join(lines) + "\n")
    return output


def corpus_without_titles(corpus: Path, output: Path) -> Path:
    """The corpus as a collection without titles would be: every line without its ``title``."""
    lines = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            record.pop("title", None)
            lines.append(json.dumps(record, ensure_ascii=False))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def fine_tune(model: str, data: Path, output: Path, extra: list[str], seed: int) -> dict:
    """``benchmarks/train_scifact.py`` on ``model``, as it is; returns its before/after metrics."""
    result = output / "benchmark.json"
    if not result.is_file():
        command = [sys.executable, str(HERE / "train_scifact.py"), "--model", model, "--data", str(data)]
        subprocess.run([*command, "--output", str(output), "--seed", str(seed), *extra], check=True)
    report = json.loads(result.read_text())
    return {key: report.get(key) for key in ("before", "after", "timings", "steps", "seconds_per_step")}


def judged_collection(data: Path, dev_queries: int) -> BeirCollection:
    """SciFact's test split and a ``dev`` split of ``dev_queries`` train queries (``train_scifact.py``'s draw)."""
    from train_scifact import with_dev_split  # the one definition of the dev draw

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


def log_run(path: Path, name: str, result: dict) -> None:
    """Add (or replace) this run's summary in the campaign's JSON list."""
    entries = json.loads(path.read_text()) if path.is_file() else []
    report = result["report"]
    start = report.get("start_own") or report.get("start_trained") or {}
    summary = {
        "name": name,
        "date": result["date"],
        "command": result["command"],
        "configuration": result["configuration"],
        "steps": result["steps"],
        "epochs": result["epochs"],
        "training_pairs": result["training_pairs"],
        "seconds_per_step": result["seconds_per_step"],
        "pretraining_minutes": round(report["timings"].get("pretraining_seconds", 0.0) / 60, 2),
        "setup_seconds": result["setup_seconds"],
        "total_minutes": round(result["seconds"] / 60, 2),
        "load_average": result["load_average"],
        "check": report.get("check"),
        "heldout": {"start": start.get("heldout"), "result": (report.get("result") or {}).get("heldout")},
        "judged": result.get("judged"),
        "verdict": report.get("verdict"),
        "last_losses": result["log"][-3:],
        "fine_tune": result.get("fine_tune"),
    }
    entries = [entry for entry in entries if entry.get("name") != name] + [summary]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--recipe", help="the reading pre-trained (default: the model's own, minilm for MiniLM)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (default: SciFact)")
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
        "--dev-queries", type=int, default=200, help="train queries drawn as the dev split (train_scifact.py's draw)"
    )
    parser.add_argument("--campaign-log", type=Path, help="JSON list of run summaries to add this run to")
    parser.add_argument("--name", help="this run's name in --campaign-log (default: the output folder's name)")
    parser.add_argument("--slice", type=int, help="smoke test: only the first N documents (and their queries)")
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--fine-tune", action="store_true", help="then fine-tune with train_scifact.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7], help="fine-tuning seeds")
    parser.add_argument(
        "--finetune-args",
        default=TUNED_FINE_TUNING,
        help="train_scifact.py arguments (default: BENCHMARKS.md's tuned fine-tuning)",
    )
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("haystack").setLevel(logging.ERROR)
    transformers_logging.disable_progress_bar()

    output: Path = options.output
    output.mkdir(parents=True, exist_ok=True)
    data = write_slice(options.data, output / "data-slice", options.slice) if options.slice else options.data
    titles = options.titles or ("use" if options.queries == "title" else "ignore")
    if options.queries == "title" and titles == "ignore":
        parser.error("--queries title needs the titles (--titles use)")
    corpus = data / "corpus.jsonl"
    if titles == "ignore":
        corpus = corpus_without_titles(corpus, output / "corpus-without-titles.jsonl")

    overrides: dict[str, object] = {}
    for item in options.set:
        name, value = item.split("=", 1)
        if name not in FIELDS:
            parser.error(f"--set {name}: not a field of PretrainingArguments or PretrainingDataArguments")
        overrides[name] = parse_value(value)
    query_source = {"query_field": "title"} if options.queries == "title" else {"pseudo_queries": options.queries}
    data_fields = {field.name for field in dataclasses.fields(PretrainingDataArguments)}
    data_arguments = PretrainingDataArguments(
        model=options.model,
        recipe=options.recipe,
        corpus=str(corpus),
        heldout_share=options.heldout_share,
        heldout_corpus_size=options.heldout_corpus_size,
        eval_data=None,  # judged below, test and dev from one index of the corpus
        score_cache=str(options.cache) if options.cache else None,
        **query_source,
        **{name: value for name, value in overrides.items() if name in data_fields},
    )
    budget = options.pretrain_minutes
    schedule = (
        {"max_steps": 10**6, "lr_scheduler_type": "constant"}
        if budget
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

    result: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
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
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    name = options.name or output.name
    if options.campaign_log:
        log_run(options.campaign_log, name, result)
    if options.fine_tune:
        # Fine-tuned through the reading pre-trained (train_scifact.py's default is simlm).
        finetune_args = [*shlex.split(options.finetune_args), "--recipe", report.trained_recipe.name]
        result["fine_tune"] = {}
        for seed in options.seeds:
            tuned = fine_tune(args.output_dir, data, output / f"fine-tune-seed{seed}", finetune_args, seed)
            result["fine_tune"][str(seed)] = tuned
            result_path.write_text(json.dumps(result, indent=2) + "\n")
            if options.campaign_log:
                log_run(options.campaign_log, name, result)

    print(f"\n{steps} steps ({result['seconds_per_step']} s each), {training_seconds / 60:.1f} min of training")
    for line in report.lines():
        print(line)
    for role in ("start", "result"):
        for split, values in (result["judged"].get(role) or {}).items():
            print(f"  {role} {split}: nDCG@10 {values['nDCG@10']:.2f}, MRR@10 {values['MRR@10']:.2f}")
    print(f"result: {result_path}")


class BudgetFromTrainStart(TimeBudget):
    """:class:`TimeBudget` whose deadline is set when training begins (the checks before it are off the clock)."""

    def __init__(self, seconds: float, warmup: float = 0.1) -> None:
        super().__init__(deadline=0.0, warmup=warmup)
        self.seconds = seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.deadline = time.perf_counter() + self.seconds
        return super().on_train_begin(args, state, control, **kwargs)


if __name__ == "__main__":
    main()
