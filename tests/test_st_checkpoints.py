"""Any sentence-transformers checkpoint is read exactly as its authors made it, with no recipe named: every
pooling mode and combination, Dense layers, Normalize, prompts (and leaving them out of pooling), lengths and
lowercasing give ``SentenceTransformer.encode_query`` / ``encode_document``'s vectors, through every
framework's class and backend. A module that cannot be run exactly is refused before any weights load."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from sentence_transformers import SentenceTransformer

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    RecipeError,
    build_indexing_pipeline,
    edge_document_store,
    get_recipe,
    resolve_recipe,
)
from simlm_haystack.encoding import load_encoder
from simlm_haystack.recipes import RECIPE_FILE, VECTOR_FIELDS, vector_fields

TEXTS = [
    "What reduces the risk of a Heart Attack?",
    "x",
    "Aspirin lowers the risk of a second heart attack in patients with coronary disease. " * 12,
    "Numbers 12 345 and unicode: café, naïve, 東京.",
]
TITLES = ["Aspirin and the Heart", None, "A long abstract", ""]

#: One checkpoint per reading: name -> the ``tiny_st`` fixture's arguments.
READINGS: dict[str, dict] = {
    "cls": {"pooling": "cls"},
    "mean": {"pooling": "mean", "normalize": True},
    "max": {"pooling": "max"},
    "mean-sqrt-len": {"pooling": "mean_sqrt_len_tokens"},
    "weighted-mean": {"pooling": "weightedmean", "normalize": True},
    "last-token": {"pooling": "lasttoken"},
    "cls-mean-max": {"pooling": ("cls", "mean", "max"), "normalize": True},
    "dense-prompts-dot": {
        "pooling": "mean",
        "dense": [(16, "tanh", False), (16, None, True)],
        "normalize": True,
        "prompts": {"query": "query: ", "document": "passage: "},
        "similarity": "dot",
    },
    "prompt-not-pooled": {
        "pooling": "mean",
        "include_prompt": False,
        "prompts": {"query": "Represent this question for retrieval: ", "passage": "doc: "},
        "normalize": True,
    },
    "cls-prompt-not-pooled": {"pooling": "cls", "include_prompt": False, "prompts": {"query": "q: "}},
    "max-seq-length": {"pooling": "mean", "max_seq_length": 12, "normalize": True},
    "lowercase": {"pooling": "mean", "do_lower_case": True, "cased": True, "normalize": True},
}


def build(tiny_st, name: str) -> str:
    reading = dict(READINGS[name])
    dense = [
        (size, None if activation is None else _tanh(), residual)
        for size, activation, residual in reading.pop("dense", [])
    ]
    return tiny_st(name, dense=dense, **reading)


def _tanh():
    import torch

    return torch.nn.Tanh()


def assert_same_vectors(ours: np.ndarray, reference: np.ndarray, *, min_cosine: float = 0.99999) -> None:
    ours, reference = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape
    cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= min_cosine, cosine
    if min_cosine >= 0.99999:
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-5)


def their_documents(titles: list[str | None], texts: list[str]) -> list[str]:
    """How a sentence-transformers user feeds a titled document: the recipe's ``title + " " + text``."""
    return [f"{title} {text}" if title else text for title, text in zip(titles, texts, strict=True)]


@pytest.mark.parametrize("name", list(READINGS))
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_every_reading_gives_sentence_transformers_vectors(tiny_st, name: str, backend: str) -> None:
    path = build(tiny_st, name)
    reference = SentenceTransformer(path, device="cpu")
    text_embedder = DualEncoderTextEmbedder(model=path, backend=backend)  # no recipe named
    document_embedder = DualEncoderDocumentEmbedder(model=path, backend=backend, progress_bar=False, batch_size=3)
    assert text_embedder.recipe.name == "sentence-transformers"

    queries = np.array([text_embedder.run(text)["embedding"] for text in TEXTS])
    assert_same_vectors(queries, reference.encode_query(TEXTS))
    documents = [
        Document(content=text, meta={} if title is None else {"title": title})
        for text, title in zip(TEXTS, TITLES, strict=True)
    ]
    ours = np.array([d.embedding for d in document_embedder.run(documents)["documents"]])
    assert_same_vectors(ours, reference.encode_document(their_documents(TITLES, TEXTS)))


