"""The embedders give the vectors of each model's own reference recipe, written out in plain transformers.

The tiny models' weights are drawn wide (``sensitive_bert``, ``sensitive_distilbert``), so that a wrong title,
segment or length would move the vectors past the tests' tolerance.

SimLM model card: ``tokenizer(title, text_pair=passage, max_length=144, truncation=True)``, queries
``max_length=32``, ``last_hidden_state[:, 0]``, L2-normalised. TAS-B: DistilBERT, [CLS] of the last
layer, queries 30 / passages 200 tokens, no normalisation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from haystack import Document
from transformers import AutoModel, AutoTokenizer

from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder

LONG = " ".join(f"word{i} signal transduction pathway" for i in range(400))  # far beyond 200 tokens
DOCUMENTS = [
    Document(content="Aspirin reduces the risk of heart attack.", meta={"title": "Aspirin and the heart"}),
    Document(content="A passage without a title field."),
    Document(content="A passage whose title is empty.", meta={"title": ""}),
    Document(content=LONG, meta={"title": "A long abstract that must be truncated"}),
    Document(content="Short.", meta={"title": "T"}),
    Document(content=LONG[:700], meta={"title": "Medium length"}),
    Document(content="Numbers 12 345 and unicode: café, naïve, 東京.", meta={"title": 2024}),
]
QUERIES = ["what reduces heart attack risk", LONG, "x", "café naïve 東京"]


def _reference_simlm(path: str) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    @torch.inference_mode()
    def encode_passages(titles: list[str], passages: list[str]) -> np.ndarray:
        batch = tokenizer(
            titles, text_pair=passages, max_length=144, truncation=True, padding=True, return_tensors="pt"
        )
        cls = model(**batch).last_hidden_state[:, 0, :]
        return torch.nn.functional.normalize(cls, dim=-1).numpy()

    @torch.inference_mode()
    def encode_queries(queries: list[str]) -> np.ndarray:
        batch = tokenizer(queries, max_length=32, truncation=True, padding=True, return_tensors="pt")
        cls = model(**batch).last_hidden_state[:, 0, :]
        return torch.nn.functional.normalize(cls, dim=-1).numpy()

    return encode_passages, encode_queries


def _reference_tas_b(path: str) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    @torch.inference_mode()
    def encode(texts: list[str], max_length: int) -> np.ndarray:
        batch = tokenizer(texts, max_length=max_length, truncation=True, padding=True, return_tensors="pt")
        return model(**batch).last_hidden_state[:, 0, :].numpy()

    return encode


def _assert_same_vectors(ours: np.ndarray, reference: np.ndarray) -> None:
    ours, reference = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.99999, cosine
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-5)


def _title(document: Document) -> str:
    return str(document.meta.get("title") or "-")


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_simlm_documents_match_the_model_card(sensitive_bert: str, batch_size: int) -> None:
    encode_passages, _ = _reference_simlm(sensitive_bert)
    embedder = DualEncoderDocumentEmbedder(
        model=sensitive_bert, recipe="simlm", batch_size=batch_size, progress_bar=False
    )
    ours = np.array([d.embedding for d in embedder.run(DOCUMENTS)["documents"]])
    # The reference one document at a time (no padding) ...
    one_by_one = np.concatenate([encode_passages([_title(d)], [d.content]) for d in DOCUMENTS])
    _assert_same_vectors(ours, one_by_one)
    # ... and as one padded batch of mixed lengths.
    _assert_same_vectors(ours, encode_passages([_title(d) for d in DOCUMENTS], [d.content for d in DOCUMENTS]))


def test_simlm_pair_input_uses_token_types_and_truncates_to_144(sensitive_bert: str) -> None:
    embedder = DualEncoderDocumentEmbedder(model=sensitive_bert, recipe="simlm", progress_bar=False)
    embedder.warm_up()
    assert "token_type_ids" in embedder.encoder.input_names
    from simlm_haystack.encoding import tokenize

    encoding = tokenize(embedder.encoder.loaded.tokenizer, embedder.recipe, "document", [LONG, "b"], ["T", None])
    assert len(encoding["input_ids"][0]) == 144
    assert 1 in encoding["token_type_ids"][0]  # the text is the second segment of the pair
    second = embedder.encoder.loaded.tokenizer.convert_ids_to_tokens(encoding["input_ids"][1])
    assert second[:3] == ["[CLS]", "-", "[SEP]"]  # a missing title becomes "-"


def test_simlm_queries_match_the_model_card(sensitive_bert: str) -> None:
    _, encode_queries = _reference_simlm(sensitive_bert)
    embedder = DualEncoderTextEmbedder(model=sensitive_bert, recipe="simlm")
    ours = np.array([embedder.run(query)["embedding"] for query in QUERIES])
    _assert_same_vectors(ours, encode_queries(QUERIES))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [2, 32])
def test_tas_b_documents_and_queries_match_the_reference(sensitive_distilbert: str, batch_size: int) -> None:
    encode = _reference_tas_b(sensitive_distilbert)
    documents = DualEncoderDocumentEmbedder(
        model=sensitive_distilbert, recipe="tas-b", batch_size=batch_size, progress_bar=False
    ).run(DOCUMENTS)["documents"]
    texts = [f"{d.meta['title']} {d.content}" if d.meta.get("title") else d.content for d in DOCUMENTS]
    ours = np.array([d.embedding for d in documents])
    _assert_same_vectors(ours, np.concatenate([encode([text], 200) for text in texts]))
    norms = np.linalg.norm(ours, axis=1)
    assert not np.allclose(norms, 1.0)  # TAS-B vectors are not normalised: dot product reads their length

    queries = DualEncoderTextEmbedder(model=sensitive_distilbert, recipe="tas-b")
    _assert_same_vectors(np.array([queries.run(q)["embedding"] for q in QUERIES]), encode(QUERIES, 30))


@pytest.mark.integration
def test_minilm_recipe_matches_sentence_transformers(minilm_path: str) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(minilm_path, device="cpu")
    texts = [f"{d.meta['title']} {d.content}" if d.meta.get("title") else d.content for d in DOCUMENTS]
    expected = reference.encode(texts, normalize_embeddings=True)
    embedder = DualEncoderDocumentEmbedder(model="sentence-transformers/all-MiniLM-L6-v2", progress_bar=False)
    ours = np.array([d.embedding for d in embedder.run(DOCUMENTS)["documents"]])
    _assert_same_vectors(ours, expected)
