"""From parsed arguments to a pre-trained encoder: read and check the data, then pre-train or resume.

``simlm-haystack pretrain`` (``simlm_haystack.cli.training``) parses the arguments and calls :func:`run`.
"""

from __future__ import annotations

from pathlib import Path

from simlm_haystack.errors import DataError
from simlm_haystack.pretraining.arguments import PretrainingArguments, PretrainingDataArguments
from simlm_haystack.pretraining.corpus import CorpusPassage, read_passages
from simlm_haystack.pretraining.pairs import QueryPassagePair, generate_queries, pairs_from_field, read_pairs
from simlm_haystack.pretraining.trainer import PretrainingTrainer, pretrain

GENERATED_QUERIES = "generated_queries.jsonl"


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
