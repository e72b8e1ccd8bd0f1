"""The command line: parses arguments, calls the library, prints tables and progress.

Every expected failure (bad input, a model that cannot be loaded, a collection that does not fit)
is a :class:`~simlm_haystack.errors.SimlmHaystackError`, printed as one line on stderr with exit
code 2; anything else is a bug and shows its traceback. ``--verbose`` shows library logs and the
traceback of every error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from simlm_haystack.cli.arguments import (
    DEFAULT_PATH_ENGINE,
    add_model_arguments,
    add_retrieval_argument,
    add_store_arguments,
    positive_int,
)
from simlm_haystack.cli.distributed import add_ray_arguments
from simlm_haystack.cli.retrieval import cmd_eval, cmd_index, cmd_push, cmd_search, shown_query
from simlm_haystack.cli.serving import add_serve_parser
from simlm_haystack.cli.training import cmd_pretrain, cmd_train
from simlm_haystack.errors import SimlmHaystackError

EXIT_USAGE = 2

__all__ = ["DEFAULT_PATH_ENGINE", "EXIT_USAGE", "build_parser", "main", "shown_query"]


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simlm-haystack", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show library logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="encode a JSONL / BEIR corpus.jsonl into Qdrant")
    index.add_argument("corpus", help='JSONL with "_id"/"id", "title" and "text"/"content" per line')
    add_model_arguments(index)
    add_store_arguments(index)
    add_retrieval_argument(index, fusion=False)
    index.add_argument("--chunk-size", type=positive_int, default=1024, help="documents encoded and written at a time")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--reencode", action="store_true", help="encode every document again, even those already stored unchanged"
    )
    index.add_argument(
        "--reindex",
        action="store_true",
        help="delete what the collection holds first (e.g. documents of another model or recipe), then index",
    )
    add_ray_arguments(index)
    index.set_defaults(handler=cmd_index)

    search = commands.add_parser("search", help="top-k documents for one or more questions")
    search.add_argument("queries", nargs="+", help="the questions")
    add_model_arguments(search)
    add_store_arguments(search)
    add_retrieval_argument(search, fusion=True)
    search.add_argument("--top-k", type=positive_int, default=10)
    search.set_defaults(handler=cmd_search)

    evaluation = commands.add_parser("eval", help="nDCG@10, MRR@10 and recall of a model on a BEIR collection")
    add_model_arguments(evaluation)
    evaluation.add_argument("--data", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    evaluation.add_argument("--split", default="test", help="the qrels split to evaluate")
    evaluation.add_argument("--top-k", type=positive_int, default=1000, help="documents retrieved per query")
    evaluation.add_argument("--out", help="write the results as JSON to this file")
    evaluation.add_argument("--reindex", action="store_true", help="encode the corpus again even if it is indexed")
    evaluation.add_argument("--quiet", action="store_true", help="no progress bars")
    add_store_arguments(evaluation)
    add_retrieval_argument(evaluation, fusion=True)
    # No shared default collection: evaluating replaces what the collection holds (see cmd_eval). New eval
    # collections stay in local mode: exact search whatever the collection's size.
    evaluation.set_defaults(handler=cmd_eval, index=None, default_engine="local")

    push = commands.add_parser(
        "push", help="copy an embedded collection into a Qdrant server or cluster (vectors and payloads, resumable)"
    )
    push.add_argument("--qdrant-path", required=True, help="the embedded store's folder")
    push.add_argument("--index", default="Document", help="the collection to copy")
    push.add_argument("--qdrant-url", required=True, help="the target server or cluster (QDRANT_API_KEY for the key)")
    push.add_argument("--target-index", help="the collection name on the server (default: --index)")
    push.add_argument("--engine", choices=["edge", "local"], help="the embedded engine (default: detected)")
    push.add_argument("--shard-number", type=positive_int, help="shards of the new server collection")
    push.add_argument("--replication-factor", type=positive_int, help="replicas of the new server collection")
    push.add_argument("--batch-size", type=positive_int, default=256, help="points read, checked and written at a time")
    push.add_argument("--timeout", type=positive_int, default=60, help="seconds per request to the server")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(handler=cmd_push)

    add_serve_parser(commands)

    # The train flags are the training dataclasses' fields, parsed by HfArgumentParser in cmd_train.
    training = commands.add_parser(
        "train",
        help="fine-tune a dual encoder with its recipe (simlm-haystack train --help for its flags)",
        add_help=False,
    )
    training.set_defaults(handler=cmd_train)

    # Likewise the pretrain flags: the pre-training dataclasses' fields.
    pretraining = commands.add_parser(
        "pretrain",
        help="pre-train an encoder on an unlabeled corpus (simlm-haystack pretrain --help for its flags)",
        add_help=False,
    )
    pretraining.set_defaults(handler=cmd_pretrain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("train", "pretrain"):
        args.passthrough = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not args.verbose:
        logging.getLogger("haystack").setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    handler: Command = args.handler
    try:
        return handler(args)
    except SimlmHaystackError as error:
        if args.verbose:
            raise
        print(f"simlm-haystack {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"simlm-haystack {args.command}: interrupted", file=sys.stderr)
        return 130
