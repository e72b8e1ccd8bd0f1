"""Pre-train all-MiniLM-L6-v2 (``simlm`` recipe) on SciFact's corpus alone, then fine-tune it as
``benchmarks/train_scifact.py`` does, and compare with fine-tuning alone.

    .venv/bin/python benchmarks/pretrain_scifact.py --data /work/shared/data/scifact --output /tmp/pretrain-scifact

For each method (``simlm``: replaced-LM with the bottleneck decoder, its generator trained first on
the corpus offline (``--generator corpus``; or ``unigram``, or a masked LM); ``contrastive`` and
``generative``: query-as-context with each passage's title as its query, the passage read without it):

1. pre-train on ``corpus.jsonl`` only (no query, no judgement is read);
2. run ``benchmarks/train_scifact.py`` on the output, unchanged, in a subprocess: its "before" is
   the zero-shot nDCG@10 on the test split after pre-training (through the evaluator), then it mines
   hard negatives with that model, fine-tunes on the train qrels and evaluates the test split again.

``--pretrain-minutes M`` stops each pre-training by wall time (``time_budget.TimeBudget``: warm-up
and linear decay over the time, not the steps; no checkpoints then, a stopped stage starts again);
``--set METHOD.FIELD=VALUE`` overrides a ``PretrainingArguments`` field (e.g. ``simlm.learning_rate=1e-4``),
and ``--tag`` names the run (``pretrain-<method><tag>``) so that several settings of one method sit
side by side. ``--cache`` is passed to ``train_scifact.py`` (corpus vectors and mined negatives reused).

Fine-tuning alone is the same script on the base model (``--baseline-results FILE`` reuses a measured
run instead, e.g. ``benchmarks/results/train_scifact.json``). Every stage is timed; ``results.json``
in the output folder is rewritten after each, and a re-run skips the stages it already holds (a
stopped pre-training resumes from its last checkpoint). ``--slice N`` builds a small collection (the
first N documents and the queries that judge only them) for a smoke test.
"""

from __future__ import annotations

import argparse
import json
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

from transformers.trainer_utils import get_last_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_budget import TimeBudget

