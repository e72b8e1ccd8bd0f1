"""The arguments the commands share: model and store flags, the store they describe, and the
dataclass parser of ``train`` and ``pretrain`` (flags or one JSON file)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from simlm_haystack.backends import BACKENDS
from simlm_haystack.errors import SimlmHaystackError

if TYPE_CHECKING:  # the stores package is imported only by the commands that use it
    from simlm_haystack.stores.fusion import HybridSearch


def positive_int(value: str) -> int:
    """An argparse type: the components refuse 0 and negative sizes, so the command line does first."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {number}")
    return number


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--local-files-only", action="store_true", help="never ask the Hugging Face Hub")


#: The embedded engine of a new collection under --qdrant-path: Qdrant Edge, by measurement (BENCHMARKS.md,
#: "Embedded scale"). An existing collection is opened with the engine that wrote it.
DEFAULT_PATH_ENGINE = "edge"


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--shard-number", type=positive_int, help="shards of a new collection (Qdrant cluster)")
    parser.add_argument("--replication-factor", type=positive_int, help="replicas of a new collection (Qdrant cluster)")
    parser.add_argument(
        "--allow-other-encoder",
        action="store_true",
        help="use a collection filled by another model or recipe than --model/--recipe (refused without it: "
        "its vectors and this encoder's are not comparable)",
    )
    parser.set_defaults(default_engine=DEFAULT_PATH_ENGINE)


def add_retrieval_argument(parser: argparse.ArgumentParser, *, fusion: bool) -> None:
    """``--retrieval`` (and, for commands that search, how hybrid search fuses)."""
    from simlm_haystack.stores.fusion import FUSION_METHODS, RETRIEVALS, HybridSearch

    parser.add_argument(
        "--retrieval",
        choices=list(RETRIEVALS),
        default="dense",
        help="dense (default): the model's vectors; sparse: BM25; hybrid: both, fused"
        + ("" if fusion else ". Indexing with sparse or hybrid writes both kinds of vectors"),
    )
    if not fusion:
        return
    defaults = HybridSearch()
    parser.add_argument("--fusion", choices=list(FUSION_METHODS), default=defaults.fusion, help="hybrid: rrf or dbsf")
    parser.add_argument("--rrf-k", type=positive_int, default=defaults.rrf_k, help="hybrid: RRF's constant k")
    parser.add_argument(
        "--rrf-weights", type=float, nargs=2, metavar=("SPARSE", "DENSE"), help="hybrid: RRF's weights of the two lists"
    )
    parser.add_argument(
        "--prefetch-limit",
        type=positive_int,
        default=defaults.prefetch_limit,
        help="hybrid: candidates each side brings to the fusion",
    )


def hybrid_from_args(args: argparse.Namespace) -> HybridSearch:
    """The :class:`~simlm_haystack.stores.fusion.HybridSearch` the fusion flags describe."""
    from simlm_haystack.stores.fusion import HybridSearch

    weights = tuple(args.rrf_weights) if args.rrf_weights else None
    return HybridSearch(fusion=args.fusion, rrf_k=args.rrf_k, rrf_weights=weights, prefetch_limit=args.prefetch_limit)


def store_from_args(args: argparse.Namespace, embedder: Any, *, use_sparse_embeddings: bool | None = None) -> Any:
    """The store the arguments describe, sized and distanced from ``embedder``: a Qdrant server for
    ``--qdrant-url``, else the embedded engine of ``--engine`` (or the one already holding the collection).

    ``use_sparse_embeddings``: a new collection keeps BM25 sparse vectors too; ``None``: as an existing
    collection is laid out (else dense only)."""
    from haystack.utils import Secret

    from simlm_haystack.stores import edge_document_store, embedded_engine, qdrant_document_store

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
            use_sparse_embeddings=use_sparse_embeddings,
            **cluster,
        )
    engine = args.engine or embedded_engine(args.qdrant_path, args.index) or args.default_engine
    if engine == "local":
        return qdrant_document_store(
            embedder, path=args.qdrant_path, index=args.index, use_sparse_embeddings=use_sparse_embeddings, **cluster
        )
    if cluster:
        raise SimlmHaystackError(
            "--shard-number and --replication-factor shape a server collection: use them with --qdrant-url, "
            "or with `simlm-haystack push` to copy this collection to a cluster"
        )
    return edge_document_store(
        embedder, path=args.qdrant_path, index=args.index, use_sparse_embeddings=use_sparse_embeddings
    )


def embedder_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "recipe": args.recipe,
        "precision": args.precision,
        "backend": args.backend,
        "batch_size": args.batch_size,
        "local_files_only": args.local_files_only,
    }


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
