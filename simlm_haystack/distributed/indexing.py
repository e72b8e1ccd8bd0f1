"""Encoding and indexing a corpus with Ray Data: many workers encode, the store takes their writes.

The driver (the process that calls :func:`index_with_ray`) does what :func:`~simlm_haystack.index_documents`
does before and after encoding: it loads the encoder once, keeps its identity with an empty collection or checks
it against the one kept there, and after the last block lets the store finish the bulk write (Qdrant Edge builds
its HNSW graph). In between, a pool of Ray actors (``map_batches`` with
:class:`~simlm_haystack.distributed.workers.DocumentWorker`) reads, skips, encodes and writes, block by block:
see :mod:`simlm_haystack.distributed.targets` for how each kind of store takes their writes.

A worker that dies mid-job (killed, out of memory, its node lost) is restarted by Ray and its blocks are run
again; a block written twice is written once in effect (writes are upserts by id), so the collection ends with
exactly the corpus. A job that fails (a malformed line, a store that stays unreachable) keeps what it wrote:
running the same call again skips what is stored and encodes the rest.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haystack.utils import ComponentDevice
from tqdm.auto import tqdm

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.writing import write_setup
from simlm_haystack.distributed.cluster import RayJobError, import_ray, ray_cluster, worker_count
from simlm_haystack.distributed.corpus import split_corpus
from simlm_haystack.distributed.targets import WriteTarget, start_writer_actor, store_settings, target_kind
from simlm_haystack.distributed.workers import BatchReport, DocumentWorker, InputKind
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.errors import SettingsError, SimlmHaystackError
from simlm_haystack.sparse import BM25Settings
from simlm_haystack.stores import EmbeddingDocumentStore
from simlm_haystack.stores.fusion import RETRIEVAL_DOC, Retrieval, check_retrieval

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

#: The parameters both entry points share, documented once.
WORKERS_DOC = """\
:param workers: Worker actors, each holding one copy of the model (default: as many as the cluster's CPUs
    hold at ``cpus_per_worker`` each, or its GPUs at ``gpus_per_worker``; never more than there are blocks).
:param cpus_per_worker: CPUs Ray reserves for each worker; its forward pass runs on that many threads.
:param gpus_per_worker: GPUs Ray reserves for each worker (a fraction shares a GPU); above 0, workers run the
    model on their GPU (``backend="torch"`` only), whatever device the embedder names.
