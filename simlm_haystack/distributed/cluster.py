"""The Ray cluster the distributed indexing runs on: joined or started here, with Ray's usage statistics off."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from simlm_haystack.errors import SettingsError, SimlmHaystackError

#: How to install what this package's distributed side needs.
RAY_EXTRA = "pip install 'simlm-haystack[ray]'"


class RayJobError(SimlmHaystackError):
    """The Ray job failed for a reason of Ray's (a worker that could not start or kept dying, a lost node);
    the message says how much was written, and that running the same call again resumes."""


def import_ray() -> ModuleType:
    """``ray``, with Ray Data importable; a :class:`~simlm_haystack.errors.SettingsError` saying how to install
    it otherwise."""
    try:
        import ray
        import ray.data  # pandas and pyarrow: the [data] extra
    except ImportError as error:
        raise SettingsError(f"Distributed indexing needs Ray Data: {RAY_EXTRA} ({error})") from None
    return ray


@dataclass(frozen=True)
class RayCluster:
    """The cluster a :func:`ray_cluster` block runs on.

    :param address: What was asked for: an address, ``"auto"``, or None for a local cluster.
    :param started_here: Whether this block started (and will stop) it; False when it joined a running cluster
        or found this process connected already.
    :param startup_seconds: How long joining or starting took (0 when already connected).
    :param resources: The cluster's resources when the block began (``{"CPU": 2.0, "GPU": ..., ...}``).
    """

    address: str | None
    started_here: bool
    startup_seconds: float
    resources: dict[str, float] = field(default_factory=dict)


@contextmanager
def ray_cluster(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_memory: int | None = None,
    logging_level: int = logging.WARNING,
) -> Iterator[RayCluster]:
    """Ray for the duration of the block.

    :param address: ``None``: start a local cluster on this machine (stopped when the block ends); ``"auto"``:
        join the cluster running on this machine (``ray start --head``) or the one ``RAY_ADDRESS`` names;
        ``"host:6379"`` or ``"ray://host:10001"``: join that one. A process already connected to Ray keeps its
        connection, whatever ``address`` says, and it is left connected.
    :param num_cpus: CPUs of a local cluster (default: the machine's); not allowed when joining.
    :param num_gpus: GPUs of a local cluster (default: those detected); not allowed when joining.
    :param object_store_memory: Bytes of a local cluster's object store (default: Ray's, 30 % of memory).
    :param logging_level: The level of Ray's own loggers in this process (``ray``, ``ray.data``).

    Ray's usage statistics are turned off (``RAY_USAGE_STATS_ENABLED=0``) unless the environment sets them, and
    no dashboard is started. A cluster that cannot be joined is a :class:`~simlm_haystack.errors.SettingsError`.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    if ray.is_initialized():
        yield RayCluster(address, False, 0.0, dict(ray.cluster_resources()))
        return
    local = {"num_cpus": num_cpus, "num_gpus": num_gpus, "object_store_memory": object_store_memory}
    if address is not None and any(value is not None for value in local.values()):
        raise SettingsError("num_cpus, num_gpus and object_store_memory size a local cluster, not one joined")
    begun = time.perf_counter()
    try:
        if address is None:
            # "local": a new cluster even if RAY_ADDRESS or an earlier `ray start` names another.
            ray.init(address="local", include_dashboard=False, logging_level=logging_level, **local)
        else:
            ray.init(address=address, logging_level=logging_level)
    except ConnectionError as error:
        raise SettingsError(
            f"Cannot join the Ray cluster at {address!r}: {error}. Start one (`ray start --head`), pass its address, "
            "or leave the address out to start a local one"
        ) from None
    logging.getLogger("ray.data").setLevel(logging_level)  # Ray Data configures its logger on its own
    cluster = RayCluster(address, True, time.perf_counter() - begun, dict(ray.cluster_resources()))
    try:
        yield cluster
    finally:
        ray.shutdown()


def worker_count(resources: dict[str, Any], *, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """Workers the cluster's resources hold at once: one per ``gpus_per_worker`` GPUs when workers use GPUs, else
    one per ``cpus_per_worker`` CPUs (at least one)."""
    if gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // max(cpus_per_worker, 1e-9)))
