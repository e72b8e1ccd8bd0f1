"""``index``, ``search``, ``eval`` and ``push``: the commands over a collection."""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from simlm_haystack.cli.arguments import embedder_kwargs, hybrid_from_args, store_from_args
from simlm_haystack.errors import SimlmHaystackError


def cmd_index(args: argparse.Namespace) -> int:
    from simlm_haystack.cli.distributed import index_with_ray_from_args, wants_ray
    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.corpus import count_lines, read_documents
    from simlm_haystack.indexing import index_documents

    if not os.path.isfile(args.corpus):
        raise SimlmHaystackError(f"{args.corpus}: no such file")
    embedder = DualEncoderDocumentEmbedder(**embedder_kwargs(args), progress_bar=False)
    sparse = args.retrieval != "dense"
    store = store_from_args(args, embedder, use_sparse_embeddings=sparse or None)
    try:
        embedder.warm_up()
        before = store.count_documents()
        if args.reindex and before:
            store.delete_all_documents()  # an empty collection takes this encoder's record
        if wants_ray(args):
            written = index_with_ray_from_args(args, embedder, store)
        else:
            written = index_documents(
                read_documents(args.corpus),
                embedder,
                store,
                chunk_size=args.chunk_size,
                total=count_lines(args.corpus),
                progress_bar=not args.quiet,
                skip_existing=not args.reencode,
                retrieval=args.retrieval,
                allow_other_encoder=args.allow_other_encoder,
            )
        after = store.count_documents()
    finally:
        store.close()  # embedded Qdrant locks its folder until closed
    print(
        f"Wrote {written} documents from {args.corpus} into collection {store.index!r} "
        f"({after} in the collection, {before} before; "
        f"{embedder.embedding_dim}-d, {store.similarity}, recipe {embedder.recipe.name}"
        + (", and BM25 sparse vectors)" if sparse else ")")
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
    from simlm_haystack.text_checks import check_queries

    check_queries(args.queries)  # before a model is loaded
    embedder = DualEncoderTextEmbedder(**embedder_kwargs(args))
    store = store_from_args(args, embedder)
    try:
        if store.count_documents() == 0:
            raise SimlmHaystackError(f"Collection {store.index!r} is empty: run `simlm-haystack index` first")
        pipeline = build_query_pipeline(
            embedder,
            store,
            top_k=args.top_k,
            allow_other_encoder=args.allow_other_encoder,
            retrieval=args.retrieval,
            **hybrid_from_args(args).to_dict(),
        )
        for query in args.queries:
            documents = pipeline.run({"retriever": {"query": query}})["retriever"]["documents"]
            print(f"\n{shown_query(query)}")
            for rank, document in enumerate(documents, start=1):
                title = document.meta.get("title") or (document.content or "")[:80]
                print(f"  {rank:>2}. {document.score:8.4f}  {document.id}  {title}")
    finally:
        store.close()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:

    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
    from simlm_haystack.errors import DataError
    from simlm_haystack.evaluation import evaluate, format_table, load_beir

    collection = load_beir(args.data, splits=[args.split])  # bad data fails before a model is loaded
    if args.out and not os.access(Path(args.out).resolve().parent, os.W_OK):
        raise DataError(f"{args.out}: cannot write the results there (no such folder, or not writable)")
    document_embedder = DualEncoderDocumentEmbedder(**embedder_kwargs(args), progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(**embedder_kwargs(args))
    if args.index is None:
        # Its own collection per data set, model and recipe: evaluating replaces what the collection holds.
        model_name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(args.model).name)
        # Hybrid collections keep sparse vectors too, under named vectors: their own collection.
        layout = "" if args.retrieval == "dense" else "-hybrid"
        args.index = f"eval-{collection.path.resolve().name}-{model_name}-{document_embedder.recipe.name}{layout}"
    store = store_from_args(args, document_embedder, use_sparse_embeddings=args.retrieval != "dense" or None)
    try:
        result = evaluate(
            document_embedder,
            text_embedder,
            store,
            collection,
            args.split,
            top_k=args.top_k,
            retrieval=args.retrieval,
            hybrid=hybrid_from_args(args),
            reindex=args.reindex,
            progress_bar=not args.quiet,
            allow_other_encoder=args.allow_other_encoder,
        )
    finally:
        store.close()
    counts = result.counts
    searched = args.retrieval if args.retrieval != "hybrid" else f"hybrid, {args.fusion}"
    print(f"{args.model} (recipe {result.recipe['name']}, {searched}) on {collection.path} [{args.split}]")
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
