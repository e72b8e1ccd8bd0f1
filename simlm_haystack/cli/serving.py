"""``serve``: one collection over HTTP (Hayhooks) and MCP, the model loaded once, checked before it listens."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from simlm_haystack.cli.arguments import (
    add_model_arguments,
    add_retrieval_argument,
    add_store_arguments,
    embedder_kwargs,
    hybrid_from_args,
    positive_int,
    store_from_args,
)
from simlm_haystack.errors import SimlmHaystackError

#: Hayhooks' own default port.
DEFAULT_PORT = 1416


def add_serve_parser(commands: Any) -> None:
    """The ``serve`` sub-command, with the model, store and retrieval flags of ``search``."""
    serve = commands.add_parser(
        "serve",
        help="serve a collection over HTTP and MCP with Hayhooks (POST /search/run, POST /index/run, /mcp)",
        description="Serve a collection with Hayhooks. The API key, if any, is read from the environment variable "
        "SIMLM_HAYSTACK_API_KEY (never from a flag); every request then needs 'Authorization: Bearer <key>'.",
    )
    add_model_arguments(serve)
    add_store_arguments(serve)
    add_retrieval_argument(serve, fusion=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=positive_int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    serve.add_argument("--name", default="search", help="the search route (POST /NAME/run) and MCP tool name")
    serve.add_argument("--index-route", default="index", help="the route adding documents (POST /NAME/run)")
    serve.add_argument("--read-only", action="store_true", help="serve the search only, no route adding documents")
    serve.add_argument("--top-k", type=positive_int, default=10, help="documents per search when a request omits it")
    serve.add_argument("--max-top-k", type=positive_int, default=1000, help="the largest top_k a request may ask")
    serve.add_argument("--max-query-chars", type=positive_int, default=8192, help="the longest query, in characters")
    serve.add_argument("--max-documents", type=positive_int, default=1000, help="documents per /index/run request")
    serve.add_argument(
        "--workers",
        type=positive_int,
        help="searches run at once, one core each (default: the cores this process may use)",
    )
    serve.add_argument("--description", help="what the collection holds, in a few words, for agents (MCP tool)")
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.name == args.index_route:
        raise SimlmHaystackError(f"--name and --index-route are both {args.name!r}: give the routes two names")
    try:
        from simlm_haystack.serving.guards import api_key_from_environment
    except ImportError as error:
        raise SimlmHaystackError(str(error)) from None
    api_key = api_key_from_environment()  # before a model is loaded: a bad setting fails at once
    if not args.verbose:
        os.environ.setdefault("HAYHOOKS_LOG_LEVEL", "WARNING")  # read when Hayhooks' logger is first imported
    from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
    from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
    from simlm_haystack.serving.app import build_app
    from simlm_haystack.serving.requests import RequestLimits
    from simlm_haystack.serving.server import run_server
    from simlm_haystack.serving.service import build_deployments

    limits = RequestLimits(
        max_query_chars=args.max_query_chars, max_top_k=args.max_top_k, max_documents=args.max_documents
    )
    text_embedder = DualEncoderTextEmbedder(**embedder_kwargs(args))
    document_embedder = (
        None if args.read_only else DualEncoderDocumentEmbedder(**embedder_kwargs(args), progress_bar=False)
    )
    sparse = args.retrieval != "dense"
    store = store_from_args(args, text_embedder, use_sparse_embeddings=sparse or None)
    try:
        deployments = build_deployments(
            text_embedder,
            document_embedder,
            store,
            retrieval=args.retrieval,
            search=hybrid_from_args(args),
            top_k=min(args.top_k, args.max_top_k),
            allow_other_encoder=args.allow_other_encoder,
            limits=limits,
            search_name=args.name,
            index_name=args.index_route,
            holds=args.description,
            workers=args.workers,
        )
        app = build_app(
            deployments, limits=limits, api_key=api_key, host=args.host
        )  # loads the model and checks the collection
        routes = ", ".join(f"POST /{deployment.name}/run" for deployment in deployments)
        print(
            f"simlm-haystack serve: collection {store.index!r} ({store.count_documents()} documents, "
            f"{args.retrieval}) at http://{args.host}:{args.port}: {routes}; MCP at /mcp"
            + ("; API key required" if api_key else ""),
            file=sys.stderr,
            flush=True,
        )
        run_server(app, host=args.host, port=args.port, api_key=api_key is not None)
    finally:
        store.close()  # an embedded collection's lock is released
    return 0
