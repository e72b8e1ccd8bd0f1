"""A variant's forward pass behind one protocol (model inputs of one text or a batch in, ``last_hidden_state``
out): an ONNX file on ONNX Runtime or OpenVINO with the variant's settings, or a torch module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simlm_haystack.backends.onnx import session_options
from simlm_haystack.backends.openvino import compile_config


class OrtVariantGraph:
    """An ONNX file on ONNX Runtime with the package's :func:`session_options` but for the variant's
    graph optimisation level and spinning. One text runs on ``query_threads``, a batch on ``threads``."""

    def __init__(
        self, path: Path, input_names: list[str], *, level: str, query_threads: int, spinning: bool = False
    ) -> None:
        self.path, self.input_names, self.level = path, input_names, level
        self.query_threads, self.threads, self.spinning = query_threads, 2, spinning
        self.sessions: dict[int, Any] = {}

    def session(self, threads: int) -> Any:
        if threads not in self.sessions:
            import onnxruntime

            options = session_options(threads)
            options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, self.level)
            if self.spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "1")
            self.sessions[threads] = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        return self.sessions[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        session = self.session(self.query_threads if single_thread else self.threads)
        return session.run(["last_hidden_state"], {name: features[name] for name in self.input_names})[0]


class OpenVinoVariantGraph:
    """An ONNX file compiled by OpenVINO with the package's :func:`compile_config` plus the variant's
    overrides; ``reuse_request``: one infer request kept instead of one made per call."""

    def __init__(
        self,
        path: Path,
        input_names: list[str],
        *,
        query_threads: int,
        overrides: Mapping[str, Any] | None = None,
        reuse_request: bool = False,
    ) -> None:
        import openvino

        self.path, self.input_names, self.query_threads, self.threads = path, input_names, query_threads, 2
        self.overrides, self.reuse_request = dict(overrides or {}), reuse_request
        self._core = openvino.Core()
        self._model = self._core.read_model(str(path))
        self.compiled: dict[int, Any] = {}
        self.requests: dict[int, Any] = {}

    def request(self, threads: int) -> Any:
        if threads not in self.compiled:
            config = {**compile_config(threads), **self.overrides}
            self.compiled[threads] = self._core.compile_model(self._model, "CPU", config)
        if not self.reuse_request:
            return self.compiled[threads].create_infer_request()
        if threads not in self.requests:
            self.requests[threads] = self.compiled[threads].create_infer_request()
        return self.requests[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        request = self.request(self.query_threads if single_thread else self.threads)
        request.infer({name: features[name] for name in self.input_names})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchVariantGraph:
    """A torch module (eager or compiled) behind the graph protocol: what it costs with a thread count
    and an autocast, the numpy conversions being zero-copy."""

    def __init__(self, model: Callable[..., Any], input_names: list[str], *, threads: int | None, bf16: bool) -> None:
        self.model, self.input_names, self.threads_for_query, self.bf16 = model, input_names, threads, bf16
        self.path = Path("-")
        self.threads = torch.get_num_threads()

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with torch_threads(self.threads_for_query if single_thread else None), torch.inference_mode(), autocast:
            inputs = {name: torch.from_numpy(features[name]) for name in self.input_names}
            return self.model(**inputs, return_dict=True).last_hidden_state.float().numpy()
