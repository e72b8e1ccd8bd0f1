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
from typing import Any

from simlm_haystack.backends import BACKENDS
from simlm_haystack.errors import SimlmHaystackError

EXIT_USAGE = 2


def _positive_int(value: str) -> int:
    """An argparse type: the components refuse 0 and negative sizes, so the command line does first."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {number}")
    return number


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id or local checkpoint directory")
    parser.add_argument("--recipe", help="recipe name (found from the model when omitted)")
    parser.add_argument(
        "--precision",
        choices=["exact", "fast", "bf16", "int8"],
        default="exact",
        help="exact (default), fast or bf16 on torch; int8 (quantised weights) on onnx",
    )
    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="torch",
        help="torch (default); onnx: the model exported once and run in ONNX Runtime; openvino: the same graph",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--local-files-only", action="store_true", help="never ask the Hugging Face Hub")


#: The embedded engine of a new collection under --qdrant-path: Qdrant Edge, by measurement (BENCHMARKS.md,
#: "Embedded scale"). An existing collection is opened with the engine that wrote it.
DEFAULT_PATH_ENGINE = "edge"


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--qdrant-path", default="qdrant_data", help="folder for embedded Qdrant (default)")
    where.add_argument("--qdrant-url", help="a Qdrant server or cluster, e.g. http://localhost:6333")
    parser.add_argument(
        "--engine",
        choices=["edge", "local"],
        help="embedded engine for --qdrant-path: Qdrant Edge (Rust, HNSW) or qdrant-client's local mode "
        f"(exact search in Python); default: the one holding the collection, else {DEFAULT_PATH_ENGINE}",
    )
    parser.add_argument("--index", default="Document", help="the Qdrant collection name")
    parser.add_argument("--shard-number", type=_positive_int, help="shards of a new collection (Qdrant cluster)")
    parser.add_argument(
        "--replication-factor", type=_positive_int, help="replicas of a new collection (Qdrant cluster)"
    )
    parser.add_argument(
        "--allow-other-encoder",
        action="store_true",
        help="use a collection filled by another model or recipe than --model/--recipe (refused without it: "
        "its vectors and this encoder's are not comparable)",
    )
    parser.set_defaults(default_engine=DEFAULT_PATH_ENGINE)


def store_from_args(args: argparse.Namespace, embedder: Any) -> Any:
    """The store the arguments describe, sized and distanced from ``embedder``: a Qdrant server for
    ``--qdrant-url``, else the embedded engine of ``--engine`` (or the one already holding the collection)."""
    from haystack.utils import Secret

    from simlm_haystack.stores import edge_document_store, qdrant_document_store
    from simlm_haystack.stores.edge.collection import engine_at

    cluster = {
        key: value
        for key, value in (("shard_number", args.shard_number), ("replication_factor", args.replication_factor))
        if value is not None
    }
    if args.qdrant_url:
        if args.engine:
            raise SimlmHaystackError("--engine chooses the embedded engine of --qdrant-path; --qdrant-url is a server")
        return qdrant_document_store(
            embedder,
            url=args.qdrant_url,
            index=args.index,
            api_key=Secret.from_env_var("QDRANT_API_KEY", strict=False),
            **cluster,
        )
    engine = args.engine or engine_at(args.qdrant_path, args.index) or args.default_engine
    if engine == "local":
        return qdrant_document_store(embedder, path=args.qdrant_path, index=args.index, **cluster)
    if cluster:
        raise SimlmHaystackError(
            "--shard-number and --replication-factor shape a server collection: use them with --qdrant-url, "
            "or with `simlm-haystack push` to copy this collection to a cluster"
        )
    return edge_document_store(embedder, path=args.qdrant_path, index=args.index)


def _embedder_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "recipe": args.recipe,
        "precision": args.precision,
        "backend": args.backend,
        "batch_size": args.batch_size,
        "local_files_only": args.local_files_only,
    }


def cmd_index(args: argparse.Namespace) -> int:
    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.corpus import count_lines, read_documents
    from simlm_haystack.indexing import index_documents

    if not os.path.isfile(args.corpus):
        raise SimlmHaystackError(f"{args.corpus}: no such file")
    embedder = DualEncoderDocumentEmbedder(**_embedder_kwargs(args), progress_bar=False)
    store = store_from_args(args, embedder)
    try:
        embedder.warm_up()
        before = store.count_documents()
        if args.reindex and before:
            store.delete_all_documents()  # an empty collection takes this encoder's record
        written = index_documents(
            read_documents(args.corpus),
            embedder,
            store,
            chunk_size=args.chunk_size,
            total=count_lines(args.corpus),
            progress_bar=not args.quiet,
            skip_existing=not args.reencode,
            allow_other_encoder=args.allow_other_encoder,
        )
        after = store.count_documents()
    finally:
        store.close()  # embedded Qdrant locks its folder until closed
    print(
        f"Wrote {written} documents from {args.corpus} into collection {store.index!r} "
        f"({after} in the collection, {before} before; "
        f"{embedder.embedding_dim}-d, {store.similarity}, recipe {embedder.recipe.name})"
    )
    return 0


#: How much of a query ``search`` prints back: a pasted document is shown by its start and length.
SHOWN_QUERY_CHARACTERS = 80


def shown_query(query: str) -> str:
    """``query`` as ``search`` prints it: whole when short, else its first characters, "…" and its length."""
    if len(query) <= SHOWN_QUERY_CHARACTERS:
        return query
    return f"{query[:SHOWN_QUERY_CHARACTERS]}… ({len(query)} characters)"


def cmd_search(args: argparse.Namespace) -> int:
    from simlm_haystack.components.pipelines import build_query_pipeline
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
    from simlm_haystack.encoding import check_queries

    check_queries(args.queries)  # before a model is loaded
    embedder = DualEncoderTextEmbedder(**_embedder_kwargs(args))
    store = store_from_args(args, embedder)
    try:
        if store.count_documents() == 0:
            raise SimlmHaystackError(f"Collection {store.index!r} is empty: run `simlm-haystack index` first")
        pipeline = build_query_pipeline(embedder, store, top_k=args.top_k, allow_other_encoder=args.allow_other_encoder)
        for query in args.queries:
            documents = pipeline.run({"text_embedder": {"text": query}})["retriever"]["documents"]
            print(f"\n{shown_query(query)}")
            for rank, document in enumerate(documents, start=1):
                title = document.meta.get("title") or (document.content or "")[:80]
                print(f"  {rank:>2}. {document.score:8.4f}  {document.id}  {title}")
    finally:
        store.close()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    import re
    from pathlib import Path

    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
    from simlm_haystack.errors import DataError
    from simlm_haystack.evaluation import evaluate, format_table, load_beir

    collection = load_beir(args.data, splits=[args.split])  # bad data fails before a model is loaded
    if args.out and not os.access(Path(args.out).resolve().parent, os.W_OK):
        raise DataError(f"{args.out}: cannot write the results there (no such folder, or not writable)")
    document_embedder = DualEncoderDocumentEmbedder(**_embedder_kwargs(args), progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(**_embedder_kwargs(args))
    if args.index is None:
        # Its own collection per data set, model and recipe: evaluating replaces what the collection holds.
        model_name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(args.model).name)
        args.index = f"eval-{collection.path.resolve().name}-{model_name}-{document_embedder.recipe.name}"
    store = store_from_args(args, document_embedder)
    try:
        result = evaluate(
            document_embedder,
            text_embedder,
            store,
            collection,
            args.split,
            top_k=args.top_k,
            reindex=args.reindex,
            progress_bar=not args.quiet,
            allow_other_encoder=args.allow_other_encoder,
        )
    finally:
        store.close()
    counts = result.counts
    print(f"{args.model} (recipe {result.recipe['name']}) on {collection.path} [{args.split}]")
    print(format_table([result], [result.recipe["name"]]))
    print(
        f"{counts['queries']} queries, {counts['documents']} documents, {counts['judgements']} judgements "
        f"({counts['judgements_of_missing_documents']} of documents not in the corpus); collection {store.index!r} "
        + ("reused" if result.reused_index else f"indexed in {result.timings['encode_documents_seconds']:.1f} s")
    )
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            raise DataError(f"{args.out}: cannot write the results ({error.strerror})") from None
        print(f"Wrote {args.out}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from qdrant_client import QdrantClient

    from simlm_haystack.stores.push import push_collection

    target = args.target_index or args.index
    client = QdrantClient(url=args.qdrant_url, api_key=os.environ.get("QDRANT_API_KEY") or None, timeout=args.timeout)
    try:
        report = push_collection(
            args.qdrant_path,
            args.index,
            client,
            target_index=target,
            engine=args.engine,
            shard_number=args.shard_number,
            replication_factor=args.replication_factor,
            batch_size=args.batch_size,
            progress_bar=not args.quiet,
        )
    finally:
        client.close()
    print(
        f"Pushed collection {args.index!r} from {args.qdrant_path} into {target!r} at {args.qdrant_url}: "
        f"{report.copied} points copied, {report.already_there} already there; the target holds "
        f"{report.target_points} points, the source {report.source_points}"
    )
    return 0


def parse_dataclass_arguments(
    dataclass_types: tuple[type, ...], argv: Sequence[str], *, prog: str, description: str
) -> tuple[Any, ...]:
    """The dataclasses from flags, or from one JSON file of their fields (``simlm-haystack train config.json``),
    as Tevatron and unilm/simlm read theirs. Every problem is a package error naming the file or the value."""
    import json
    from pathlib import Path

    from transformers import HfArgumentParser

    from simlm_haystack.errors import DataError

    parser = HfArgumentParser(
        dataclass_types,
        prog=prog,
        description=description + " Flags are accepted as --name_with_underscores or --name-with-dashes; "
        f"or pass a single JSON file of them: {prog} config.json",
    )
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = Path(argv[0])
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
        if not isinstance(config, dict):
            raise DataError(f"{path}: expected a JSON object of arguments")
        try:
            return parser.parse_dict(config)
        except (TypeError, ValueError) as error:  # unknown or missing keys, values the dataclasses refuse
            raise DataError(f"{path}: {error}") from None
    try:
        return parser.parse_args_into_dataclasses(list(argv))
    except ValueError as error:  # values the dataclasses refuse (TrainingArguments checks its own)
        raise SimlmHaystackError(str(error)) from None


def parse_train_arguments(argv: Sequence[str]) -> tuple[Any, ...]:
    """``(ModelArguments, DataArguments, DualEncoderTrainingArguments)``."""
    from simlm_haystack.training import DataArguments, DualEncoderTrainingArguments, ModelArguments

    return parse_dataclass_arguments(
        (ModelArguments, DataArguments, DualEncoderTrainingArguments),
        argv,
        prog="simlm-haystack train",
        description="Fine-tune a dual encoder with its recipe (see simlm_haystack.training).",
    )


def cmd_pretrain(args: argparse.Namespace) -> int:
    from simlm_haystack.pretraining import PretrainingArguments, PretrainingDataArguments
    from simlm_haystack.pretraining.run import run

    data, training_args = parse_dataclass_arguments(
        (PretrainingDataArguments, PretrainingArguments),
        args.passthrough,
        prog="simlm-haystack pretrain",
        description="Pre-train an encoder on an unlabeled corpus (see simlm_haystack.pretraining).",
    )
    trainer = run(data, training_args)
    if trainer.is_world_process_zero():
        method = training_args.method
        if method != "simlm":
            method += f" ({training_args.qc_variant})"
        print(
            f"Pre-trained {data.model} with {method} for {trainer.state.global_step} steps on "
            f"{len(trainer.train_dataset)} passages; encoder, tokenizer and recipe in {training_args.output_dir}"
        )
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

    model_args, data_args, training_args = parse_train_arguments(args.passthrough)
    # Every data problem is reported before a model is loaded.
    if Path(data_args.train).is_dir():
        collection = load_beir(data_args.train, splits=[data_args.split])
        examples, documents = load_beir_training(collection, data_args.split), collection.documents
    else:
        documents = read_corpus(data_args.corpus) if data_args.corpus else None
        corpus = {document.id: passage_from_document(document) for document in documents or []}
        examples = load_training_jsonl(data_args.train, corpus=corpus if documents is not None else None)
    evaluator = RetrievalEvaluator(data_args.eval, data_args.eval_split) if data_args.eval else None
    evaluating_by_default = training_args.eval_strategy == "no" and training_args.save_strategy in ("steps", "epoch")
    if evaluator is not None and evaluating_by_default:
        # --eval alone: evaluate at every checkpoint and keep the best one by nDCG@10.
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
        + (f"the best checkpoint ({best}, nDCG@10 {trainer.state.best_metric:.2f}) " if best else "the model ")
        + f"with its tokenizer and recipe to {output}"
    )
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simlm-haystack", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show library logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="encode a JSONL / BEIR corpus.jsonl into Qdrant")
    index.add_argument("corpus", help='JSONL with "_id"/"id", "title" and "text"/"content" per line')
    _add_model_arguments(index)
    _add_store_arguments(index)
    index.add_argument("--chunk-size", type=_positive_int, default=1024, help="documents encoded and written at a time")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--reencode", action="store_true", help="encode every document again, even those already stored unchanged"
    )
    index.add_argument(
        "--reindex",
        action="store_true",
        help="delete what the collection holds first (e.g. documents of another model or recipe), then index",
    )
    index.set_defaults(handler=cmd_index)

    search = commands.add_parser("search", help="top-k documents for one or more questions")
    search.add_argument("queries", nargs="+", help="the questions")
    _add_model_arguments(search)
    _add_store_arguments(search)
    search.add_argument("--top-k", type=_positive_int, default=10)
    search.set_defaults(handler=cmd_search)

    evaluation = commands.add_parser("eval", help="nDCG@10, MRR@10 and recall of a model on a BEIR collection")
    _add_model_arguments(evaluation)
    evaluation.add_argument("--data", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    evaluation.add_argument("--split", default="test", help="the qrels split to evaluate")
    evaluation.add_argument("--top-k", type=_positive_int, default=1000, help="documents retrieved per query")
    evaluation.add_argument("--out", help="write the results as JSON to this file")
    evaluation.add_argument("--reindex", action="store_true", help="encode the corpus again even if it is indexed")
    evaluation.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_store_arguments(evaluation)
    # No shared default collection: evaluating replaces what the collection holds (see cmd_eval). New eval
    # collections stay in local mode until evaluate() searches through components.pipelines.embedding_retriever.
    evaluation.set_defaults(handler=cmd_eval, index=None, default_engine="local")

    push = commands.add_parser(
        "push", help="copy an embedded collection into a Qdrant server or cluster (vectors and payloads, resumable)"
    )
    push.add_argument("--qdrant-path", required=True, help="the embedded store's folder")
    push.add_argument("--index", default="Document", help="the collection to copy")
    push.add_argument("--qdrant-url", required=True, help="the target server or cluster (QDRANT_API_KEY for the key)")
    push.add_argument("--target-index", help="the collection name on the server (default: --index)")
    push.add_argument("--engine", choices=["edge", "local"], help="the embedded engine (default: detected)")
    push.add_argument("--shard-number", type=_positive_int, help="shards of the new server collection")
    push.add_argument("--replication-factor", type=_positive_int, help="replicas of the new server collection")
    push.add_argument(
        "--batch-size", type=_positive_int, default=256, help="points read, checked and written at a time"
    )
    push.add_argument("--timeout", type=_positive_int, default=60, help="seconds per request to the server")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(handler=cmd_push)

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


if __name__ == "__main__":
    sys.exit(main())
