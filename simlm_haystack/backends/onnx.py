"""The model's forward pass exported once to ONNX, cached by its weights, run by ONNX Runtime.

**Export.** ``torch.onnx.export(..., dynamo=True)`` with dynamic batch and sequence axes, from a copy of
the model in fp32 with the eager attention implementation (the plain matmul-softmax-matmul that both
runtimes fuse best; the same maths as the model's own attention). The graph's inputs are the model
inputs the encoder feeds (``input_ids``, ``attention_mask`` and, where the model takes them,
``token_type_ids``); its one output is ``last_hidden_state``, so pooling stays in
:func:`simlm_haystack.encoding.pool`. The TorchScript exporter (``dynamo=False``) is not used: under
transformers 5 it bakes the attention-mask branch of its trace into the graph (vectors at cosine ~0.95).

**Cache.** ``<cache>/<model_fingerprint>/<step>-<key>/model.onnx`` where the fingerprint digests the
weights and the tokenizer and the key digests everything else that changes the file: the steps' settings,
the opset and the versions of torch, transformers, onnx, onnxscript and onnxruntime. A file is built in a
``.partial-<pid>-*`` directory beside its final place and renamed into place when complete (a rename is
atomic), so a killed export leaves a partial directory that is never read, and removed once its process
is gone. The cache root is ``cache_dir=``, else ``$SIMLM_HAYSTACK_ONNX_CACHE``, else
``$XDG_CACHE_HOME/simlm_haystack/onnx`` (``~/.cache/...``).

**Checked, not trusted.** Every fp32 graph is compared with the torch model on a probe batch (a padded
(query, passage) pair batch) each time it is loaded: every real token's hidden state at cosine >= 0.99999.
ONNX Runtime's transformer fusions (``optimize_model``: SkipLayerNormalization, BiasGelu) are kept only
where they pass that check, else the plain graph is used. A cached graph that fails to load or to agree
is rebuilt once; a fresh export that disagrees is an error, never served.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simlm_haystack.backends import cpu_threads
from simlm_haystack.errors import ModelLoadError
from simlm_haystack.fingerprint import cached_model_fingerprint
from simlm_haystack.models import LoadedModel

logger = logging.getLogger(__name__)

CACHE_ENV = "SIMLM_HAYSTACK_ONNX_CACHE"
OPSET = 20
#: Bumped when what is written under a key changes without a version change.
CACHE_FORMAT = 1
#: Every real token's last hidden state agrees with torch at least this well.
MIN_COSINE = 0.99999
#: int8: every MatMul with a weight is quantised per output channel, except the one whose input has the
#: widest range, which stays fp32: the feed-forward output (fed by GELU; a chain of operators that
#: produces a kept MatMul's input, nearest first). On MiniLM that is 30 of the 36 weight MatMuls. Also
#: keeping the attention output projection (fed by MatMul -> Transpose -> Reshape) in fp32 costs 8-9% of a
#: query's forward pass for no measurable quality: SciFact nDCG@10 within 0.3 of exact either way
#: (BENCHMARKS.md, benchmarks.query_forward), while quantising the feed-forward output moves it by
#: 0.4-0.6.
INT8_SETTINGS: dict[str, Any] = {
    "per_channel": True,
    "weight_type": "QInt8",
    "op_types": ["MatMul"],
    "keep_fp32_fed_by": [["Gelu"]],
}
_VERSIONED = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")
_PROBE_FIRST = ["what causes scurvy?", "Vitamin C deficiency in sailors"]
_PROBE_SECOND = ["-", "Scurvy is a disease that results from a lack of vitamin C (ascorbic acid). " * 3]


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "simlm_haystack" / "onnx"


def _versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in _VERSIONED}


def cache_key(step: str, input_names: list[str], settings: Mapping[str, Any] | None = None) -> str:
    """``<step>-<digest>``: the directory of one build step, keyed by all that changes its file."""
    described = {
        "format": CACHE_FORMAT,
        "opset": OPSET,
        "step": step,
        "inputs": input_names,
        "settings": dict(settings or {}),
        "versions": _versions(),
    }
    return f"{step}-{hashlib.blake2b(json.dumps(described, sort_keys=True).encode(), digest_size=8).hexdigest()}"


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        with path.open("rb") as file:
            os.fsync(file.fileno())
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_abandoned(parent: Path) -> None:
    """Delete partial builds whose process has died (a killed export)."""
    for partial in parent.glob(".partial-*"):
        try:
            pid = int(partial.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def cached_build(target: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """``target/model.onnx``, built by ``build(path)`` (which returns what to record) if not there yet.

    The build happens in a partial directory renamed to ``target`` when complete, so ``target`` never
    holds half a file. If another process finishes first, its file is used and this one dropped.
    """
    model = target / "model.onnx"
    if model.is_file():
        return model
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target.parent)
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=target.parent))
    try:
        info = build(partial / "model.onnx")
        (partial / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(partial)
        try:
            os.rename(partial, target)
        except OSError:
            if not model.is_file():
                raise
            logger.info("Another process built %s first; using it", target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return model


class _LastHiddenState(torch.nn.Module):
    """The model with positional inputs (in the encoder's input order) and one output."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs, strict=True)), return_dict=True).last_hidden_state


def _reference_model(model: torch.nn.Module) -> torch.nn.Module:
    """An fp32 eval-mode copy with eager attention; the caller's model is left as it is."""
    reference = copy.deepcopy(model).float().eval()
    if hasattr(reference, "set_attn_implementation"):
        reference.set_attn_implementation("eager")
    return reference


def probe_features(loaded: LoadedModel, input_names: list[str]) -> dict[str, np.ndarray]:
    """A padded batch of (query, passage) pairs: two lengths, both token types, padding."""
    encoding = loaded.tokenizer(_PROBE_FIRST, text_pair=_PROBE_SECOND, padding=True, return_tensors="np")
    return {name: np.asarray(encoding[name], dtype=np.int64) for name in input_names}


def min_token_cosine(reference: np.ndarray, got: np.ndarray, attention_mask: np.ndarray) -> float:
    """The lowest cosine between the two hidden states over the real (unpadded) tokens."""
    real = attention_mask.astype(bool)
    a, b = reference[real].astype(np.float64), got[real].astype(np.float64)
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min())