:param chunk_size: Documents per block: a JSONL file is cut into blocks of this many lines, a dataset into
    batches of this many rows; each is read, checked, encoded and written by one worker at a time (and run
    again whole if that worker dies)."""


@dataclass(frozen=True)
class RayIndexReport:
    """What :func:`index_with_ray` did.

    :param documents: Documents read.
    :param written: Documents encoded and written by this run.
    :param skipped: Documents already stored with the same content and meta, not encoded again.
    :param workers: Worker actors in the pool.
    :param seconds: Wall time from after the collection check (the driver's model loaded) to the store's bulk write
        finished: starting Ray when this process was not connected, the writer actor and the workers included.
    """

    documents: int
    written: int
    skipped: int
    workers: int
    seconds: float


def _check_resources(cpus_per_worker: float, gpus_per_worker: float, workers: int | None, backend: str) -> None:
    if cpus_per_worker <= 0:
        raise SettingsError(f"cpus_per_worker must be above 0, not {cpus_per_worker}")
    if gpus_per_worker < 0:
        raise SettingsError(f"gpus_per_worker must be 0 or more, not {gpus_per_worker}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SettingsError(f"workers must be a positive integer, not {workers!r}")
    if gpus_per_worker > 0 and backend != "torch":
        raise SettingsError(f"backend={backend!r} runs on the CPU: use backend='torch' with gpus_per_worker")


def _warn_if_the_pool_does_not_fit(workers: int, cpus: float, gpus: float, resources: dict[str, float]) -> None:
    """Ray starts the workers that fit and leaves the others pending (an autoscaling cluster may grow to fit them)."""
    for name, each in (("CPU", cpus), ("GPU", gpus)):
        if each > 0 and workers * each > resources.get(name, 0):
            logger.warning(
                "%d workers of %g %s each need %g %ss; the Ray cluster has %g: the workers that fit run, the others "
                "wait for the cluster to grow",
                workers,
                each,
                name,
                workers * each,
                name,
                resources.get(name, 0),
            )


def _worker_embedder(document_embedder: DualEncoderDocumentEmbedder, gpus_per_worker: float) -> dict[str, Any]:
    """The embedder's settings as a worker loads them: on its GPU (Ray sets which one it sees) or on the CPU,
    with no progress bar per block."""
    data = document_embedder.to_dict()
    device = ComponentDevice.from_str("cuda:0" if gpus_per_worker > 0 else "cpu")
    data["init_parameters"].update(device=device.to_dict(), progress_bar=False)
    return data


def _count(document_store: Any) -> str:
    try:
        return str(document_store.count_documents())
    except Exception:  # the store may be what failed
        return "an unknown number of"


def _configured(dataset: Any) -> Any:
    """``dataset`` with Ray Data's own progress bars and start-of-execution lines off (the driver shows one bar),
    and a worker's error raised as it is, not wrapped in a ``UserCodeException`` (which would arrive without it)."""
    context = dataset.context
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.raise_original_map_exception = True
    return dataset


@dataclass(frozen=True)
class _Input:
    """The dataset the workers map over: what its rows are, how many go to a call, and (for a file) how many
    documents and blocks it holds."""

    dataset: Any
    kind: InputKind
    batch_size: int
    documents: int | None = None
    blocks: int | None = None


def _input(documents: Any, chunk_size: int) -> _Input:
    ray = import_ray()
    if isinstance(documents, str | Path):
        blocks, count = split_corpus(documents, chunk_size)
        rows = [asdict(block) for block in blocks]
        # One Ray block per corpus block, so that each is a task of its own, given to whichever worker is free.
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
        return _Input(dataset, "blocks", 1, count, len(blocks))
    if isinstance(documents, ray.data.Dataset):
        return _Input(documents, "rows", chunk_size)
    raise TypeError(f"documents must be a JSONL path or a ray.data.Dataset, not {type(documents).__name__}")


def _map(
    source: _Input,
    *,
    workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
    **worker: Any,
) -> Any:
    ray = import_ray()
    results = source.dataset.map_batches(
        DocumentWorker,
        fn_constructor_kwargs={"input_kind": source.kind, "threads": max(1, round(cpus_per_worker)), **worker},
        batch_size=source.batch_size,
        batch_format="pyarrow",
        # One block in flight per worker: blocks take seconds, and a worker that starts late still gets its share.
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker or None,
    )
    return _configured(results)


#: What Ray Data appends to the message of an error raised in a worker (its retry notice).
_RAY_RETRY_NOTICE = re.compile(r"\nFailed to .* after \d+/\d+ attempts \(total backoff", re.DOTALL)


def _message(error: BaseException) -> str:
    """The error's own message, without the notice Ray Data appends to it."""
    return _RAY_RETRY_NOTICE.split(str(error), maxsplit=1)[0]


def _follow(
    results: Any, total: int | None, progress_bar: bool, on_batch: Callable[[BatchReport], None] | None
) -> tuple[int, int, int]:
    """Run the job, following its reports as they come back: documents done, written and skipped."""
    documents = written = skipped = 0
    with tqdm(total=total, disable=not progress_bar, desc="Indexing (Ray)", unit="doc") as progress:
        for row in results.iter_rows():
            report = BatchReport.from_row(row)
            documents += report.documents
            written += report.written
            skipped += report.skipped
            progress.update(report.documents)
            progress.set_postfix(written=written, skipped=skipped, refresh=False)
            if on_batch is not None:
                on_batch(report)
    return documents, written, skipped


def _failure(error: BaseException) -> BaseException | None:
    """The error a failed job reports: ours as the worker raised it (Ray wraps it, in copies that are instances of
    its class too, whose messages are whole tracebacks), Ray's own as a :class:`RayJobError`; None for anything
    else (a bug, raised as it is)."""
    import ray.exceptions

    ours: BaseException | None = None
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, SimlmHaystackError) and not isinstance(seen, ray.exceptions.RayError):
            ours = seen  # the innermost one is the one the worker raised
        seen = getattr(seen, "cause", None) or seen.__cause__
    if ours is not None:
        return ours
    if isinstance(error, ray.exceptions.RayError):
        return RayJobError(f"{type(error).__name__}: {error}")
    return None


