"""Component conventions: serialisation, async, inputs never mutated, input errors, model sharing, recipes."""

from __future__ import annotations

import asyncio
import copy
import json

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.utils import ComponentDevice, Secret

from simlm_haystack import (
    RECIPE_FILE,
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    ModelLoadError,
    Recipe,
    RecipeError,
    get_recipe,
    resolve_recipe,
)
from simlm_haystack.models import load_model


@pytest.fixture
def documents() -> list[Document]:
    return [
        Document(content="Aspirin reduces the risk of heart attack.", meta={"title": "Aspirin", "year": 2020}),
        Document(content=None, meta={"title": "Only a title"}),
        Document(content="No title here."),
    ]


def test_document_embedder_returns_new_documents_and_leaves_input_untouched(
    tiny_bert: str, documents: list[Document]
) -> None:
    before = copy.deepcopy(documents)
    result = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False).run(documents)
    assert documents == before
    assert all(d.embedding is None for d in documents)
    out = result["documents"]
    assert [d.id for d in out] == [d.id for d in documents]
    assert [d.meta for d in out] == [d.meta for d in documents]
    assert all(len(d.embedding) == 32 and np.isfinite(d.embedding).all() for d in out)
    assert out[1].content is None  # content=None is embedded as its title alone


def test_empty_list_and_wrong_types(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    assert embedder.run([]) == {"documents": []}
    with pytest.raises(TypeError, match="expects a list of Documents"):
        embedder.run("a string")
    with pytest.raises(TypeError, match="item 1 is str"):
        embedder.run([Document(content="a"), "b"])
    text_embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    with pytest.raises(TypeError, match="expects a string"):
        text_embedder.run([Document(content="a")])
    assert len(text_embedder.run("")["embedding"]) == 32


def test_meta_fields_to_embed_and_title_field(tiny_bert: str) -> None:
    document = Document(content="text", meta={"title": "T", "heading": "H", "name": "N"})
    default = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    assert default._title_and_text(document) == ("T", "text")
    custom = DualEncoderDocumentEmbedder(
        model=tiny_bert,
        recipe="simlm",
        title_field="name",
        meta_fields_to_embed=["heading", "missing"],
        embedding_separator=" | ",
        progress_bar=False,
    )
    assert custom._title_and_text(document) == ("N", "H | text")
    assert DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", title_field=None)._title_and_text(document) == (
        None,
        "text",
    )


def test_run_async_gives_the_same_vectors(tiny_bert: str, documents: list[Document]) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")

    async def both() -> tuple:
        return await embedder.run_async(documents), await text_embedder.run_async("a query")

    async_documents, async_query = asyncio.run(both())
    assert [d.embedding for d in async_documents["documents"]] == [
        d.embedding for d in embedder.run(documents)["documents"]
    ]
    assert async_query == text_embedder.run("a query")


def test_text_and_document_embedders_share_one_model(tiny_bert: str) -> None:
    documents = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm")
    text = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm")
    documents.warm_up()
    text.warm_up()
    text.warm_up()  # idempotent
    assert documents.encoder.loaded is text.encoder.loaded


def test_to_dict_from_dict_round_trip(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    embedder = DualEncoderDocumentEmbedder(
        model=tiny_bert,
        recipe="simlm",
        device=ComponentDevice.from_str("cpu"),
        batch_size=4,
        meta_fields_to_embed=["heading"],
        embedding_separator=" ",
        precision="bf16",
    )
    data = embedder.to_dict()
    assert data == {
        "type": "simlm_haystack.components.document_embedder.DualEncoderDocumentEmbedder",
        "init_parameters": {
            "model": tiny_bert,
            "recipe": "simlm",
            "device": ComponentDevice.from_str("cpu").to_dict(),
            "token": {"type": "env_var", "env_vars": ["HF_API_TOKEN", "HF_TOKEN"], "strict": False},
            "batch_size": 4,
            "progress_bar": True,
            "precision": "bf16",
            "local_files_only": False,
            "trust_remote_code": False,
            "revision": None,
            "model_kwargs": None,
            "tokenizer_kwargs": None,
            "title_field": "title",
            "meta_fields_to_embed": ["heading"],
            "embedding_separator": " ",
        },
    }
    assert "hf_secret_value" not in json.dumps(data)
    restored = DualEncoderDocumentEmbedder.from_dict(data)
    assert restored.to_dict() == data
    assert restored.recipe == get_recipe("simlm")


def test_custom_recipe_serialises_as_its_fields(tiny_bert: str) -> None:
    custom = Recipe(name="custom", query_max_length=16, document_max_length=64, pooling="mean")
    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe=custom, token=None)
    data = embedder.to_dict()
    assert data["init_parameters"]["recipe"] == custom.to_dict()
    assert DualEncoderTextEmbedder.from_dict(data).recipe == custom


def test_pipeline_yaml_round_trip_loads_without_allowlist_arguments(tiny_bert: str) -> None:
    pipeline = Pipeline()
    pipeline.add_component("embedder", DualEncoderTextEmbedder(model=tiny_bert, recipe="tas-b"))
    yaml = pipeline.dumps()
    assert "simlm_haystack.components.text_embedder.DualEncoderTextEmbedder" in yaml
    loaded = Pipeline.loads(yaml)  # importing simlm_haystack put it on Haystack's allowlist
    assert loaded.get_component("embedder").recipe == get_recipe("tas-b")
    result = loaded.run({"embedder": {"text": "hello"}})
    assert len(result["embedder"]["embedding"]) == 32


def test_token_secret_is_resolved_but_never_serialised(tiny_bert: str) -> None:
    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", token=Secret.from_token("hf_abc"))
    with pytest.raises(ValueError, match="Cannot serialize token-based secret"):
        embedder.to_dict()


def test_recipe_resolution_order(tiny_bert: str, tmp_path) -> None:
    assert resolve_recipe("intfloat/simlm-base-msmarco-finetuned") == get_recipe("simlm")
    assert resolve_recipe("sentence-transformers/msmarco-distilbert-base-tas-b").name == "tas-b"
    assert resolve_recipe("anything", "minilm").name == "minilm"
    custom = Recipe(name="mine", query_max_length=20, document_max_length=100, title_mode="pair", default_title="-")
    custom.save(tmp_path)
    assert (tmp_path / RECIPE_FILE).is_file()
    assert resolve_recipe(tmp_path) == custom
    assert resolve_recipe(tmp_path, "tas-b").name == "tas-b"  # explicit wins over the file
    with pytest.raises(RecipeError, match=r"No recipe is known.*simlm.*tas-b"):
        DualEncoderTextEmbedder(model=tiny_bert)
    with pytest.raises(RecipeError, match="Unknown recipe 'simml'"):
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simml")


def test_recipe_rejects_inconsistent_fields() -> None:
    with pytest.raises(RecipeError, match="cosine similarity needs normalize"):
        Recipe(name="bad", query_max_length=8, document_max_length=8, normalize=False)
    with pytest.raises(RecipeError, match="Unknown recipe fields"):
        Recipe.from_dict({"name": "x", "query_max_length": 8, "document_max_length": 8, "pool": "cls"})


def test_missing_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="Could not load model 'intfloat/simlm-base-msmarco-finetuned'"):
        load_model("intfloat/simlm-base-msmarco-finetuned", local_files_only=True)
    embedder = DualEncoderTextEmbedder(model="intfloat/simlm-base-msmarco-finetuned", local_files_only=True)
    with pytest.raises(ModelLoadError, match="offline"):
        embedder.run("q")