from simlm_haystack.pretraining import PretrainingArguments, build_pretrainer, pairs_from_field, read_passages
from simlm_haystack.recipes import RECIPE_FILE

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HERE = Path(__file__).resolve().parent
METHODS = {
    "simlm": {"method": "simlm"},
    "contrastive": {"method": "query-as-context", "qc_variant": "contrastive"},
    "generative": {"method": "query-as-context", "qc_variant": "generative"},
}


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return lscpu.split("Model name:")[-1].splitlines()[0].strip() if "Model name:" in lscpu else platform.processor()


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


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def pretrain_method(name: str, model: str, corpus: Path, output: Path, options: argparse.Namespace) -> dict:
    """Pre-train (or resume, or skip if done); returns steps, seconds and the logged losses."""
    if (
        (output / RECIPE_FILE).is_file()
        and (output / "config.json").is_file()
        and (output / "pretraining.json").is_file()
    ):
        return json.loads((output / "pretraining.json").read_text())
    settings = dict(METHODS[name])
    if name == "simlm":
        settings.update(generator=options.generator, generator_steps=options.generator_steps)
    if name == "contrastive" and options.gradcache_chunk_size:
        settings["gradcache_chunk_size"] = options.gradcache_chunk_size
    settings.update(options.overrides.get(name, {}))
    budget = options.pretrain_minutes
    schedule = (
        {"max_steps": 10**6, "lr_scheduler_type": "constant", "save_strategy": "no"}
        if budget
        else {
            "max_steps": options.steps.get(name, options.max_steps),
            "save_strategy": "steps",
            "save_steps": options.save_steps,
            "save_total_limit": 1,
        }
    )
    args = PretrainingArguments(
        output_dir=str(output),
        per_device_train_batch_size=options.batch_size,
        logging_steps=options.logging_steps,
        seed=options.seed,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        **schedule,
        **settings,
    )
    passages = read_passages(corpus)
    data = {"passages": passages} if name == "simlm" else {"pairs": pairs_from_field(passages, "title")}
    started = time.perf_counter()
    load_start = os.getloadavg()
    trainer = build_pretrainer(model, args, recipe="simlm", **data)
    resume = get_last_checkpoint(str(output)) if output.is_dir() and not budget else None
    if budget:
        # The generator (--generator corpus) is trained inside build_pretrainer, so it is inside the budget too.
        trainer.add_callback(
            TimeBudget(started + 60 * budget, warmup=args.warmup_steps if args.warmup_steps < 1 else 0.1)
        )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_encoder(output)
    seconds = time.perf_counter() - started
    report = {
        "steps": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "resumed_from": resume,
        "steps_per_second": round(trainer.state.global_step / seconds, 4),
        "passages": len(trainer.train_dataset),
        "budget_minutes": budget,
        "load_average": [load_start, os.getloadavg()],
        "arguments": {
            "batch_size": args.per_device_train_batch_size,
            "learning_rate": args.learning_rate,
            "warmup": args.warmup_steps,
            "weight_decay": args.weight_decay,
            **settings,
        },
        "log": [entry for entry in trainer.state.log_history if "loss" in entry],
    }
    (output / "pretraining.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


FINE_TUNE_KEYS = ("before", "after", "timings", "steps", "arguments", "load_average", "seconds_per_step")


def fine_tune(model: str, data: Path, output: Path, extra: list[str]) -> dict:
    """``benchmarks/train_scifact.py`` on ``model``, as it is; returns its benchmark.json."""
    result = output / "benchmark.json"
    if not result.is_file():
        command = [sys.executable, str(HERE / "train_scifact.py"), "--model", model, "--data", str(data)]
        subprocess.run([*command, "--output", str(output), *extra], check=True)
    report = json.loads(result.read_text())
    return {key: report.get(key) for key in FINE_TUNE_KEYS}


def test_ndcg(metrics: dict | None) -> str:
    """nDCG@10 on test, from either layout of train_scifact.py's report (per split, or test only)."""
    if not metrics:
        return "-"
    return f"{metrics.get('test', metrics)['nDCG@10']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/scifact"))
    parser.add_argument("--output", type=Path, default=Path("/tmp/pretrain-scifact"))
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--max-steps", type=int, default=100, help="pre-training steps per method")
    parser.add_argument(
        "--steps", nargs="*", default=[], metavar="METHOD=N", help="per-method steps, e.g. simlm=60 generative=150"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="pre-training passages per step")
    parser.add_argument("--generator", default="corpus", help="simlm's generator (offline: corpus or unigram)")
    parser.add_argument("--generator-steps", type=int, default=100, help="--generator corpus: its training steps")
    parser.add_argument("--gradcache-chunk-size", type=int, default=None, help="contrastive: GradCache chunks")
    parser.add_argument("--save-steps", type=int, default=25, help="checkpoint every N steps (a stop resumes)")
    parser.add_argument("--logging-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--baseline-results", type=Path, help="a train_scifact.py benchmark.json for fine-tuning alone")
    parser.add_argument("--finetune-args", default="", help="extra train_scifact.py arguments, e.g. '--epochs 0.1'")
    parser.add_argument("--slice", type=int, help="smoke test: only the first N documents (and their queries)")
    parser.add_argument("--pretrain-minutes", type=float, help="stop each pre-training by wall time instead of steps")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="METHOD.FIELD=VALUE", help="PretrainingArguments overrides"
    )
    parser.add_argument("--tag", default="", help="suffix of the output folders and result names of this run")
    parser.add_argument("--cache", type=Path, help="train_scifact.py --cache (corpus vectors, mined negatives)")
    parser.add_argument(
        "--pretrain-only", action="store_true", help="stop after pre-training (a re-run without it fine-tunes)"
    )
    options = parser.parse_args()
    options.steps = {key: int(value) for key, value in (item.split("=") for item in options.steps)}
    options.overrides = {}
    for item in options.set:
        target, value = item.split("=", 1)
        method, field = target.split(".", 1)
        options.overrides.setdefault(method, {})[field] = parse_value(value)
    output: Path = options.output
    output.mkdir(parents=True, exist_ok=True)
    data = write_slice(options.data, output / "data-slice", options.slice) if options.slice else options.data
    extra = shlex.split(options.finetune_args) + (["--cache", str(options.cache)] if options.cache else [])
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        arguments={key: str(value) if isinstance(value, Path) else value for key, value in vars(options).items()},
    )
    results.setdefault("load_average", []).append(os.getloadavg())
    results.setdefault("methods", {})

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    if "baseline" not in results:
        if options.baseline_results:
            baseline = json.loads(options.baseline_results.read_text())
            results["baseline"] = {key: baseline[key] for key in ("before", "after", "timings", "steps", "arguments")}
            results["baseline"]["source"] = str(options.baseline_results)
        else:
            results["baseline"] = fine_tune(options.model, data, output / "finetune-baseline", extra)
        save()
    for name in options.methods:
        entry = results["methods"].setdefault(name + options.tag, {})
        pretrained = output / f"pretrain-{name}{options.tag}"
        if "pretrain" not in entry:
            entry["pretrain"] = pretrain_method(name, options.model, data / "corpus.jsonl", pretrained, options)
            save()
        if "fine_tune" not in entry and not options.pretrain_only:
            entry["fine_tune"] = fine_tune(str(pretrained), data, output / f"finetune-{name}{options.tag}", extra)
            save()
    results["load_average"].append(os.getloadavg())
    save()

    print("\n| model | zero-shot test nDCG@10 | fine-tuned test nDCG@10 | pre-train min | fine-tune min |")
    print("|---|---:|---:|---:|---:|")
    baseline = results["baseline"]
    print(
        f"| {options.model} (fine-tuning alone) | {test_ndcg(baseline['before'])} | "
        f"{test_ndcg(baseline['after'])} | - | {baseline['timings']['total_s'] / 60:.0f} |"
    )
    for name, entry in results["methods"].items():
        tuned = entry.get("fine_tune")
        if tuned is None:
            continue
        print(
            f"| + {name} pre-training ({entry['pretrain']['steps']} steps) | {test_ndcg(tuned['before'])} | "
            f"{test_ndcg(tuned['after'])} | {entry['pretrain']['seconds'] / 60:.0f} | "
            f"{tuned['timings']['total_s'] / 60:.0f} |"
        )
    print(f"\nresults: {results_path}")


if __name__ == "__main__":
    main()