def export_onnx(model: torch.nn.Module, input_names: list[str], example: Mapping[str, np.ndarray], path: Path) -> None:
    """Export ``model``'s ``last_hidden_state`` with the dynamo exporter, batch and sequence dynamic."""
    wrapper = _LastHiddenState(_reference_model(model), input_names).eval()
    args = tuple(torch.from_numpy(np.asarray(example[name])) for name in input_names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with warnings.catch_warnings():
        # Every input shares the two axes, which the exporter reports once per input.
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch's own internals
        program = torch.onnx.export(
            wrapper,
            args,
            dynamo=True,
            opset_version=OPSET,
            input_names=input_names,
            output_names=["last_hidden_state"],
            dynamic_shapes=(tuple({0: batch, 1: sequence} for _ in input_names),),  # one entry: the *inputs
            verbose=False,
        )
        assert program is not None
        program.save(str(path))


def _total_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.parent.iterdir())


def optimize_onnx(source: Path, path: Path) -> None:
    """ONNX Runtime's transformer fusions, in Python only (opt_level 0: no hardware-specific kernels)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    optimized.save_model_to_file(str(path), use_external_data_format=_total_size(source) > 1 << 31)


def _fed_by(node: Any, chain: list[str], producers: Mapping[str, Any]) -> bool:
    """Whether ``node``'s first input comes out of the operators ``chain`` (nearest first)."""
    for op_type in chain:
        producer = producers.get(node.input[0])
        if producer is None or producer.op_type != op_type:
            return False
        node = producer
    return True


def quantize_onnx(source: Path, path: Path) -> None:
    """Dynamic int8 per channel on the weight MatMuls that ``INT8_SETTINGS`` does not keep in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}
    keep = [
        node.name
        for node in graph.node
        if node.op_type in INT8_SETTINGS["op_types"]
        and any(_fed_by(node, chain, producers) for chain in INT8_SETTINGS["keep_fp32_fed_by"])
    ]
    quantize_dynamic(
        source,
        path,
        op_types_to_quantize=INT8_SETTINGS["op_types"],
        per_channel=INT8_SETTINGS["per_channel"],
        weight_type=QuantType[INT8_SETTINGS["weight_type"]],
        nodes_to_exclude=keep,
        use_external_data_format=_total_size(source) > 1 << 31,
    )


def session_options(threads: int) -> Any:
    """One inference at a time on ``threads`` intra-op threads that sleep rather than spin when idle."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A spinning worker keeps a core busy between operators; on shared cores it takes them from the
    # thread doing the work (and from every other process).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxRuntimeGraph:
    """An ONNX file run by ONNX Runtime on the CPU: one session per thread count, made when first needed.

    A single text runs on a one-thread session; a batch on ``threads`` threads (default: the cores
    this process may use). Sessions are safe to call from several threads at once.
    """

    def __init__(self, path: Path, input_names: list[str], *, threads: int | None = None) -> None:
        self.path = path
        self.input_names = input_names
        self.threads = threads or cpu_threads()
        self.sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self.sessions:
                import onnxruntime

                self.sessions[threads] = onnxruntime.InferenceSession(
                    str(self.path), session_options(threads), providers=["CPUExecutionProvider"]
                )
            return self.sessions[threads]

    def __call__(self, features: Mapping[str, np.ndarray], *, single_thread: bool) -> np.ndarray:
        session = self.session(1 if single_thread else self.threads)
        return session.run(["last_hidden_state"], {name: features[name] for name in self.input_names})[0]


