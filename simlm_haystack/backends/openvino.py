"""The cached ONNX export (see :mod:`simlm_haystack.backends.onnx`) run by OpenVINO on the CPU.

OpenVINO reads the plain fp32 export itself (no ONNX Runtime contrib operators), compiled in fp32
(``INFERENCE_PRECISION_HINT``: a CPU with native bf16 would otherwise get bf16), one stream. As with
ONNX Runtime, a single text runs on one thread and a batch on the cores this process may use, and the
graph is checked against the torch model every time it is loaded.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simlm_haystack.backends import cpu_threads
from simlm_haystack.backends.onnx import check_graph, export_dir, exported_graph
from simlm_haystack.models import LoadedModel

logger = logging.getLogger(__name__)


def compile_config(threads: int) -> dict[str, Any]:
    return {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }


class OpenVinoGraph:
    """An ONNX file compiled by OpenVINO for the CPU: one compiled model per thread count, when first needed."""

    def __init__(self, path: Path, input_names: list[str], *, threads: int | None = None) -> None:
        import openvino

        self.path = path
        self.input_names = input_names
        self.threads = threads or cpu_threads()
        self._core = openvino.Core()
        self._model = self._core.read_model(str(path))
        self.compiled: dict[int, Any] = {}
        self._lock = threading.Lock()

    def compiled_model(self, threads: int) -> Any:
        with self._lock:
            if threads not in self.compiled:
                self.compiled[threads] = self._core.compile_model(self._model, "CPU", compile_config(threads))
            return self.compiled[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        # A request per call: compiled models are shared, requests are not safe across threads.
        request = self.compiled_model(1 if single_thread else self.threads).create_infer_request()
        request.infer({name: features[name] for name in self.input_names})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


def load_openvino(loaded: LoadedModel, input_names: list[str], *, cache_dir: str | Path | None = None) -> OpenVinoGraph:
    """The OpenVINO graph of ``loaded``: the cached export (made if missing), checked against torch.

    A cached export that fails to load or to agree is deleted and exported once more.
    """
    target = export_dir(loaded, input_names, cache_dir)
    while True:
        was_cached = (target / "model.onnx").is_file()
        try:
            graph = OpenVinoGraph(exported_graph(loaded, input_names, target), input_names)
            check_graph(graph, loaded, input_names, "OpenVINO graph")
            return graph
        except Exception as error:
            if not was_cached:
                raise
            logger.warning("Cached ONNX export %s is unusable by OpenVINO (%s); exporting again", target, error)
            shutil.rmtree(target, ignore_errors=True)