def test_prompts_are_those_sentence_transformers_encode_with_prompt_name(tiny_st) -> None:
    path = build(tiny_st, "dense-prompts-dot")
    reference = SentenceTransformer(path, device="cpu")
    recipe = resolve_recipe(path)
    assert (recipe.query_prefix, recipe.document_prefix, recipe.similarity) == ("query: ", "passage: ", "dot_product")
    encoder = load_encoder(path, recipe)
    assert_same_vectors(encoder.encode("query", TEXTS), reference.encode(TEXTS, prompt_name="query"))
    assert_same_vectors(encoder.encode("document", TEXTS), reference.encode(TEXTS, prompt_name="document"))
    assert encoder.embedding_dim == 16 == reference.get_embedding_dimension()


@pytest.mark.parametrize(
    ("prompts", "default", "query", "document"),
    [
        ({"classification": "Classify: "}, "classification", "classification", "classification"),
        ({"query": "q: ", "passage": "p: "}, None, "query", "passage"),
    ],
)
def test_older_checkpoints_prompts_are_read_as_their_authors_named_them(
    tiny_st, tmp_path: Path, prompts: dict, default: str | None, query: str, document: str
) -> None:
    """As sentence-transformers 2-4 saved them: a default prompt for every text, or a ``passage`` prompt, and
    no ``query`` / ``document`` entries. (sentence-transformers 6's ``encode_query`` / ``encode_document`` fill
    the missing entries with empty prompts; its ``encode`` with the prompt's name, or none for the default, is
    what these checkpoints' authors wrote.)"""
    path = tmp_path / "older-prompts"
    shutil.copytree(build(tiny_st, "mean"), path)
    config_file = path / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "prompts": prompts, "default_prompt_name": default}))
    recipe = resolve_recipe(path)
    assert (recipe.query_prefix, recipe.document_prefix) == (prompts[query], prompts[document])
    reference = SentenceTransformer(str(path), device="cpu")
    encoder = load_encoder(str(path), recipe)
    assert_same_vectors(encoder.encode("query", TEXTS), reference.encode(TEXTS, prompt_name=query))
    assert_same_vectors(encoder.encode("document", TEXTS), reference.encode(TEXTS, prompt_name=document))


def test_these_checkpoints_tell_readings_apart(tiny_st) -> None:
    """The test checkpoints are sensitive enough that a wrong prompt, pooling or length would fail the tests."""
    reference = SentenceTransformer(build(tiny_st, "cls"), device="cpu")
    vectors = reference.encode(["what reduces heart attack risk", "q: what reduces heart attack risk", "plasmids"])
    cosine = vectors @ vectors.T / np.outer(np.linalg.norm(vectors, axis=1), np.linalg.norm(vectors, axis=1))
    assert cosine[0, 1] < 0.999 and cosine[0, 2] < 0.999


def test_the_legacy_configuration_format_reads_the_same(tiny_st, tmp_path: Path) -> None:
    """Checkpoints saved by sentence-transformers 2.x: ``sentence_transformers.models.*`` types, pooling flags,
    ``word_embedding_dimension``, the max length in ``sentence_bert_config.json``."""
    path = tmp_path / "legacy"
    shutil.copytree(build(tiny_st, "cls-mean-max"), path)
    modules = json.loads((path / "modules.json").read_text())
    for module in modules:
        module["type"] = "sentence_transformers.models." + module["type"].rsplit(".", 1)[-1]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": True,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 20, "do_lower_case": False}))
    recipe = resolve_recipe(path)
    assert recipe.pooling == ("cls", "max", "mean")  # the flags' concatenation order
    assert (recipe.query_max_length, recipe.document_max_length) == (20, 20)
    reference = SentenceTransformer(str(path), device="cpu")
    assert_same_vectors(load_encoder(str(path), recipe).encode("document", TEXTS), reference.encode(TEXTS))


