"""What every benchmark shares: the machine it ran on, its load, the default model and collection, the
statistics of a timing, and where its result file goes.

The figures in BENCHMARKS.md come from a shared machine (two cores, other tenants), so every result file
says which CPU, which instruction sets and how much load it was measured under; the helpers here are the
one way the benchmarks find those out. Each benchmark keeps the field names its result files have always
had, so it builds its own record from these parts (:func:`machine` is the usual one).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The repository root (this file is ``<root>/benchmarks/common.py``).
REPOSITORY = Path(__file__).resolve().parents[1]
#: Where the benchmarks keep the result files BENCHMARKS.md quotes.
RESULTS = REPOSITORY / "benchmarks" / "results"
#: ``../shared/data/scifact`` relative to the repository root: the BEIR collection the benchmarks read.
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "scifact"
DATA_HELP = "BEIR collection folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (default: %(default)s)"
#: The checkpoint the benchmarks measure unless told otherwise, and the size of its vectors.
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384
#: The CPU flags that decide which kernels run here: AVX2 / AVX-512 (fp32 and int8 matmuls), VNNI (int8 dot
#: products), AVX512-BF16 and AMX (native bf16; int8 and bf16 tiles).
FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
#: The packages whose versions a model-speed result records (the runtimes and the peer).
RUNTIME_PACKAGES = (
    "torch",
    "transformers",
    "onnxruntime",
    "openvino",
    "sentence-transformers",
    "sentence-transformers-haystack",
)


# --- the collection -----------------------------------------------------------------------------------------------


def add_data_argument(parser: argparse.ArgumentParser, *, positional: bool = False, help_text: str = DATA_HELP) -> None:
    """Add the collection folder to ``parser``: ``--data``, or an optional positional ``data`` where a script
    has always taken it that way; either way ``args.data``, a :class:`~pathlib.Path`, :data:`DEFAULT_DATA`
    when not given."""
    if positional:
        parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help=help_text)
    else:
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=help_text)


# --- the machine --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (lscpu's, else /proc/cpuinfo's, else the platform's)."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    for line in lscpu.splitlines():
        if line.strip().startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return ""


def cpu_flags() -> set[str]:
    """Every flag /proc/cpuinfo lists for this CPU (empty where there is none)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def flag_table(flags: Iterable[str] = FLAGS) -> dict[str, bool]:
    """Whether this CPU has each of ``flags``."""
    present = cpu_flags()
    return {flag: flag in present for flag in flags}


def usable_cores() -> int:
    """The cores this process may use (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_gb() -> float:
    """The machine's physical memory, GiB."""
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """The installed version of each package (``"not installed"`` for one that is not)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def machine(packages: Iterable[str] = RUNTIME_PACKAGES) -> dict[str, Any]:
    """The usual machine record: the CPU, the cores this process may use, :data:`FLAGS` and the versions of
    ``packages``."""
    return {
        "cpu": cpu_model(),
        "usable_cores": usable_cores(),
        "cpuinfo_flags": flag_table(),
        "versions": package_versions(packages),
    }


# --- the load -----------------------------------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, to two decimals: how busy the other tenants kept the machine."""
    return [round(value, 2) for value in os.getloadavg()]


def uptime() -> str:
    """``uptime``'s line (the load averages, with the time of day they were read)."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- statistics ---------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (numpy's linear interpolation; q=50 is the median)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def _rounded(value: float, digits: int | None) -> float:
    return value if digits is None else round(value, digits)


def percentiles(milliseconds: Sequence[float], digits: int | None = None) -> dict[str, float]:
    """``p50_ms`` and ``p99_ms`` of a list of timings in milliseconds (rounded to ``digits`` if given)."""
    return {
        "p50_ms": _rounded(percentile(milliseconds, 50), digits),
        "p99_ms": _rounded(percentile(milliseconds, 99), digits),
    }


def latency_summary(milliseconds: Sequence[float], digits: int | None = None) -> dict[str, float]:
    """:func:`percentiles` and ``mean_ms``."""
    return {**percentiles(milliseconds, digits), "mean_ms": _rounded(float(np.mean(milliseconds)), digits)}


# --- result files and commands ------------------------------------------------------------------------------------


def result_file(name: str) -> Path:
    """``benchmarks/results/<name>.json``: the default ``--out`` of the benchmark ``name``."""
    return RESULTS / f"{name}.json"


def read_results(path: Path) -> Any:
    """The result file at ``path``, or an empty dict if there is none yet (benchmarks that add to a file)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_results(path: Path, results: Mapping[str, Any] | list[Any], indent: int = 2) -> None:
    """Write ``results`` as JSON (with its folder, if new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=indent) + "\n", encoding="utf-8")


def running_module() -> str:
    """The dotted name this process was started as (``benchmarks.query_latency`` for ``python -m ...``)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None or not spec.name:
        return sys.argv[0]
    return spec.name.removesuffix(".__main__")


def command_line() -> str:
    """How this run was started, as one would type it again: ``python -m benchmarks.<name> ARGUMENTS``."""
    return " ".join([Path(sys.executable).name, "-m", running_module(), *sys.argv[1:]])


def module_command(module: str) -> list[str]:
    """The argv that runs ``module`` (``benchmarks.<name>``) in a child process with this interpreter."""
    return [sys.executable, "-m", module]


def child_environment() -> dict[str, str]:
    """This process's environment with the repository root on ``PYTHONPATH``, so that a child started by
    :func:`module_command` imports ``benchmarks`` from whatever folder it runs in."""
    environment = dict(os.environ)
    paths = [str(REPOSITORY), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment
