"""Component conventions: serialisation, async, inputs never mutated, input errors, model sharing, recipes."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from haystack import Document, Pipeline
from haystack.core.errors import DeserializationError
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack import (
    RECIPE_FILE,
    DualEncoder,
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    EmptyQueryError,
    ModelLoadError,
    Recipe,
    RecipeError,
    build_indexing_pipeline,
    build_query_pipeline,
    get_recipe,
    resolve_recipe,
)
from simlm_haystack import settings as encoder_settings
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
    with pytest.raises(EmptyQueryError, match="The query is empty"):  # issue 11: not an arbitrary vector
        text_embedder.run("")


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
            "backend": "torch",
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
    with pytest.raises(RecipeError, match="pooling must be one of"):
        Recipe(name="bad", query_max_length=8, document_max_length=8, pooling=("cls", "average"))
    with pytest.raises(RecipeError, match=r"not a torch\.nn class"):
        Recipe.from_dict(
            {
                "name": "x",
                "query_max_length": 8,
                "document_max_length": 8,
                "dense": [{"path": "2_Dense", "in_features": 8, "out_features": 4, "activation": "my_code.Swish"}],
            }
        )
    # A cosine model that does not normalise (sentence-transformers checkpoints without Normalize) is a reading:
    # Qdrant scores its raw vectors by cosine all the same.
    assert not Recipe(name="raw", query_max_length=8, document_max_length=8, normalize=False).normalize
    with pytest.raises(RecipeError, match="Unknown recipe fields"):
        Recipe.from_dict({"name": "x", "query_max_length": 8, "document_max_length": 8, "pool": "cls"})


def test_missing_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="Could not load model 'intfloat/simlm-base-msmarco-finetuned'"):
        load_model("intfloat/simlm-base-msmarco-finetuned", local_files_only=True)
    embedder = DualEncoderTextEmbedder(model="intfloat/simlm-base-msmarco-finetuned", local_files_only=True)
    with pytest.raises(ModelLoadError, match="offline"):
        embedder.run("q")


def test_text_embedder_serialises_only_what_it_uses(tiny_bert: str) -> None:
    embedder = DualEncoderTextEmbedder(
        model=tiny_bert, recipe="simlm", precision="fast", revision="main", batch_size=8, progress_bar=False
    )
    data = embedder.to_dict()
    assert data == {
        "type": "simlm_haystack.components.text_embedder.DualEncoderTextEmbedder",
        "init_parameters": {
            "model": tiny_bert,
            "recipe": "simlm",
            "device": embedder.device.to_dict(),
            "token": {"type": "env_var", "env_vars": ["HF_API_TOKEN", "HF_TOKEN"], "strict": False},
            "precision": "fast",
            "backend": "torch",
            "local_files_only": False,
            "trust_remote_code": False,
            "revision": "main",
            "model_kwargs": None,
            "tokenizer_kwargs": None,
            "batch_size": 8,
        },
    }
    assert DualEncoderTextEmbedder.from_dict(data).to_dict() == data


def test_no_public_init_takes_arbitrary_keywords() -> None:
    # Haystack's unknown-parameter check in default_from_dict is off for an __init__ with **kwargs.
    for cls in (DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, DualEncoderRetriever):
        kinds = {parameter.kind for parameter in inspect.signature(cls.__init__).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, cls
        assert inspect.Parameter.VAR_POSITIONAL not in kinds, cls


def test_retriever_takes_every_setting_its_text_embedder_serialises() -> None:
    embedder_settings = set(inspect.signature(DualEncoderTextEmbedder.__init__).parameters) - {"self"}
    retriever_settings = set(inspect.signature(DualEncoderRetriever.__init__).parameters) - {"self"}
    # The text embedder's other parameters are sentence-transformers' names, there to load their YAML.
    sentence_transformers_only = {
        "prefix",
        "suffix",
        "normalize_embeddings",
        "truncate_dim",
        "progress_bar",
        "config_kwargs",
        "encode_kwargs",
        "quantization_ranges",
    }
    search = {"retrieval", "fusion", "rrf_k", "rrf_weights", "prefetch_limit", "bm25", "feedback"}
    retriever_only = {"document_store", "top_k", "filters", "allow_other_encoder"} | search
    assert retriever_settings == embedder_settings - sentence_transformers_only | retriever_only


def test_unknown_init_parameters_are_refused_by_from_dict(tiny_bert: str) -> None:
    data = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm").to_dict()
    data["init_parameters"]["pooling"] = "mean"
    with pytest.raises(TypeError, match="pooling"):
        DualEncoderDocumentEmbedder.from_dict(data)
    data["init_parameters"].pop("pooling")
    data["init_parameters"]["store"] = {"type": "os.system", "init_parameters": {}}
    with pytest.raises(DeserializationError, match="unknown parameter 'store'"):
        DualEncoderDocumentEmbedder.from_dict(data)


@pytest.fixture
def memory_store() -> QdrantDocumentStore:
    store = QdrantDocumentStore(":memory:", embedding_dim=32, similarity="cosine", progress_bar=False)
    yield store
    store.close()


def _every_component(tiny_bert: str, store: QdrantDocumentStore) -> dict[str, Any]:
    model_kwargs = {"torch_dtype": torch.float32, "attn_implementation": "eager"}
    custom = Recipe(name="custom", query_max_length=16, document_max_length=64, pooling="mean")
    return {
        "documents": DualEncoderDocumentEmbedder(
            model=tiny_bert,
            recipe="simlm",
            device=ComponentDevice.from_str("cpu"),
            batch_size=4,
            progress_bar=False,
            model_kwargs=model_kwargs,
            tokenizer_kwargs={"use_fast": True},
            title_field="name",
            meta_fields_to_embed=["heading"],
        ),
        "text": DualEncoderTextEmbedder(model=tiny_bert, recipe=custom, precision="fast", model_kwargs=model_kwargs),
        "retriever": DualEncoderRetriever(
            model=tiny_bert,
            recipe="simlm",
            document_store=store,
            top_k=3,
            filters={"field": "meta.year", "operator": "==", "value": 2020},
            precision="bf16",
            model_kwargs=model_kwargs,
            revision="main",
        ),
    }


def test_every_component_round_trips_through_to_dict_and_from_dict(
    tiny_bert: str, memory_store: QdrantDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    for name, component in _every_component(tiny_bert, memory_store).items():
        data = component.to_dict()
        json.dumps(data)  # plain data only: nothing left for a caller to convert
        assert "hf_secret_value" not in json.dumps(data), name
        assert data["init_parameters"]["model_kwargs"] == {
            "torch_dtype": "torch.float32",
            "attn_implementation": "eager",
        }
        embedder = getattr(component, "text_embedder", component)
        assert embedder.model_kwargs["torch_dtype"] is torch.float32  # to_dict changed nothing in place
        before = copy.deepcopy(data)
        restored = type(component).from_dict(data)
        assert data == before, f"{name}: from_dict changed its input"
        assert restored.to_dict() == data, name
        restored_embedder = getattr(restored, "text_embedder", restored)
        assert restored_embedder.model_kwargs["torch_dtype"] is torch.float32, name
        assert restored_embedder.token == Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False), name


def test_every_component_round_trips_through_pipeline_yaml(
    tiny_bert: str, memory_store: QdrantDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    components = _every_component(tiny_bert, memory_store)
    pipeline = Pipeline()
    for name, component in components.items():
        pipeline.add_component(name, component)
    yaml = pipeline.dumps()
    assert "hf_secret_value" not in yaml
    assert "env_var" in yaml
    loaded = Pipeline.loads(yaml)
    for name, component in components.items():
        restored = loaded.get_component(name)
        assert type(restored) is type(component)
        assert restored.to_dict() == component.to_dict(), name
    retriever = loaded.get_component("retriever")
    assert isinstance(retriever.document_store, QdrantDocumentStore)
    assert retriever.text_embedder.recipe == get_recipe("simlm")
    assert retriever.text_embedder.precision == "bf16"
    loaded.close()


def test_short_type_path_loads_every_component(tiny_bert: str, memory_store: QdrantDocumentStore) -> None:
    for name, component in _every_component(tiny_bert, memory_store).items():
        data = component.to_dict()
        short = {**data, "type": f"simlm_haystack.{type(component).__name__}"}
        assert type(component).from_dict(short).to_dict() == data, name
        pipeline = Pipeline()
        pipeline.add_component(name, component)
        yaml = pipeline.dumps().replace(f"type: {data['type']}", f"type: {short['type']}")
        assert f"type: {short['type']}" in yaml
        assert Pipeline.loads(yaml).get_component(name).to_dict() == data, name


def test_model_kwargs_are_passed_and_survive_yaml(tiny_bert: str) -> None:
    embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", model_kwargs={"torch_dtype": torch.bfloat16})
    pipeline = Pipeline()
    pipeline.add_component("embedder", embedder)
    restored = Pipeline.loads(pipeline.dumps()).get_component("embedder")
    assert restored.model_kwargs == {"torch_dtype": torch.bfloat16}
    restored.warm_up()
    assert restored.encoder.loaded.model.dtype == torch.bfloat16


def test_warm_up_loads_the_model_with_exactly_the_component_settings(
    tiny_bert: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    monkeypatch.delenv("HF_API_TOKEN", raising=False)
    load = mock.Mock(name="load_encoder")
    monkeypatch.setattr(encoder_settings, "load_encoder", load)
    embedder = DualEncoderDocumentEmbedder(
        model=tiny_bert,
        recipe="tas-b",
        device=ComponentDevice.from_str("cpu"),
        precision="fast",
        local_files_only=True,
        trust_remote_code=True,
        revision="v1",
        model_kwargs={"attn_implementation": "eager"},
        tokenizer_kwargs={"use_fast": True},
    )
    embedder.warm_up()
    embedder.warm_up()  # idempotent
    load.assert_called_once_with(
        tiny_bert,
        get_recipe("tas-b"),
        precision="fast",
        backend="torch",
        device=torch.device("cpu"),
        token="hf_from_env",
        local_files_only=True,
        revision="v1",
        trust_remote_code=True,
        model_kwargs={"attn_implementation": "eager"},
        tokenizer_kwargs={"use_fast": True},
    )
    assert embedder.encoder is load.return_value


def test_from_encoder_wraps_a_loaded_encoder_and_warm_up_keeps_it(
    tiny_bert: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="fast")
    load = mock.Mock(name="load_encoder")
    monkeypatch.setattr(encoder_settings, "load_encoder", load)
    documents = DualEncoderDocumentEmbedder.from_encoder(encoder, batch_size=2, progress_bar=False)
    text = DualEncoderTextEmbedder.from_encoder(encoder, local_files_only=True)
    documents.warm_up()
    text.warm_up()
    load.assert_not_called()
    assert documents.encoder is encoder and text.encoder is encoder
    assert (documents.batch_size, documents.progress_bar, text.local_files_only) == (2, False, True)
    assert documents.precision == text.precision == "fast"
    assert documents.to_dict()["init_parameters"]["model"] == encoder.loaded.source
    assert documents.to_dict()["init_parameters"]["recipe"] == "simlm"
    vector = np.array(text.run("a query")["embedding"])
    np.testing.assert_array_equal(vector, encoder.encode("query", ["a query"])[0])
    embedded = documents.run([Document(content="a passage", meta={"title": "T"})])["documents"][0]
    np.testing.assert_array_equal(embedded.embedding, encoder.encode("document", ["a passage"], ["T"])[0])


def test_retriever_filters_and_query_pipeline_are_the_same_pipeline(tiny_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = QdrantDocumentStore(":memory:", embedding_dim=32, similarity="cosine", progress_bar=False)
    documents = [Document(id=str(i), content=f"text {i}", meta={"year": 2020 + i % 2}) for i in range(6)]
    build_indexing_pipeline(embedder, store).run({"embedder": {"documents": documents}})
    year_2020 = {"field": "meta.year", "operator": "==", "value": 2020}
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store, top_k=6, filters=year_2020)
    found = retriever.run(query="text 1")["documents"]
    assert sorted(d.id for d in found) == ["0", "2", "4"]
    query_pipeline = build_query_pipeline(
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm"), store, top_k=6, filters=year_2020
    )
    expected = query_pipeline.run({"retriever": {"query": "text 1"}})["retriever"]["documents"]
    assert [(d.id, d.score) for d in found] == [(d.id, d.score) for d in expected]
    assert len(retriever.run(query="text 1", top_k=1)["documents"]) == 1
    assert sorted(
        d.id
        for d in retriever.run(query="text 1", filters={"field": "meta.year", "operator": "==", "value": 2021})[
            "documents"
        ]
    ) == ["1", "3", "5"]
    # The query pipeline is the drop-in retriever, with the same settings and parts.
    assert query_pipeline.get_component("retriever").to_dict() == retriever.to_dict()
    store.close()


def test_retriever_close_releases_the_store(tiny_bert: str, tmp_path) -> None:
    path = str(tmp_path / "qdrant")
    store = QdrantDocumentStore(path=path, embedding_dim=32, similarity="cosine", progress_bar=False)
    store.write_documents([Document(id="1", content="text", embedding=[0.1] * 32)])
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store)
    assert len(retriever.run(query="text")["documents"]) == 1
    with pytest.raises(RuntimeError, match="already accessed"):
        QdrantDocumentStore(path=path, embedding_dim=32, progress_bar=False).count_documents()
    retriever.close()
    assert store._client is None
    reopened = QdrantDocumentStore(path=path, embedding_dim=32, progress_bar=False)
    assert reopened.count_documents() == 1  # the folder lock was released
    reopened.close()


def test_retriever_close_and_close_async_close_the_store(tiny_bert: str) -> None:
    store = mock.Mock(spec=QdrantDocumentStore)
    retriever = DualEncoderRetriever(model=tiny_bert, recipe="simlm", document_store=store)
    retriever.close()
    store.close.assert_called_once_with()
    asyncio.run(retriever.close_async())
    store.close_async.assert_awaited_once_with()