def test_the_retriever_and_langchain_read_a_checkpoint_the_same_way(tiny_st, tmp_path: Path) -> None:
    from simlm_haystack.langchain import DualEncoderEmbeddings

    path = build(tiny_st, "dense-prompts-dot")
    reference = SentenceTransformer(path, device="cpu")
    embeddings = DualEncoderEmbeddings(model=path)
    expected_documents = reference.encode_document(their_documents(TITLES, TEXTS))
    assert_same_vectors(np.array(embeddings.embed_documents(TEXTS, TITLES)), expected_documents)
    assert_same_vectors(np.array([embeddings.embed_query(text) for text in TEXTS]), reference.encode_query(TEXTS))
    assert embeddings.embedding_dim == 16

    document_embedder = DualEncoderDocumentEmbedder(model=path, progress_bar=False)
    store = edge_document_store(document_embedder, path=str(tmp_path / "edge"), index="docs")
    documents = [Document(id=str(i), content=text) for i, text in enumerate(TEXTS)]
    build_indexing_pipeline(document_embedder, store).run({"embedder": {"documents": documents}})
    retriever = DualEncoderRetriever(model=path, document_store=store, top_k=4)
    found = retriever.run(query=TEXTS[0])["documents"]
    expected = reference.encode_document(TEXTS) @ reference.encode_query(TEXTS[:1])[0]  # dot product, as trained
    assert [d.id for d in found] == [str(i) for i in np.argsort(-expected)]
    np.testing.assert_allclose([d.score for d in found], np.sort(expected)[::-1], rtol=1e-4, atol=1e-5)
    retriever.close()


@pytest.mark.integration
def test_minilm_installed_folder_needs_no_recipe(minilm_path: str) -> None:
    recipe = resolve_recipe(minilm_path)
    assert recipe.name == "sentence-transformers"
    assert vector_fields(recipe.to_dict()) == vector_fields(get_recipe("minilm").to_dict())
    reference = SentenceTransformer(minilm_path, device="cpu")
    expected = reference.encode_document(their_documents(TITLES, TEXTS))
    embedder = DualEncoderDocumentEmbedder(model=minilm_path, progress_bar=False)
    documents = [Document(content=text, meta={"title": title}) for text, title in zip(TEXTS, TITLES, strict=True)]
    assert_same_vectors(np.array([d.embedding for d in embedder.run(documents)["documents"]]), expected)
    onnx = load_encoder(minilm_path, recipe, backend="onnx")
    assert_same_vectors(onnx.encode("document", TEXTS, TITLES), expected)
    # int8 weights: lossy by design, within the band the ONNX tests document (cosine > 0.98 to exact).
    int8 = load_encoder(minilm_path, recipe, backend="onnx", precision="int8")
    assert_same_vectors(int8.encode("document", TEXTS, TITLES), expected, min_cosine=0.98)


def test_model_cards_we_know_come_before_the_checkpoint_configuration(tiny_st, tmp_path: Path) -> None:
    # The hub id of a known card: its recipe, not what the checkpoint's own configuration would say.
    assert resolve_recipe("sentence-transformers/all-MiniLM-L6-v2").name == "minilm"
    # A recipe file beside the checkpoint comes before its sentence-transformers configuration ...
    path = tmp_path / "with-recipe-file"
    shutil.copytree(build(tiny_st, "mean"), path)
    get_recipe("simlm").save(path)
    assert resolve_recipe(path).name == "simlm"
    # ... and recipe= before both.
    assert resolve_recipe(path, "tas-b").name == "tas-b"
    assert DualEncoderTextEmbedder(model=str(path), recipe="bge").recipe.name == "bge"


def test_a_derived_recipe_is_logged_once(tiny_st, caplog: pytest.LogCaptureFixture) -> None:
    path = build(tiny_st, "last-token")
    with caplog.at_level(logging.INFO, logger="simlm_haystack"):
        DualEncoderTextEmbedder(model=path)
        DualEncoderDocumentEmbedder(model=path)
    said = [r.getMessage() for r in caplog.records if "sentence-transformers configuration says" in r.getMessage()]
    assert len(said) <= 1  # once per process: an earlier test may have said it already
    if said:
        assert "pooling lasttoken" in said[0] and "not normalised" in said[0] and "12" not in said[0]


