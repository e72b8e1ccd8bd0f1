"""backend="onnx" / "openvino": the exported graph computes what the torch model computes (issue 11).

The recipe code (tokenise, sort by length, pad, pool, normalise) is the encoder's own whatever the
backend; only ``last_hidden_state`` comes from the graph. No timings here (benchmarks/speed_onnx_documents.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from transformers import AutoModel

from simlm_haystack.backends import BACKEND_PRECISIONS, check_backend
from simlm_haystack.backends import onnx as onnx_backend
from simlm_haystack.encoding import DualEncoder, tokenize
from simlm_haystack.models import LoadedModel, load_model
from simlm_haystack.recipes import get_recipe

MIN_COSINE = 0.99999
TITLES = ["Aspirin", None, "", "A title that is a good deal longer than the others are", "Scurvy"]
TEXTS = [
    "Aspirin inhibits cyclooxygenase.",
    "short",
    "Signal transduction in T cells depends on many kinases, phosphatases and adaptor proteins " * 30,
    "Mitochondria are the powerhouse of the cell.",
    "Scurvy results from a lack of vitamin C. " * 5,
]
QUERIES = ["what causes scurvy?", "does aspirin inhibit cyclooxygenase in platelets " * 10, "cells"]


def assert_same_vectors(got: np.ndarray, reference: np.ndarray) -> None:
    assert got.shape == reference.shape and got.dtype == np.float32
    norms_got, norms_reference = np.linalg.norm(got, axis=1), np.linalg.norm(reference, axis=1)
    np.testing.assert_allclose(norms_got, norms_reference, rtol=1e-5)
    cosine = (got * reference).sum(axis=1) / (norms_got * norms_reference)
    assert cosine.min() >= MIN_COSINE, cosine


def encoders(path: str, recipe: str, backend: str, cache: Path) -> tuple[DualEncoder, DualEncoder]:
    loaded = load_model(path)
    return DualEncoder(loaded, get_recipe(recipe)), DualEncoder(
        loaded, get_recipe(recipe), backend=backend, cache_dir=cache
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize(("fixture", "recipe"), [("tiny_bert", "simlm"), ("tiny_distilbert", "tas-b")])
def test_graph_vectors_equal_torch(
    fixture: str, recipe: str, backend: str, cache: Path, request: pytest.FixtureRequest
) -> None:
    torch_encoder, graph_encoder = encoders(request.getfixturevalue(fixture), recipe, backend, cache)
    assert graph_encoder.input_names == (
        ["input_ids", "token_type_ids", "attention_mask"] if fixture == "tiny_bert" else ["input_ids", "attention_mask"]
    )
    tokens = tokenize(torch_encoder.loaded.tokenizer, get_recipe(recipe), "document", TEXTS, TITLES)
    lengths = [len(ids) for ids in tokens["input_ids"]]
    assert max(lengths) == get_recipe(recipe).document_max_length, "one document must be truncated"
    assert len(set(lengths)) == len(lengths), "the batches must mix lengths (padding)"
    if recipe == "simlm":
        assert any(1 in types for types in tokens["token_type_ids"]), "pairs must use the second token type"
    # Mixed-length batches of 2 (and a last batch of 1), documents with and without titles.
    documents = graph_encoder.encode("document", TEXTS, TITLES, batch_size=2)
    assert_same_vectors(documents, torch_encoder.encode("document", TEXTS, TITLES, batch_size=2))
    queries = graph_encoder.encode("query", QUERIES, batch_size=8)
    assert_same_vectors(queries, torch_encoder.encode("query", QUERIES, batch_size=8))
    # A single query: the one-thread path.
    assert_same_vectors(graph_encoder.encode("query", QUERIES[:1]), torch_encoder.encode("query", QUERIES[:1]))
    if recipe == "tas-b":  # no normalisation: raw [CLS] vectors, so the norms themselves must match
        assert not np.allclose(np.linalg.norm(documents, axis=1), 1.0)


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_distilbert"])
def test_onnx_runtime_fusions_are_used_where_they_are_exact(
    fixture: str, cache: Path, request: pytest.FixtureRequest
) -> None:
    _, encoder = encoders(request.getfixturevalue(fixture), "tas-b", "onnx", cache)
    info = (encoder.graph.path.parent / "info.json").read_text()
    assert '"optimized": true' in info
    operators = {node.op_type for node in onnx.load(str(encoder.graph.path)).graph.node}
    assert "SkipLayerNormalization" in operators


def test_fusions_that_change_the_vectors_are_dropped(
    tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    optimize = onnx_backend.optimize_onnx

    def wrong_optimisation(source: Path, path: Path) -> None:
        optimize(source, path)
        model = onnx.load(str(path))
        # The last fused layer norm's scale, half of it negated: the graph no longer agrees with torch.
        last = [node for node in model.graph.node if node.op_type == "SkipLayerNormalization"][-1]
        gamma = next(tensor for tensor in model.graph.initializer if tensor.name == last.input[2])
        values = onnx.numpy_helper.to_array(gamma).copy()
        values[: len(values) // 2] *= -1
        gamma.CopyFrom(onnx.numpy_helper.from_array(values, gamma.name))
        onnx.save(model, str(path))

    monkeypatch.setattr(onnx_backend, "optimize_onnx", wrong_optimisation)
    torch_encoder, graph_encoder = encoders(tiny_bert, "simlm", "onnx", tmp_path)
    assert '"optimized": false' in (graph_encoder.graph.path.parent / "info.json").read_text()
    assert_same_vectors(
        graph_encoder.encode("document", TEXTS, TITLES), torch_encoder.encode("document", TEXTS, TITLES)
    )


class ExportSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._export = torch.onnx.export
        monkeypatch.setattr(torch.onnx, "export", self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._export(*args, **kwargs)


def perturbed(path: str) -> LoadedModel:
    """The same checkpoint with one weight changed by 1e-3, loaded outside the shared cache."""
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[0, 0] += 1e-3
    return LoadedModel(model=model, tokenizer=load_model(path).tokenizer, source=path)


def test_export_is_cached_and_keyed_by_the_weights(
    tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ExportSpy(monkeypatch)
    recipe = get_recipe("simlm")
    first = DualEncoder(load_model(tiny_bert), recipe, backend="onnx", cache_dir=tmp_path)
    assert spy.calls == 1
    second = DualEncoder(load_model(tiny_bert), recipe, backend="onnx", cache_dir=tmp_path)
    assert spy.calls == 1, "the second encoder must load the cached graph"
    assert second.graph.path == first.graph.path
    np.testing.assert_array_equal(second.encode("query", QUERIES), first.encode("query", QUERIES))

    changed = DualEncoder(perturbed(tiny_bert), recipe, backend="onnx", cache_dir=tmp_path)
    assert spy.calls == 2, "changed weights must be exported anew"
    assert changed.graph.path.parent.parent != first.graph.path.parent.parent
    assert_same_vectors(changed.encode("query", QUERIES), DualEncoder(changed.loaded, recipe).encode("query", QUERIES))

    # The environment variable moves the cache.
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path / "elsewhere"))
    moved = DualEncoder(load_model(tiny_bert), recipe, backend="onnx")
    assert spy.calls == 3 and str(moved.graph.path).startswith(str(tmp_path / "elsewhere"))


def test_a_half_written_graph_is_never_loaded(tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ExportSpy(monkeypatch)
    loaded, recipe = load_model(tiny_bert), get_recipe("simlm")
    reference = DualEncoder(loaded, recipe).encode("document", TEXTS, TITLES)
    export_target = onnx_backend.export_dir(loaded, ["input_ids", "token_type_ids", "attention_mask"], tmp_path)

    # An export interrupted in this process: its partial file is removed, nothing is put in place.
    def interrupted(model: object, names: object, example: object, path: Path) -> None:
        path.write_bytes(b"\x08\x07half a protobuf")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_backend, "export_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        DualEncoder(loaded, recipe, backend="onnx", cache_dir=tmp_path)
    assert not export_target.exists()
    assert not list(export_target.parent.glob(".partial-*"))
    monkeypatch.undo()
    spy = ExportSpy(monkeypatch)

    # A process killed mid-export (SIGKILL: no cleanup) leaves its partial directory: never read, removed.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    partial = export_target.parent / f".partial-{int(dead.stdout)}-abandoned"
    partial.mkdir(parents=True)
    (partial / "model.onnx").write_bytes(b"\x08\x07half a protobuf")
    encoder = DualEncoder(loaded, recipe, backend="onnx", cache_dir=tmp_path)
    assert spy.calls == 1 and not partial.exists()
    assert_same_vectors(encoder.encode("document", TEXTS, TITLES), reference)

    # A final file damaged later (a disk error, a user's edit) fails to load: rebuilt once, not served.
    path = encoder.graph.path
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rebuilt = DualEncoder(loaded, recipe, backend="onnx", cache_dir=tmp_path)
    assert spy.calls == 2
    assert_same_vectors(rebuilt.encode("document", TEXTS, TITLES), reference)


def test_a_single_text_runs_on_one_non_spinning_thread(tiny_bert: str, cache: Path) -> None:
    encoder = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), backend="onnx", cache_dir=cache)
    graph = encoder.graph
    graph.threads = 2  # a batch's thread count, whatever this machine has
    used: list[int] = []
    session = graph.session

    def spy(threads: int) -> object:
        used.append(threads)
        return session(threads)

    graph.session = spy  # type: ignore[method-assign]
    encoder.encode("query", QUERIES[:1])
    assert used == [1]
    encoder.encode("query", QUERIES, batch_size=2)
    assert used == [1, 2, 2]
    options = graph.sessions[1].get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert graph.sessions[2].get_session_options().intra_op_num_threads == 2


def test_openvino_runs_a_single_text_on_one_thread(tiny_bert: str, cache: Path) -> None:
    encoder = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), backend="openvino", cache_dir=cache)
    graph = encoder.graph
    graph.threads = 2
    encoder.encode("query", QUERIES[:1])
    assert list(graph.compiled) == [1]  # the load-time check and the query both ran on one thread
    assert graph.compiled[1].get_property("INFERENCE_NUM_THREADS") == 1
    encoder.encode("query", QUERIES, batch_size=2)
    assert graph.compiled[2].get_property("INFERENCE_NUM_THREADS") == 2


def test_precisions_are_checked_per_backend(tiny_bert: str) -> None:
    loaded, recipe = load_model(tiny_bert), get_recipe("simlm")
    for backend, precision in (("onnx", "fast"), ("onnx", "bf16"), ("torch", "int8"), ("openvino", "int8")):
        with pytest.raises(ValueError, match=f"backend='{backend}' does not run precision='{precision}'"):
            DualEncoder(loaded, recipe, backend=backend, precision=precision)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend must be one of"):
        DualEncoder(loaded, recipe, backend="tensorrt")  # type: ignore[arg-type]
    for backend, precisions in BACKEND_PRECISIONS.items():
        for precision in precisions:
            check_backend(backend, precision)


@pytest.fixture(scope="module")
def minilm_encoders(minilm_path: str, cache: Path) -> dict[str, DualEncoder]:
    loaded, recipe = load_model(minilm_path), get_recipe("minilm")
    return {
        "torch": DualEncoder(loaded, recipe),
        "onnx": DualEncoder(loaded, recipe, backend="onnx", cache_dir=cache),
        "int8": DualEncoder(loaded, recipe, backend="onnx", precision="int8", cache_dir=cache),
    }


@pytest.mark.integration
def test_minilm_onnx_equals_torch(minilm_encoders: dict[str, DualEncoder], sample_dir: Path) -> None:
    import json

    rows = [json.loads(line) for line in (sample_dir / "corpus.jsonl").read_text().splitlines()[:24]]
    texts, titles = [row["text"] for row in rows], [row.get("title") for row in rows]
    texts[0] = texts[0] * 20  # past the recipe's 256 tokens
    reference = minilm_encoders["torch"].encode("document", texts, titles, batch_size=8)
    assert_same_vectors(minilm_encoders["onnx"].encode("document", texts, titles, batch_size=8), reference)
    assert_same_vectors(
        minilm_encoders["onnx"].encode("query", QUERIES[:1]), minilm_encoders["torch"].encode("query", QUERIES[:1])
    )
    # int8: lossy by design (its retrieval quality is in BENCHMARKS.md), but close and normalised.
    quantised = minilm_encoders["int8"].encode("document", texts, titles, batch_size=8)
    assert (quantised * reference).sum(axis=1).min() > 0.98
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, rtol=1e-5)
    graph = onnx.load(str(minilm_encoders["int8"].graph.path)).graph
    kinds = [node.op_type for node in graph.node]
    # 6 layers x (Q, K, V, attention output, FFN in); the FFN output stays fp32 (INT8_SETTINGS)
    assert kinds.count("MatMulInteger") == 30 and kinds.count("MatMul") == 6 + 12  # + QK^T and AV per layer
    assert "DynamicQuantizeLinear" in kinds


# --- backend= on the components, the LangChain embeddings and the CLI: the same graph behind each ---


def test_components_and_langchain_run_the_backend_they_are_given(
    tiny_bert: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haystack import Document

    from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderRetriever, DualEncoderTextEmbedder
    from simlm_haystack.langchain import DualEncoderEmbeddings

    monkeypatch.setenv("SIMLM_HAYSTACK_ONNX_CACHE", str(cache))
    torch_text = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    onnx_text = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", backend="onnx")
    onnx_text.warm_up()
    assert onnx_text.encoder is not None and onnx_text.encoder.backend == "onnx" and onnx_text.encoder.graph
    query = QUERIES[0]
    reference = np.array([torch_text.run(text=query)["embedding"]], dtype=np.float32)
    assert_same_vectors(np.array([onnx_text.run(text=query)["embedding"]], dtype=np.float32), reference)
    int8 = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", backend="onnx", precision="int8")
    int8.warm_up()
    assert int8.encoder is not None and int8.encoder.precision == "int8" and int8.encoder.backend == "onnx"
    documents = [Document(content=text, meta={"title": title}) for text, title in zip(TEXTS, TITLES, strict=True)]
    assert len(int8.run(documents=documents)["documents"]) == len(TEXTS)
    # Serialised and loaded back with the backend; from_encoder keeps the encoder's.
    for component in (onnx_text, int8):
        data = component.to_dict()
        assert data["init_parameters"]["backend"] == "onnx"
        assert type(component).from_dict(data).backend == "onnx"
    assert DualEncoderTextEmbedder.from_encoder(int8.encoder).backend == "onnx"
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=_in_memory_store(), backend="onnx")
    assert retriever.to_dict()["init_parameters"]["backend"] == "onnx"
    embeddings = DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", backend="onnx")
    assert embeddings.warm_up().backend == "onnx" and "backend='onnx'" in repr(embeddings)
    assert_same_vectors(np.array([embeddings.embed_query(query)], dtype=np.float32), reference)


def _in_memory_store():
    from simlm_haystack.stores import qdrant_document_store

    return qdrant_document_store("simlm", embedding_dim=32, location=":memory:", index="backend")


def test_backend_and_precision_are_checked_together(tiny_bert: str) -> None:
    from simlm_haystack import DualEncoderTextEmbedder
    from simlm_haystack.errors import RecipeError, SettingsError
    from simlm_haystack.langchain import DualEncoderEmbeddings

    # sentence-transformers' precision="int8" quantises the vectors: refused on torch, with the way to int8 weights.
    with pytest.raises(RecipeError, match="backend='onnx' with precision='int8'"):
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", precision="int8")
    with pytest.raises(SettingsError, match=r"precision must be one of \('exact', 'int8'\) on backend 'onnx'"):
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", backend="onnx", precision="fast")
    with pytest.raises(SettingsError, match="backend must be one of"):
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="does not run precision='int8'"):
        DualEncoderEmbeddings(model=tiny_bert, recipe="simlm", backend="openvino", precision="int8")


def test_cli_search_on_the_onnx_backend(tiny_bert: str, cache: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from conftest import write_jsonl

    from simlm_haystack import cli

    monkeypatch.setenv("SIMLM_HAYSTACK_ONNX_CACHE", str(cache))
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": str(i), "title": title or "", "text": text}
            for i, (text, title) in enumerate(zip(TEXTS, TITLES, strict=True))
        ],
    )
    common = ["--model", tiny_bert, "--recipe", "simlm", "--qdrant-path", str(tmp_path / "q"), "--index", "b"]
    assert cli.main(["index", str(corpus), "--quiet", *common]) == 0
    capsys.readouterr()
    assert cli.main(["search", "what causes scurvy?", "--backend", "onnx", "--top-k", "2", *common]) == 0
    onnx_output = capsys.readouterr().out
    assert cli.main(["search", "what causes scurvy?", "--top-k", "2", *common]) == 0
    assert capsys.readouterr().out == onnx_output
    assert cli.main(["search", "x", "--backend", "onnx", "--precision", "bf16", *common]) == cli.EXIT_USAGE
    assert "precision must be one of ('exact', 'int8') on backend 'onnx'" in capsys.readouterr().err
