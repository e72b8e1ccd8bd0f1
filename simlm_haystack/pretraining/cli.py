"""``simlm-haystack pretrain``: arguments from the dataclasses (or one JSON file), errors as one line.

    simlm-haystack pretrain --method simlm --model M --recipe simlm --corpus corpus.jsonl \\
        --generator unigram --output OUT --max-steps 1000 --per-device-train-batch-size 32
    simlm-haystack pretrain config.json      # the same arguments as a JSON object
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from transformers import HfArgumentParser

from simlm_haystack.errors import DataError, SimlmHaystackError
from simlm_haystack.pretraining.arguments import PretrainingArguments, PretrainingDataArguments
from simlm_haystack.pretraining.corpus import CorpusPassage, read_passages
from simlm_haystack.pretraining.pairs import QueryPassagePair, generate_queries, pairs_from_field, read_pairs
from simlm_haystack.pretraining.trainer import PretrainingTrainer, pretrain

EXIT_USAGE = 2
GENERATED_QUERIES = "generated_queries.jsonl"


def build_parser() -> HfArgumentParser:
    return HfArgumentParser((PretrainingDataArguments, PretrainingArguments), prog="simlm-haystack pretrain")


def parse(argv: Sequence[str]) -> tuple[PretrainingDataArguments, PretrainingArguments]:
    parser = build_parser()
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])  # type: ignore[return-value]
    return parser.parse_args_into_dataclasses(args=list(argv))  # type: ignore[return-value]


def load_pairs(
    data: PretrainingDataArguments, args: PretrainingArguments, passages: list[CorpusPassage] | None
) -> list[QueryPassagePair]:
    """The pairs from the one source given: --pairs, --query-generator or --query-field."""
    sources = [name for name in ("pairs", "query_generator", "query_field") if getattr(data, name)]
    if len(sources) != 1:
        raise DataError(
            "query-as-context needs exactly one source of queries: --pairs FILE, --query-generator MODEL "
            f"(with --corpus) or --query-field FIELD (with --corpus); got {len(sources)}"
        )
    if data.pairs:
        return read_pairs(data.pairs)
    if passages is None:
        raise DataError(f"--{sources[0].replace('_', '-')} needs --corpus")
    if data.query_field:
        return pairs_from_field(passages, data.query_field)
    return generate_queries(
        data.query_generator,
        passages,
        data.queries_file or Path(args.output_dir) / GENERATED_QUERIES,
        queries_per_passage=data.queries_per_passage,
        top_k=data.query_top_k,
        top_p=data.query_top_p,
        max_length=data.query_max_length,
        prefix=data.query_prefix,
        seed=args.seed,
        progress_bar=not args.disable_tqdm,
    )


def run(data: PretrainingDataArguments, args: PretrainingArguments) -> PretrainingTrainer:
    """Read and check the data, then pre-train (or resume) and save the encoder."""
    passages = read_passages(data.corpus) if data.corpus else None
    pairs = None
    if args.method == "query-as-context":
        pairs = load_pairs(data, args, passages)
    elif data.pairs or data.query_field or data.query_generator:
        raise DataError("--pairs, --query-field and --query-generator are for --method query-as-context")
    elif passages is None:
        raise DataError("--method simlm needs --corpus")
    resume: str | bool | None = args.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("true", "false"):
        resume = resume.lower() == "true" or None
    return pretrain(data.model, args, passages=passages, pairs=pairs, recipe=data.recipe, resume_from_checkpoint=resume)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``simlm-haystack pretrain`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.getLogger("haystack").setLevel(logging.ERROR)
    try:
        data, args = parse(argv)
        trainer = run(data, args)
    except SystemExit as exit_:  # argparse: --help, or a malformed command line (it printed why)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except (SimlmHaystackError, OSError, ValueError) as error:
        print(f"simlm-haystack pretrain: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("simlm-haystack pretrain: interrupted (resume with --resume true)", file=sys.stderr)
        return 130
    if not trainer.is_world_process_zero():
        return 0
    method = args.method if args.method == "simlm" else f"{args.method} ({args.qc_variant})"
    print(
        f"Pre-trained {data.model} with {method} for {trainer.state.global_step} steps on "
        f"{len(trainer.train_dataset)} passages; encoder, tokenizer and recipe in {args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
