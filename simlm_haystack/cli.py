"""The command line: parses arguments, calls the library, prints tables and progress.

Every expected failure (bad input, a model that cannot be loaded, a collection that does not fit)
is one line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from simlm_haystack.errors import SimlmHaystackError

EXIT_USAGE = 2


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id or local checkpoint directory")
    parser.add_argument("--recipe", help="recipe name (found from the model when omitted)")
    parser.add_argument("--precision", choices=["exact", "fast", "bf16"], default="exact")
    parser.add_argument("--batch-size", type=int, default=32)
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
    parser.add_argument("--shard-number", type=int, help="shards of a new collection (Qdrant cluster)")
    parser.add_argument("--replication-factor", type=int, help="replicas of a new collection (Qdrant cluster)")
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
        written = index_documents(
            read_documents(args.corpus),
            embedder,
            store,
            chunk_size=args.chunk_size,
            total=count_lines(args.corpus),
            progress_bar=not args.quiet,
            skip_existing=not args.reencode,
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


def cmd_search(args: argparse.Namespace) -> int:
    from simlm_haystack.components.pipelines import build_query_pipeline
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder

    embedder = DualEncoderTextEmbedder(**_embedder_kwargs(args))
    store = store_from_args(args, embedder)
    try:
        if store.count_documents() == 0:
            raise SimlmHaystackError(f"Collection {store.index!r} is empty: run `simlm-haystack index` first")
        pipeline = build_query_pipeline(embedder, store, top_k=args.top_k)
        for query in args.queries:
            documents = pipeline.run({"text_embedder": {"text": query}})["retriever"]["documents"]
            print(f"\n{query}")
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
    from simlm_haystack.evaluation import evaluate, format_table, load_beir

    collection = load_beir(args.data, splits=[args.split])  # bad data fails before a model is loaded
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
        Path(args.out).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
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


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simlm_haystack.evaluation import load_beir
    from simlm_haystack.evaluation.data import read_corpus
    from simlm_haystack.training import (
        DualEncoderTrainingArguments,
        load_beir_training,
        load_training_jsonl,
        mine_hard_negatives,
        passage_from_document,
        save_training_jsonl,
        train,
    )

    # Every data problem is reported before a model is loaded.
    if Path(args.train).is_dir():
        collection = load_beir(args.train, splits=[args.split])
        examples, documents = load_beir_training(collection, args.split), collection.documents
    else:
        documents = read_corpus(args.corpus) if args.corpus else None
        corpus = {document.id: passage_from_document(document) for document in documents or []}
        examples = load_training_jsonl(args.train, corpus=corpus if documents is not None else None)
    eval_collection = load_beir(args.eval, splits=[args.eval_split]) if args.eval else None
    if args.mine_negatives:
        if documents is None:
            raise SimlmHaystackError("--mine-negatives needs a corpus: a BEIR folder as --train, or --corpus")
        from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
        from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
        from simlm_haystack.stores import qdrant_document_store

        document_embedder = DualEncoderDocumentEmbedder(model=args.model, recipe=args.recipe, progress_bar=False)
        text_embedder = DualEncoderTextEmbedder(model=args.model, recipe=args.recipe, progress_bar=False)
        store = qdrant_document_store(document_embedder, location=":memory:")
        examples = mine_hard_negatives(
            document_embedder,
            text_embedder,
            store,
            examples,
            documents,
            ranks=tuple(args.mine_ranks),
            margin=args.mine_margin,
            progress_bar=not args.quiet,
        )
        print(f"Mined hard negatives into {save_training_jsonl(examples, Path(args.output) / 'train-mined.jsonl')}")
    evaluating = eval_collection is not None
    training_args = DualEncoderTrainingArguments(
        output_dir=args.output,
        loss=args.loss,
        n_negatives=args.negatives,
        gradcache_chunk_size=args.gradcache_chunk_size,
        tas_clusters=args.tas_clusters,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        bf16=args.bf16,
        seed=args.seed,
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=args.save_steps,
        eval_split=args.eval_split,
        load_best_model_at_end=evaluating,
        metric_for_best_model="nDCG@10" if evaluating else None,
        logging_steps=args.logging_steps,
        disable_tqdm=args.quiet,
        report_to=[],
    )
    trainer = train(
        args.model,
        examples,
        training_args,
        recipe=args.recipe,
        eval_collection=eval_collection,
        resume_from_checkpoint=args.resume,
    )
    best = trainer.state.best_model_checkpoint
    print(
        f"Trained {trainer.state.global_step} steps on {len(examples)} queries; saved "
        + (f"the best checkpoint ({best}, nDCG@10 {trainer.state.best_metric:.2f}) " if best else "the model ")
        + f"with its tokenizer and recipe to {args.output}"
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
    index.add_argument("--chunk-size", type=int, default=1024, help="documents encoded and written at a time")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--reencode", action="store_true", help="encode every document again, even those already stored unchanged"
    )
    index.set_defaults(handler=cmd_index)

    search = commands.add_parser("search", help="top-k documents for one or more questions")
    search.add_argument("queries", nargs="+", help="the questions")
    _add_model_arguments(search)
    _add_store_arguments(search)
    search.add_argument("--top-k", type=int, default=10)
    search.set_defaults(handler=cmd_search)

    evaluation = commands.add_parser("eval", help="nDCG@10, MRR@10 and recall of a model on a BEIR collection")
    _add_model_arguments(evaluation)
    evaluation.add_argument("--data", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    evaluation.add_argument("--split", default="test", help="the qrels split to evaluate")
    evaluation.add_argument("--top-k", type=int, default=1000, help="documents retrieved per query")
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
    push.add_argument("--shard-number", type=int, help="shards of the new server collection")
    push.add_argument("--replication-factor", type=int, help="replicas of the new server collection")
    push.add_argument("--batch-size", type=int, default=256, help="points read, checked and written at a time")
    push.add_argument("--timeout", type=int, default=60, help="seconds per request to the server")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(handler=cmd_push)

    training = commands.add_parser(
        "train", help="fine-tune a dual encoder with its recipe (see simlm_haystack.training)"
    )
    training.add_argument("--model", required=True, help="hub id or local checkpoint directory to start from")
    training.add_argument("--recipe", help="recipe name (found from the model when omitted)")
    training.add_argument("--train", required=True, help="training JSONL, or a BEIR folder (its --split qrels)")
    training.add_argument("--corpus", help="corpus.jsonl to look up document ids of the training JSONL")
    training.add_argument("--split", default="train", help="qrels split of a BEIR --train folder")
    training.add_argument("--eval", help="BEIR folder evaluated during training (nDCG@10 picks the best checkpoint)")
    training.add_argument("--eval-split", default="dev", help="qrels split of the --eval folder")
    training.add_argument("--output", required=True, help="output directory (checkpoints, then the final model)")
    training.add_argument("--loss", default="infonce", choices=["infonce", "margin-mse", "kl", "pair"])
    training.add_argument("--negatives", type=int, default=1, help="hard negatives per query (0: in-batch only)")
    training.add_argument("--mine-negatives", action="store_true", help="mine hard negatives with --model first")
    training.add_argument("--mine-ranks", type=int, nargs=2, default=(10, 100), metavar=("START", "STOP"))
    training.add_argument("--mine-margin", type=float, help="keep candidates scoring this much below every positive")
    training.add_argument("--epochs", type=float, default=3)
    training.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides --epochs)")
    training.add_argument("--batch-size", type=int, default=32, help="queries per batch (per device)")
    training.add_argument("--gradient-accumulation-steps", type=int, default=1)
    training.add_argument("--gradcache-chunk-size", type=int, help="GradCache: texts embedded at a time")
    training.add_argument("--learning-rate", type=float, default=2e-5)
    training.add_argument("--warmup", type=float, default=0.1, help="warm-up steps, or a fraction of all steps")
    training.add_argument("--weight-decay", type=float, default=0.01)
    training.add_argument("--tas-clusters", type=int, default=0, help="TAS-Balanced batches from k-means clusters")
    training.add_argument("--bf16", action="store_true", help="bf16 autocast")
    training.add_argument("--seed", type=int, default=42)
    training.add_argument("--save-steps", type=int, default=500, help="checkpoint (and evaluate) every N steps")
    training.add_argument("--save-total-limit", type=int, help="keep at most this many checkpoints")
    training.add_argument("--logging-steps", type=int, default=10)
    training.add_argument(
        "--resume", nargs="?", const=True, help="resume from the last checkpoint in --output, or from this one"
    )
    training.add_argument("--quiet", action="store_true", help="no progress bars")
    training.set_defaults(handler=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        logging.getLogger("haystack").setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    handler: Command = args.handler
    try:
        return handler(args)
    except (SimlmHaystackError, OSError, ValueError) as error:
        if args.verbose:
            raise
        print(f"simlm-haystack {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"simlm-haystack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