def _without_weights(source: str, directory: Path) -> Path:
    """The checkpoint's configuration files alone: a refusal must come before any weights are needed."""
    for file in Path(source).rglob("*.json"):
        target = directory / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.read_text())
    return directory


def module(kind: str, path: str = "x") -> dict[str, str]:
    full = kind if "." in kind else f"sentence_transformers.models.{kind}"
    return {"idx": "9", "name": "9", "path": path, "type": full}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.append(module("my_package.Custom")), "own code"),
        (lambda m: m.__setitem__(0, {**m[0], "type": module("WordEmbeddings")["type"]}), "word-embedding"),
        (lambda m: m.insert(2, module("LSTM")), "LSTM"),
        (lambda m: m.append(module("Router")), "routes"),
        (lambda m: m.reverse(), "must come first"),
        (lambda m: m.append(module("Dense")), "Normalize is supported last only"),
        (lambda m: m.__setitem__(0, {**m[0], "path": "0_Transformer"}), "subfolder '0_Transformer'"),
    ],
)
def test_a_module_that_cannot_be_run_exactly_is_refused_by_name(tiny_st, tmp_path: Path, edit, message: str) -> None:
    path = _without_weights(build(tiny_st, "mean"), tmp_path / "checkpoint")
    modules = json.loads((path / "modules.json").read_text())
    edit(modules)
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(RecipeError, match=message) as error:
        DualEncoderTextEmbedder(model=str(path))
    assert "cannot be read exactly" in str(error.value) and "recipe=" in str(error.value)


def test_other_model_kinds_and_similarities_are_refused(tiny_st, tmp_path: Path) -> None:
    path = _without_weights(build(tiny_st, "cls"), tmp_path / "checkpoint")
    config_file = path / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "model_type": "SparseEncoder"}))
    with pytest.raises(RecipeError, match="SparseEncoder"):
        resolve_recipe(path)
    config_file.write_text(json.dumps({**config, "similarity_fn_name": "manhattan"}))
    with pytest.raises(RecipeError, match="manhattan"):
        resolve_recipe(path)


def test_a_folder_or_hub_id_with_no_configuration_says_what_was_looked_for(tiny_bert: str) -> None:
    with pytest.raises(RecipeError) as error:
        resolve_recipe(tiny_bert)
    message = str(error.value)
    assert "No recipe is known for local folder" in message and "modules.json" in message and RECIPE_FILE in message
    with pytest.raises(RecipeError, match=r"No recipe is known for model 'someone/not-in-the-cache'"):
        resolve_recipe("someone/not-in-the-cache")  # offline (conftest): nothing cached, the Hub not asked


def test_old_identity_records_without_the_new_fields_read_as_their_defaults() -> None:
    recorded = {name: value for name, value in get_recipe("minilm").to_dict().items() if name in VECTOR_FIELDS}
    for newer in ("lowercase", "prompt_in_pooling", "dense"):
        recorded.pop(newer)
    assert vector_fields(recorded) == vector_fields(get_recipe("minilm").to_dict())


def test_a_hub_id_is_read_from_the_hugging_face_cache(tiny_st, tmp_path: Path, monkeypatch) -> None:
    """A hub id none of our recipes names, whose files are in the Hugging Face cache (offline): its recipe is
    read from its cached sentence-transformers files and its Dense layer from the cached weights."""
    import huggingface_hub.constants

    source = Path(build(tiny_st, "dense-prompts-dot"))
    repository = tmp_path / "hub" / "models--someone--tiny-st"
    snapshot = repository / "snapshots" / ("0" * 40)
    shutil.copytree(source, snapshot)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    recipe = resolve_recipe("someone/tiny-st")
    assert recipe == resolve_recipe(source)
    embedder = DualEncoderTextEmbedder(model="someone/tiny-st")
    reference = SentenceTransformer(str(source), device="cpu")
    assert_same_vectors(np.array([embedder.run(text)["embedding"] for text in TEXTS]), reference.encode_query(TEXTS))