@docstring_with(retrieval_settings=RETRIEVAL_DOC, workers_settings=WORKERS_DOC)
def index_with_ray(
    documents: str | Path | ray.data.Dataset,
    document_embedder: DualEncoderDocumentEmbedder,
    document_store: EmbeddingDocumentStore,
    *,
    retrieval: Retrieval = "dense",
    bm25: BM25Settings | dict[str, Any] | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    chunk_size: int = 512,
    progress_bar: bool = True,
    skip_existing: bool = True,
    retries: int = 3,
    backoff_seconds: float = 1.0,
    allow_other_encoder: bool = False,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> RayIndexReport:
    """Encode and write a corpus with a pool of Ray workers; the collection ends as
    :func:`~simlm_haystack.index_documents` leaves it (same point ids, payloads, vectors and encoder identity).

    Runs on the Ray cluster this process is connected to (:func:`~simlm_haystack.distributed.ray_cluster`), or on a
    local one started for the call. Before anything is encoded, the encoder's identity is kept with an empty
    collection or checked against the one kept there (another model, recipe or sparse side is an
    :class:`~simlm_haystack.EncoderMismatchError` unless ``allow_other_encoder``), and each worker checks it loaded
    the same weights. With ``skip_existing``, documents stored already with the same content and meta are not
    encoded again: running the same call again after an interruption does only the missing work.

    :param documents: A JSONL file (``"_id"``/``"id"``, ``"title"``, ``"text"``/``"content"`` per line, as
        ``simlm-haystack index`` reads it; at the same path on every node), or a ``ray.data.Dataset`` with those
        columns (any other column goes to ``meta``, as other JSONL fields do).
    :param document_embedder: The embedder whose settings every worker loads (it is loaded here too, once).
    :param document_store: A Qdrant server or cluster (``url=``: every worker writes to it; its ``shard_number``,
        ``replication_factor`` and ``write_consistency_factor`` apply as set on the store), or an embedded collection
        with a folder (Qdrant Edge, or ``qdrant-client``'s local mode, ``path=``: one writer actor on this node holds
        it, and this process's store is closed while the job runs). An in-memory store is refused.
    {retrieval_settings}
    {workers_settings}
    :param progress_bar: Show a progress bar (documents done, written and skipped).
    :param skip_existing: Skip documents stored already with the same content and meta.
    :param retries: Transient store errors retried per write, after ``backoff_seconds`` x 1, 2, 4, ...
    :param backoff_seconds: See ``retries``.
    :param allow_other_encoder: Write into a collection filled by another encoder (a warning instead of an error).
    :param on_batch: Called here with each block's :class:`~simlm_haystack.distributed.workers.BatchReport` as it
        comes back (e.g. to log which worker did what).
    :returns: What the run did (a :class:`RayIndexReport`).
    :raises DataError: A malformed line or row, named; what was written before is kept.
    :raises StoreError: The store stayed unreachable through the retries; what was written is kept.
    :raises RayJobError: Ray could not run the job (e.g. workers that cannot start).
    """
    ray = import_ray()
    check_retrieval(retrieval)
    _check_resources(cpus_per_worker, gpus_per_worker, workers, document_embedder.backend)
    if chunk_size < 1:
        raise SettingsError(f"chunk_size must be a positive integer, not {chunk_size}")
    kind = target_kind(document_store)  # an in-memory store fails here, before a model is loaded
    setup = write_setup(
        document_embedder, document_store, retrieval=retrieval, bm25=bm25, allow_other_encoder=allow_other_encoder
    )
    sparse_embedder = setup.sparse_embedder
    identity = setup.check_collection()
    source = _input(documents, chunk_size)
    store_class, store_data = store_settings(document_store)
    target = WriteTarget(store_class, store_data, retries=retries, backoff_seconds=backoff_seconds)
    begun = time.perf_counter()
    with ray_cluster(None) as cluster:
        pool = workers or worker_count(
            cluster.resources, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker
        )
        if source.blocks is not None:
            pool = min(pool, max(1, source.blocks))  # a worker with no block would only load the model
        _warn_if_the_pool_does_not_fit(pool, cpus_per_worker, gpus_per_worker, cluster.resources)
        writer = None
        failure: tuple[BaseException, BaseException] | None = None
        try:
            if kind == "embedded":
                # The collection's folder is locked by whoever holds it open: the writer actor, from now on.
                document_store.close()
                if getattr(document_store, "recreate_index", False):
                    document_store.recreate_index = False  # recreated once already; reopening keeps what is written
                writer = start_writer_actor(target)
                target = replace(target, writer=writer)
            results = _map(
                source,
                workers=pool,
                cpus_per_worker=cpus_per_worker,
                gpus_per_worker=gpus_per_worker,
                embedder=_worker_embedder(document_embedder, gpus_per_worker),
                sparse_embedder=sparse_embedder.to_dict() if sparse_embedder is not None else None,
                identity=identity.to_dict(),
                target=target,
                skip_existing=skip_existing,
            )
            documents_done, written, skipped = _follow(results, source.documents, progress_bar, on_batch)
        except Exception as error:
            ours = _failure(error)
            if ours is None:
                raise
            failure = (ours, error)
        finally:
            if writer is not None:
                try:
                    ray.get(writer.close.remote())
                except Exception as error:  # cleaning up after a job that failed already
                    logger.warning("Closing the writer actor of collection %r failed: %s", document_store.index, error)
                ray.kill(writer, no_restart=True)
    if failure is not None:
        ours, raised = failure
        raise type(ours)(
            f"{_message(ours)} (the Ray job stopped; the collection holds {_count(document_store)} documents, written "
            "before the error and kept: running it again skips those and encodes the rest)"
        ) from raised
    if skipped:
        logger.info("Skipped %d documents already in collection %r", skipped, document_store.index)
    setup.finish()
    return RayIndexReport(documents_done, written, skipped, pool, time.perf_counter() - begun)


@docstring_with(workers_settings=WORKERS_DOC)
def encode_with_ray(
    documents: str | Path | ray.data.Dataset,
    document_embedder: DualEncoderDocumentEmbedder,
    *,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    chunk_size: int = 512,
) -> ray.data.Dataset:
    """The corpus's document vectors, encoded by a pool of Ray workers: a lazy ``ray.data.Dataset`` of ``id`` and
    ``embedding`` (float32) rows, the vectors ``document_embedder`` gives (write it out with
    ``.write_parquet(...)``, or read it with ``.iter_batches()``; order is not kept). Nothing is loaded here.

    Needs a Ray cluster this process is connected to (:func:`~simlm_haystack.distributed.ray_cluster`) when the
    dataset runs; Ray Data starts a local one otherwise.

    :param documents: A JSONL file or a ``ray.data.Dataset``, as for :func:`index_with_ray`.
    :param document_embedder: The embedder whose settings every worker loads.
    {workers_settings}
    """
    ray = import_ray()
    _check_resources(cpus_per_worker, gpus_per_worker, workers, document_embedder.backend)
    source = _input(documents, chunk_size)
    if workers is None:
        resources = ray.cluster_resources() if ray.is_initialized() else {}
        workers = worker_count(resources, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)
    return _map(
        source,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        embedder=_worker_embedder(document_embedder, gpus_per_worker),
        sparse_embedder=None,
        identity=None,
        target=None,
        skip_existing=False,
    )