def _eval_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself in eval mode, or an eval-mode copy if it is training (no dropout in a check)."""
    return copy.deepcopy(model).eval() if model.training else model


def reference_hidden_states(loaded: LoadedModel, features: Mapping[str, np.ndarray]) -> np.ndarray:
    model = _eval_model(loaded.model)
    with torch.inference_mode():
        inputs = {name: torch.from_numpy(value).to(model.device) for name, value in features.items()}
        return model(**inputs, return_dict=True).last_hidden_state.float().cpu().numpy()


def check_graph(graph: Any, loaded: LoadedModel, input_names: list[str], what: str) -> float:
    features = probe_features(loaded, input_names)
    cosine = min_token_cosine(
        reference_hidden_states(loaded, features), graph(features, single_thread=True), features["attention_mask"]
    )
    if cosine < MIN_COSINE:
        raise ModelLoadError(
            f"The {what} of {loaded.source} does not match the torch model (min token cosine {cosine:.7f} < "
            f"{MIN_COSINE}); refusing to serve its vectors. Use backend='torch'."
        )
    return cosine


def _run_finite(graph: Any, loaded: LoadedModel, input_names: list[str]) -> None:
    if not np.isfinite(graph(probe_features(loaded, input_names), single_thread=True)).all():
        raise ModelLoadError(f"The int8 graph of {loaded.source} produces non-finite values; use precision='exact'.")


def export_dir(loaded: LoadedModel, input_names: list[str], cache_dir: str | Path | None = None) -> Path:
    """Where the plain fp32 export of ``loaded`` is cached (its fingerprint's directory, then the key)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / cached_model_fingerprint(loaded.model, loaded.tokenizer) / cache_key("export", input_names)


def exported_graph(loaded: LoadedModel, input_names: list[str], target: Path) -> Path:
    """The plain fp32 export of ``loaded`` in ``target`` (the file OpenVINO reads, and the source of the others)."""
    example = probe_features(loaded, input_names)

    def build(path: Path) -> dict[str, Any]:
        logger.info("Exporting %s to ONNX (once for these weights; cached in %s)", loaded.source, target)
        export_onnx(loaded.model, input_names, example, path)
        return {"source": loaded.source, "versions": _versions(), "opset": OPSET}

    return cached_build(target, build)


def _build_int8(export: Path, target: Path) -> Path:
    def build(path: Path) -> dict[str, Any]:
        quantize_onnx(export, path)
        return {"from": export.parent.name, "int8": INT8_SETTINGS}

    return cached_build(target, build)


def _build_fp32(export: Path, target: Path, loaded: LoadedModel, input_names: list[str]) -> Path:
    def build(path: Path) -> dict[str, Any]:
        optimize_onnx(export, path)
        try:
            cosine = check_graph(OnnxRuntimeGraph(path, input_names, threads=1), loaded, input_names, "optimised graph")
            return {"from": export.parent.name, "optimized": True, "min_token_cosine": cosine}
        except ModelLoadError as error:
            logger.warning("%s Using the graph without ONNX Runtime's fusions.", error)
            for file in path.parent.iterdir():
                file.unlink()
            shutil.copyfile(export, path)
            return {"from": export.parent.name, "optimized": False}

    return cached_build(target, build)


def load_onnx_runtime(
    loaded: LoadedModel, input_names: list[str], *, quantize: bool = False, cache_dir: str | Path | None = None
) -> OnnxRuntimeGraph:
    """The ONNX Runtime graph of ``loaded`` (fp32, or int8 with ``quantize``), exported at most once.

    An fp32 graph is checked against the torch model (see the module docstring). A cached file that
    fails to load or to agree is deleted and built once more; a freshly built one that fails is an error.
    """
    export_target = export_dir(loaded, input_names, cache_dir)
    if quantize:
        target = export_target.parent / cache_key("int8", input_names, INT8_SETTINGS)
    else:
        target = export_target.parent / cache_key("ort-fp32", input_names, {"optimizer_model_type": "bert"})
    while True:
        was_cached = (target / "model.onnx").is_file()
        export = exported_graph(loaded, input_names, export_target)
        path = _build_int8(export, target) if quantize else _build_fp32(export, target, loaded, input_names)
        try:
            graph = OnnxRuntimeGraph(path, input_names)
            if quantize:  # lossy by design: its quality is measured on retrieval (BENCHMARKS.md), here it must run
                _run_finite(graph, loaded, input_names)
            else:
                check_graph(graph, loaded, input_names, "ONNX graph")
            return graph
        except Exception as error:
            if not was_cached:
                raise
            logger.warning("Cached ONNX graph %s is unusable (%s); building it again", target, error)
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(export_target, ignore_errors=True)
