"""Where a model's forward pass runs: PyTorch (the reference), ONNX Runtime or OpenVINO.

Only the forward pass that turns token ids into ``last_hidden_state`` moves to another runtime.
Tokenising, length-sorted batching, padding, pooling, normalising and the non-finite check stay in
:mod:`simlm_haystack.encoding`, shared by every backend, so a backend cannot read a model another way.

The exported graph is built once per model (weights and tokenizer fingerprint) and cached on disk;
see :mod:`simlm_haystack.backends.onnx`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from simlm_haystack.errors import SettingsError

if TYPE_CHECKING:
    from simlm_haystack.models import LoadedModel

#: ``"torch"``: the model itself (the reference). ``"onnx"``: the model exported with PyTorch's dynamo
#: ONNX exporter, run by ONNX Runtime. ``"openvino"``: the same exported file, run by OpenVINO.
Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "openvino")

#: The precisions each backend runs. ``"exact"`` is fp32 everywhere (on a graph backend: vectors at
#: cosine >= 0.99999 to torch, checked when the graph is loaded). ``"int8"``: ONNX Runtime with the
#: weights of the attention projections and the feed-forward input quantised per channel.
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("exact", "fast", "bf16"),
    "onnx": ("exact", "int8"),
    "openvino": ("exact",),
}


def check_backend(backend: str, precision: str) -> None:
    """Raise a :class:`SettingsError` (a ``ValueError``) unless ``backend`` is known and runs ``precision``."""
    if backend not in BACKEND_PRECISIONS:
        raise SettingsError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if precision not in BACKEND_PRECISIONS[backend]:
        runs = ", ".join(f"{name}: {', '.join(values)}" for name, values in BACKEND_PRECISIONS.items())
        raise SettingsError(f"backend={backend!r} does not run precision={precision!r} (precisions by backend: {runs})")


def cpu_threads() -> int:
    """The cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Graph(Protocol):
    """An exported forward pass: int64 model inputs in, ``last_hidden_state`` (float32) out."""

    path: Path
    #: Intra-op threads for a batch (a single text always runs on one).
    threads: int

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray: ...


def load_graph(
    loaded: LoadedModel,
    input_names: list[str],
    *,
    backend: str,
    precision: str,
    cache_dir: str | Path | None = None,
) -> Graph:
    """The graph that runs ``loaded`` on ``backend`` (exported, or read from the cache)."""
    check_backend(backend, precision)
    if loaded.model.device.type != "cpu":
        raise ValueError(
            f"backend={backend!r} runs on the CPU; the model is on {loaded.model.device}. "
            "Load it on the CPU, or use backend='torch' on a GPU."
        )
    if backend == "onnx":
        from simlm_haystack.backends.onnx import load_onnx_runtime

        return load_onnx_runtime(loaded, input_names, quantize=precision == "int8", cache_dir=cache_dir)
    if backend == "openvino":
        from simlm_haystack.backends.openvino import load_openvino

        return load_openvino(loaded, input_names, cache_dir=cache_dir)
    raise ValueError(f"backend={backend!r} runs the model itself; it has no graph")
