"""Any text is safe input: a finite vector of the right size, or one clear error naming the document."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, EmptyQueryError

texts = st.one_of(
    st.text(),  # arbitrary Unicode, including surrogates' neighbours, combining marks, emoji
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])),  # control chars and spaces
    st.just(""),
    st.just(" \t\n\r\x0b\x0c"),
)
titles = st.one_of(st.none(), texts, st.integers(), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers()))


@pytest.fixture(scope="module")
def embedders(tiny_bert: str, tiny_distilbert: str) -> tuple:
    return (
        DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False),
        DualEncoderDocumentEmbedder(model=tiny_distilbert, recipe="tas-b", progress_bar=False, precision="bf16"),
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm"),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=st.lists(st.one_of(st.none(), texts), min_size=1, max_size=4), title=titles, other_meta=titles)
def test_documents_of_any_text_give_finite_vectors(embedders, contents, title, other_meta) -> None:
    simlm, tas_b, _ = embedders
    documents = [Document(content=content, meta={"title": title, "other": other_meta}) for content in contents]
    for embedder in (simlm, tas_b):
        result = embedder.run(documents)["documents"]
        vectors = np.array([d.embedding for d in result])
        assert vectors.shape == (len(documents), 32)
        assert np.isfinite(vectors).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=texts)
def test_queries_of_any_text_give_finite_vectors(embedders, query) -> None:
    if not query.strip():  # nothing to search for: one clear error, not an arbitrary vector (issue 11)
        with pytest.raises(EmptyQueryError):
            embedders[2].run(query)
        return
    embedding = embedders[2].run(query)["embedding"]
    assert len(embedding) == 32 and np.isfinite(embedding).all()


def test_megabyte_document_is_truncated_without_tokenising_it_whole(embedders) -> None:
    simlm = embedders[0]
    simlm.warm_up()
    megabyte = "signal transduction pathway " * 40_000  # ~1.1 MB
    short = "signal transduction pathway " * 100  # already past 144 tokens
    tokenizer = type(simlm.encoder.loaded.tokenizer)
    seen_lengths: list[int] = []
    original_call = tokenizer.__call__

    def recording_call(self, text, text_pair=None, **kwargs):
        seen_lengths.extend(len(t) for t in (text_pair or text))
        return original_call(self, text, text_pair=text_pair, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenizer, "__call__", recording_call)
        long_vector = simlm.run([Document(content=megabyte, meta={"title": "t"})])["documents"][0].embedding
    short_vector = simlm.run([Document(content=short, meta={"title": "t"})])["documents"][0].embedding
    np.testing.assert_allclose(long_vector, short_vector, atol=1e-6)  # same first 144 tokens, same vector
    assert seen_lengths and max(seen_lengths) < 100_000  # the tokenizer never saw the megabyte


def test_non_finite_output_is_a_clear_error(tiny_bert: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    embedder.warm_up()
    embeddings = embedder.encoder.loaded.model.embeddings
    original_forward = embeddings.forward

    def poisoned(*args, **kwargs):
        output = original_forward(*args, **kwargs)
        return output.masked_fill(torch.ones_like(output, dtype=torch.bool), float("nan"))

    monkeypatch.setattr(embeddings, "forward", poisoned)
    with pytest.raises(ValueError, match=r"non-finite.*document 0, 1"):
        embedder.run([Document(content="x"), Document(content="y " * 50)])
