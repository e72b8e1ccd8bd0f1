"""The swap from langchain-huggingface is one edit: ``HuggingFaceEmbeddings(...)`` becomes
``DualEncoderEmbeddings(...)`` with the same keyword arguments, and gives the same vectors for a
sentence-transformers checkpoint. Settings that would change the vectors are refused in one error; those that do
not apply are ignored with one warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from haystack.utils import Secret

from simlm_haystack import RecipeError
from simlm_haystack.errors import SettingsError
from simlm_haystack.langchain import DualEncoderEmbeddings

TEXTS = [
    "Vitamin D deficiency is associated with a higher risk of cancer.",
    "Aspirin lowers the risk of a second heart attack.",
    "The Eiffel Tower is in Paris.",
]
QUERY = "does vitamin D protect against cancer?"
#: The tiny checkpoints' readings (built once per session by ``tiny_st``).
PROMPTS_READING: dict[str, Any] = dict(
    pooling="mean",
    dense=[(16, None, False)],
    normalize=True,
    prompts={"query": "query: ", "document": "passage: "},
    similarity="dot",
)
CLS_READING: dict[str, Any] = dict(pooling="cls")


@pytest.fixture(scope="module")
def prompts_model(tiny_st: Callable[..., str]) -> str:
    return tiny_st("swap-prompts", **PROMPTS_READING)


@pytest.fixture(scope="module")
def cls_model(tiny_st: Callable[..., str]) -> str:
    return tiny_st("swap-cls", **CLS_READING)


def our_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("simlm_haystack") and r.levelno >= logging.WARNING]


def assert_same_vectors(ours: Any, theirs: Any) -> None:
    ours, theirs = np.atleast_2d(np.asarray(ours)), np.atleast_2d(np.asarray(theirs))
    assert ours.shape == theirs.shape
    our_norms, their_norms = np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1)
    cosines = (ours * theirs).sum(axis=1) / (our_norms * their_norms)
    assert cosines.min() >= 0.99999, cosines
    np.testing.assert_allclose(our_norms, their_norms, rtol=1e-5)


# --- (a) the same keyword arguments, the same vectors ------------------------------------------------------------

SWAPS = {
    # all-MiniLM-L6-v2 as installed: mean pooling, Normalize, no prompts.
    "minilm": ("minilm_path", {"encode_kwargs": {"normalize_embeddings": True}}),
    "minilm-raw": ("minilm_path", {"encode_kwargs": {"normalize_embeddings": False, "batch_size": 2}}),
    # Prompts: langchain-huggingface calls encode(), which applies them only when named.
    "prompts": (
        "prompts_model",
        {
            "encode_kwargs": {"prompt_name": "document", "normalize_embeddings": True},
            "query_encode_kwargs": {"prompt_name": "query"},
        },
    ),
    # [CLS] pooling, no Normalize: the raw vectors; or, asked for, unit ones (a cosine model: the same search).
    "cls": ("cls_model", {"encode_kwargs": {"normalize_embeddings": False}}),
    "cls-normalised": ("cls_model", {"encode_kwargs": {"normalize_embeddings": True}}),
}


@pytest.mark.parametrize("reading", SWAPS)
def test_same_keyword_arguments_give_the_same_vectors(
    reading: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    from_huggingface = pytest.importorskip("langchain_huggingface")
    fixture, kwargs = SWAPS[reading]
    arguments = {"model_name": request.getfixturevalue(fixture), "model_kwargs": {"device": "cpu"}, **kwargs}

    theirs = from_huggingface.HuggingFaceEmbeddings(**arguments)
    ours = DualEncoderEmbeddings(**arguments)
    assert our_warnings(caplog) == []  # every one of these settings is used or agrees with the recipe

    assert_same_vectors(ours.embed_documents(TEXTS), theirs.embed_documents(TEXTS))
    assert_same_vectors(ours.embed_query(QUERY), theirs.embed_query(QUERY))
    assert ours.device.to_torch_str() == "cpu"
    assert ours.batch_size == kwargs["encode_kwargs"].get("batch_size", 32)


def test_prompt_names_are_what_the_reference_needs_and_our_recipe_applies_anyway(prompts_model: str) -> None:
    """Without the prompt names langchain-huggingface encodes without the prompts; the recipe always applies them."""
    from_huggingface = pytest.importorskip("langchain_huggingface")
    unnamed = from_huggingface.HuggingFaceEmbeddings(model_name=prompts_model, model_kwargs={"device": "cpu"})
    named = DualEncoderEmbeddings(
        model_name=prompts_model,
        model_kwargs={"device": "cpu"},
        encode_kwargs={"prompt_name": "document"},
        query_encode_kwargs={"prompt_name": "query"},
    )
    plain = DualEncoderEmbeddings(model_name=prompts_model, model_kwargs={"device": "cpu"})
    np.testing.assert_allclose(named.embed_documents(TEXTS), plain.embed_documents(TEXTS), rtol=0, atol=1e-6)
    np.testing.assert_allclose(named.embed_query(QUERY), plain.embed_query(QUERY), rtol=0, atol=1e-6)
    assert not np.allclose(plain.embed_documents(TEXTS), unnamed.embed_documents(TEXTS), rtol=0, atol=1e-3)
    assert not np.allclose(plain.embed_query(QUERY), unnamed.embed_query(QUERY), rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"encode_kwargs": {"prompt": "passage: "}, "query_encode_kwargs": {"prompt": "query: "}},
        {"model_kwargs": {"prompts": {"query": "query: ", "document": "passage: "}}},
        {"model_kwargs": {"similarity_fn_name": "dot"}},
        {"model_kwargs": {"similarity_fn_name": "euclidean"}},  # ranks unit vectors as dot product does
        {"encode_kwargs": {"precision": "float32", "output_value": "sentence_embedding", "truncate_dim": None}},
    ],
)
def test_settings_that_agree_with_the_recipe_are_accepted_silently(
    prompts_model: str, kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    DualEncoderEmbeddings(model_name=prompts_model, **{"model_kwargs": {}, **kwargs})
    assert our_warnings(caplog) == []


# --- (b) every setting that would change the vectors, refused in one error --------------------------------------


def test_every_setting_that_would_change_the_vectors_is_named_in_one_error(cls_model: str) -> None:
    with pytest.raises(RecipeError) as raised:
        DualEncoderEmbeddings(
            model_name=cls_model,
            model_kwargs={
                "device": "cpu",
                "prompts": {"query": "q: "},
                "similarity_fn_name": "dot",
                "truncate_dim": 8,
            },
            encode_kwargs={
                "prompt": "passage: ",
                "normalize_embeddings": True,
                "precision": "int8",
                "truncate_dim": 4,
                "output_value": "token_embeddings",
                "processing_kwargs": {"text": {"max_length": 8}},
            },
            query_encode_kwargs={"prompt_name": "query", "precision": "binary"},
        )
    message = str(raised.value)
    for name in (
        "model_kwargs['prompts'/'default_prompt_name'] make encode_query prepend 'q: '",
        "model_kwargs['similarity_fn_name']='dot'",
        "model_kwargs['truncate_dim']=8",
        "encode_kwargs['prompt']='passage: '",
        "encode_kwargs['precision']='int8'",
        "encode_kwargs['truncate_dim']=4",
        "encode_kwargs['output_value']='token_embeddings'",
        "encode_kwargs['processing_kwargs']",
        "query_encode_kwargs['prompt_name']='query' puts 'q: '",
        "query_encode_kwargs['precision']='binary'",
    ):
        assert name in message


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        # langchain-huggingface encodes queries with encode_kwargs when query_encode_kwargs is empty.
        ({"encode_kwargs": {"prompt_name": "document"}}, "query_encode_kwargs is empty"),
        ({"query_encode_kwargs": {"prompt_name": "document"}}, "query_encode_kwargs['prompt_name']='document'"),
        (
            {"encode_kwargs": {"prompt": "query: "}, "query_encode_kwargs": {"prompt": "query: "}},
            "'query: ' before a doc",
        ),
        ({"encode_kwargs": {"prompt_name": "nothing"}, "query_encode_kwargs": {"prompt_name": "query"}}, "names none"),
        # A default prompt applies to every text encode() gets without a prompt: queries and documents alike.
        ({"model_kwargs": {"default_prompt_name": "query"}}, "model_kwargs['default_prompt_name']='query' puts"),
        ({"model_kwargs": {"prompts": {"query": ""}}}, "make encode_query prepend ''"),
        ({"model_kwargs": {"similarity_fn_name": "cosine"}}, "is dot_product"),
        ({"model_kwargs": {"similarity_fn_name": "manhattan"}}, "'manhattan'"),
    ],
)
def test_prompts_and_similarities_that_disagree_are_refused(prompts_model: str, kwargs: dict, named: str) -> None:
    with pytest.raises(RecipeError, match="would not produce the vectors") as raised:
        DualEncoderEmbeddings(model_name=prompts_model, **kwargs)
    assert named in str(raised.value)


def test_normalising_is_refused_only_on_a_dot_product_recipe_that_keeps_raw_vectors(
    minilm_path: str, cls_model: str, tiny_st: Callable[..., str]
) -> None:
    DualEncoderEmbeddings(model_name=minilm_path, encode_kwargs={"normalize_embeddings": True})
    assert DualEncoderEmbeddings(model_name=cls_model, encode_kwargs={"normalize_embeddings": True}).recipe.normalize
    dot = tiny_st("swap-dot-raw", pooling="mean", similarity="dot")
    with pytest.raises(RecipeError, match=r"query_encode_kwargs\['normalize_embeddings'\]=True"):
        DualEncoderEmbeddings(model_name=dot, query_encode_kwargs={"normalize_embeddings": True})


def test_arguments_sentence_transformers_does_not_take_are_an_error(minilm_path: str) -> None:
    with pytest.raises(SettingsError, match=r"model_kwargs\['device_id'\], encode_kwargs\['sentences'\]"):
        DualEncoderEmbeddings(model_name=minilm_path, model_kwargs={"device_id": 0}, encode_kwargs={"sentences": []})


# --- (c) what does not apply, ignored with one warning -----------------------------------------------------------


def test_settings_that_do_not_apply_give_one_warning_naming_them(
    minilm_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    DualEncoderEmbeddings(
        model_name=minilm_path,
        cache_folder="/tmp/sentence-transformers",
        multi_process=True,
        model_kwargs={"device": "cpu", "config_kwargs": {"output_hidden_states": False}, "cache_folder": "/tmp"},
        encode_kwargs={"convert_to_numpy": True, "chunk_size": 8},
        query_encode_kwargs={"convert_to_tensor": True, "device": "cpu"},
    )
    warnings = our_warnings(caplog)
    assert len(warnings) == 1
    for name in (
        "cache_folder",
        "multi_process",
        "model_kwargs['config_kwargs']",
        "model_kwargs['cache_folder']",
        "encode_kwargs['convert_to_numpy']",
        "encode_kwargs['chunk_size']",
        "query_encode_kwargs['convert_to_tensor']",
        "query_encode_kwargs['device']",
    ):
        assert name in warnings[0].getMessage()


def test_settings_that_mean_ours_are_used(minilm_path: str, caplog: pytest.LogCaptureFixture) -> None:
    embeddings = DualEncoderEmbeddings(
        model_name=minilm_path,
        model_kwargs={
            "device": "cpu",
            "token": "hf_secret",
            "revision": "main",
            "local_files_only": True,
            "trust_remote_code": False,
            "backend": "torch",
            "model_kwargs": {"attn_implementation": "eager"},
            "processor_kwargs": {"use_fast": True},
        },
        encode_kwargs={"batch_size": 5, "show_progress_bar": False},
        show_progress=True,
    )
    assert our_warnings(caplog) == []
    assert embeddings.device.to_torch_str() == "cpu"
    assert isinstance(embeddings.token, Secret) and embeddings.token.resolve_value() == "hf_secret"
    assert "hf_secret" not in repr(embeddings)
    assert (embeddings.revision, embeddings.local_files_only, embeddings.backend) == ("main", True, "torch")
    assert embeddings.model_kwargs == {"attn_implementation": "eager"}
    assert embeddings.tokenizer_kwargs == {"use_fast": True}
    assert (embeddings.batch_size, embeddings.progress_bar) == (5, True)


def test_a_setting_given_both_ways_differently_is_an_error(minilm_path: str) -> None:
    DualEncoderEmbeddings(model_name=minilm_path, device="cpu", model_kwargs={"device": "cpu"})  # the same: fine
    with pytest.raises(SettingsError, match="batch_size, device given both"):
        DualEncoderEmbeddings(
            model_name=minilm_path,
            device="cpu",
            batch_size=8,
            model_kwargs={"device": "meta"},
            encode_kwargs={"batch_size": 16},
        )


# --- (d) model= or model_name=, exactly one ------------------------------------------------------------------------


def test_model_and_model_name_are_aliases_exactly_one_given(minilm_path: str) -> None:
    assert DualEncoderEmbeddings(model_name=minilm_path).model == DualEncoderEmbeddings(model=minilm_path).model
    with pytest.raises(SettingsError, match="exactly one: got both"):
        DualEncoderEmbeddings(model=minilm_path, model_name=minilm_path)
    with pytest.raises(SettingsError, match="exactly one: got neither"):
        DualEncoderEmbeddings()


# --- (e) with model=, model_kwargs keep their AutoModel meaning ---------------------------------------------------


def test_model_kwargs_mean_automodel_kwargs_with_model_and_sentence_transformer_kwargs_with_model_name(
    tiny_st: Callable[..., str],
) -> None:
    path = tiny_st("swap-cls", **CLS_READING)
    ours = DualEncoderEmbeddings(model=path, device="cpu", model_kwargs={"attn_implementation": "eager"})
    assert ours.model_kwargs == {"attn_implementation": "eager"}
    assert ours.load_encoder().loaded.model.config._attn_implementation == "eager"
    # "device" here is an AutoModel keyword like any other: not read as SentenceTransformer(device=...).
    assert DualEncoderEmbeddings(model=path, model_kwargs={"device": "meta"}).model_kwargs == {"device": "meta"}

    theirs = DualEncoderEmbeddings(
        model_name=path, model_kwargs={"device": "cpu", "model_kwargs": {"attn_implementation": "eager"}}
    )
    assert theirs.model_kwargs == {"attn_implementation": "eager"}
    assert theirs.settings == ours.settings  # so they share the loaded model
    assert_same_vectors(theirs.embed_documents(TEXTS), ours.embed_documents(TEXTS))
