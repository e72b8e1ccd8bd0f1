"""The swap from llama-index-embeddings-huggingface is one edit: ``HuggingFaceEmbedding(...)`` becomes
``DualEncoderEmbedding(...)`` with the same keyword arguments. HuggingFaceEmbedding is not installed here; what it
computes is written out below with sentence-transformers, as its source does it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_langchain_swap import assert_same_vectors, our_warnings

from simlm_haystack import RecipeError
from simlm_haystack.errors import SettingsError
from simlm_haystack.llama_index import DualEncoderEmbedding

TEXTS = [
    "Vitamin D deficiency is associated with a higher risk of cancer.",
    "Aspirin lowers the risk of a second heart attack.",
    "The Eiffel Tower is in Paris.",
]
QUERY = "does vitamin D protect against cancer?"


def huggingface_embedding(
    model_name: str,
    *,
    max_length: int | None = None,
    query_instruction: str | None = None,
    text_instruction: str | None = None,
    normalize: bool = True,
    embed_batch_size: int = 10,
    show_progress_bar: bool = False,
    **model_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """HuggingFaceEmbedding's vectors of TEXTS and QUERY: ``SentenceTransformer`` with its ``prompts`` and
    ``max_seq_length``, ``encode(prompt_name="text" / "query", normalize_embeddings=normalize)`` (no model here is
    one of the BGE models it gives default instructions)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        model_name, prompts={"query": query_instruction or "", "text": text_instruction or ""}, **model_kwargs
    )
    if max_length:
        model.max_seq_length = max_length
    kwargs = {"batch_size": embed_batch_size, "normalize_embeddings": normalize, "show_progress_bar": show_progress_bar}
    return model.encode(TEXTS, prompt_name="text", **kwargs), model.encode([QUERY], prompt_name="query", **kwargs)[0]


@pytest.fixture(scope="module")
def prompts_model(tiny_st: Callable[..., str]) -> str:
    return tiny_st(
        "llama-swap-prompts",
        pooling="mean",
        normalize=True,
        prompts={"query": "query: ", "document": "passage: "},
        max_seq_length=64,
    )


@pytest.fixture(scope="module")
def cls_model(tiny_st: Callable[..., str]) -> str:
    return tiny_st("llama-swap-cls", pooling="cls")  # no Normalize: a cosine model's raw vectors


SWAPS = {
    "minilm": ("minilm_path", {"max_length": 256, "embed_batch_size": 2, "device": "cpu"}),
    "minilm-raw": ("minilm_path", {"normalize": False, "show_progress_bar": False}),
    # HuggingFaceEmbedding's default normalize=True on a cosine model that does not normalise: unit vectors.
    "cls-normalised": ("cls_model", {"normalize": True}),
    "cls-raw": ("cls_model", {"normalize": False}),
    "prompts": ("prompts_model", {"query_instruction": "query: ", "text_instruction": "passage: ", "max_length": 64}),
}


@pytest.mark.parametrize("reading", SWAPS)
def test_same_keyword_arguments_give_the_same_vectors(
    reading: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    fixture, kwargs = SWAPS[reading]
    model = request.getfixturevalue(fixture)
    documents, query = huggingface_embedding(model, **kwargs)
    embedding = DualEncoderEmbedding(model_name=model, **kwargs)
    assert_same_vectors(embedding.get_text_embedding_batch(TEXTS), documents)
    assert_same_vectors(embedding.get_query_embedding(QUERY), query)
    assert our_warnings(caplog) == []  # every one of these settings is used or agrees with the recipe
    assert embedding.model_name == model


def test_every_setting_that_would_change_the_vectors_is_named_in_one_error(tiny_distilbert: str) -> None:
    with pytest.raises(RecipeError) as raised:
        DualEncoderEmbedding(
            model_name=tiny_distilbert,
            recipe="tas-b",
            normalize=True,
            max_length=64,
            query_instruction="Represent this question: ",
            text_instruction="passage: ",
            similarity_fn_name="cosine",
            truncate_dim=8,
        )
    message = str(raised.value)
    for named in (
        "normalize=True, but recipe 'tas-b' keeps the raw vectors",
        "max_length=64 reads queries and documents up to 64 tokens, but recipe 'tas-b' reads a query up to 30",
        "query_instruction='Represent this question: '",
        "text_instruction='passage: '",
        "similarity_fn_name']='cosine'",
        "truncate_dim']=8",
    ):
        assert named in message
    # HuggingFaceEmbedding normalises by default; here the default is the recipe's (raw TAS-B vectors).
    raw = DualEncoderEmbedding(model_name=tiny_distilbert, recipe="tas-b")
    assert not np.isclose(np.linalg.norm(raw.get_query_embedding(QUERY)), 1.0)
    assert DualEncoderEmbedding(model_name=tiny_distilbert, recipe="tas-b", normalize=False).recipe == raw.recipe


def test_settings_that_do_not_apply_give_one_warning_naming_them(
    minilm_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        DualEncoderEmbedding(
            model_name=minilm_path,
            cache_folder="/tmp/models",
            parallel_process=True,
            target_devices=["cpu", "cpu"],
            config_kwargs={"a": 1},
        )
    [warning] = our_warnings(caplog)
    message = warning.getMessage()
    for name in ("cache_folder", "parallel_process", "target_devices", "model_kwargs['config_kwargs']"):
        assert name in message


def test_settings_that_mean_ours_are_used_and_others_refused(minilm_path: str) -> None:
    embedding = DualEncoderEmbedding(model_name=minilm_path, use_auth_token="hf_abc", show_progress_bar=True)
    assert embedding.token.resolve_value() == "hf_abc" and embedding.progress_bar
    with pytest.raises(SettingsError, match="token given twice"):
        DualEncoderEmbedding(model_name=minilm_path, token="hf_one", use_auth_token="hf_two")
    with pytest.raises(SettingsError, match="pooling: not taken"):
        DualEncoderEmbedding(model_name=minilm_path, pooling="cls")
    with pytest.raises(SettingsError, match=r"model_kwargs\['normalise'\]: not arguments of SentenceTransformer"):
        DualEncoderEmbedding(model_name=minilm_path, normalise=True)
    with pytest.raises(SettingsError, match="exactly one: got both"):
        DualEncoderEmbedding(model=minilm_path, model_name=minilm_path)
