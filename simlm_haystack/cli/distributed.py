"""``index --ray``: the index command's flags for encoding and writing with a pool of Ray workers.

Kept apart from the other flags: everything else about ``index`` (the model, the store, ``--retrieval``,
``--chunk-size``, ``--reencode``, ``--reindex``) means the same with or without ``--ray``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from simlm_haystack.cli.arguments import positive_int
from simlm_haystack.errors import SimlmHaystackError

#: ``--ray`` given with no address: start a local cluster.
LOCAL_CLUSTER = "local"


def positive_float(value: str) -> float:
    """An argparse type: a number above 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return number


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``, ``--workers``, ``--cpus-per-worker``, ``--gpus-per-worker``."""
    group = parser.add_argument_group("Ray (pip install 'simlm-haystack[ray]')")
    group.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_CLUSTER,
        metavar="ADDRESS",
        help="encode and write with a pool of Ray workers: alone, on a Ray cluster started on this machine for the "
        "command; 'auto': the cluster `ray start` runs here (or RAY_ADDRESS names); host:6379 or ray://host:10001: "
        "that one. The corpus must be at the same path on every node",
    )
    group.add_argument(
        "--workers", type=positive_int, help="workers, each with its own copy of the model (default: one per CPU/GPU)"
    )
    group.add_argument("--cpus-per-worker", type=positive_float, default=1.0, help="CPUs (threads) per worker")
    group.add_argument(
        "--gpus-per-worker", type=positive_float, help="GPUs per worker (a fraction shares one); workers then use them"
    )


def wants_ray(args: argparse.Namespace) -> bool:
    """Whether ``--ray`` was given; the other Ray flags without it are an error."""
    if args.ray is None and (args.workers is not None or args.gpus_per_worker is not None):
        raise SimlmHaystackError("--workers and --gpus-per-worker need --ray")
    return args.ray is not None


def index_with_ray_from_args(args: argparse.Namespace, embedder: Any, store: Any) -> int:
    """Index ``args.corpus`` as the flags say, on the cluster ``--ray`` names; returns the documents written."""
    from simlm_haystack.distributed import index_with_ray, ray_cluster

    address = None if args.ray == LOCAL_CLUSTER else args.ray
    # Without --verbose, Ray's own notices (progress bars off, execution finished) would break through the bar.
    with ray_cluster(address, logging_level=logging.INFO if args.verbose else logging.ERROR) as cluster:
        if cluster.started_here and not args.quiet:
            where = "started" if address is None else f"joined at {address}"
            print(
                f"Ray cluster {where} in {cluster.startup_seconds:.1f} s: {cluster.resources.get('CPU', 0):g} CPUs, "
                f"{cluster.resources.get('GPU', 0):g} GPUs"
            )
        report = index_with_ray(
            args.corpus,
            embedder,
            store,
            retrieval=args.retrieval,
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker or 0.0,
            chunk_size=args.chunk_size,
            progress_bar=not args.quiet,
            skip_existing=not args.reencode,
            allow_other_encoder=args.allow_other_encoder,
        )
    if not args.quiet:
        print(
            f"{report.workers} Ray workers: {report.written} documents written, {report.skipped} skipped, "
            f"in {report.seconds:.1f} s"
        )
    return report.written
