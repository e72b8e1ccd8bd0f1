"""The fast inference paths compute what the reference path computes (issue 4).

No timings here: speed is measured in benchmarks/speed_*.py, equality is proved here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, RobertaConfig, RobertaModel

from simlm_haystack.encoding import DualEncoder, _FlatEncoding, tokenize
from simlm_haystack.fast import cls_forward, native_bf16, supports_cls_forward
from simlm_haystack.models import load_model
from simlm_haystack.recipes import get_recipe

TITLES = ["Aspirin", None, "", "A title that is a good deal longer than the others are"]
TEXTS = [
    "Aspirin inhibits cyclooxygenase.",
    "short",
    "Signal transduction in T cells depends on many kinases, phosphatases and adaptor proteins " * 3,
    "Mitochondria are the powerhouse of the cell.",
]


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_distilbert"])
def test_cls_forward_equals_full_forward_with_padding(fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    model = AutoModel.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    features = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    assert (features["attention_mask"] == 0).any(), "the batch must contain padding"
    accepted = {"input_ids", "attention_mask", "token_type_ids"} if fixture == "tiny_bert" else {"input_ids"}
    features = {name: value for name, value in features.items() if name in accepted | {"attention_mask"}}
    assert supports_cls_forward(model)
    with torch.inference_mode():
        reference = model(**features).last_hidden_state[:, 0]
        fast = cls_forward(model, features)
    assert fast is not None
    assert fast.shape == reference.shape
    assert (fast - reference).abs().max().item() < 1e-5


def test_cls_forward_declines_unknown_architectures() -> None:
    config = RobertaConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    model = RobertaModel(config).eval()
    assert not supports_cls_forward(model)
    assert cls_forward(model, {"input_ids": torch.ones(1, 3, dtype=torch.long)}) is None


@pytest.mark.parametrize(("fixture", "recipe"), [("tiny_bert", "simlm"), ("tiny_distilbert", "tas-b")])
def test_fast_mode_matches_exact(fixture: str, recipe: str, request: pytest.FixtureRequest) -> None:
    loaded = load_model(request.getfixturevalue(fixture))
    exact = DualEncoder(loaded, get_recipe(recipe), precision="exact")
    fast = DualEncoder(loaded, get_recipe(recipe), precision="fast")
    if fast._uses_bf16():
        pytest.skip("this CPU has native bf16, so 'fast' is not fp32 here")
    for side, titles in (("document", TITLES), ("query", None)):
        reference = exact.encode(side, TEXTS, titles, batch_size=3)
        got = fast.encode(side, TEXTS, titles, batch_size=3)
        np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)


def test_fast_uses_bf16_only_where_it_is_native(tiny_bert: str) -> None:
    encoder = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="fast")
    assert encoder._uses_bf16() is native_bf16()
    assert DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="bf16")._uses_bf16()
    assert not DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="exact")._uses_bf16()


def test_vectorised_padding_equals_the_tokenizers_padding(tiny_bert: str) -> None:
    tokenizer = load_model(tiny_bert).tokenizer
    recipe = get_recipe("simlm")
    encoding = tokenize(tokenizer, recipe, "document", TEXTS, TITLES)
    indices = np.array([2, 0, 3])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch = _FlatEncoding(encoding, names).pad(indices, tokenizer.pad_token_id)
    expected = tokenize(
        tokenizer, recipe, "document", [TEXTS[i] for i in indices], [TITLES[i] for i in indices], padding=True
    )
    for name in names:
        assert batch[name].dtype == np.int64
        assert batch[name].tolist() == expected[name]


def test_fast_single_text_restores_the_thread_count(tiny_bert: str) -> None:
    encoder = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="fast")
    before = torch.get_num_threads()
    exact = DualEncoder(load_model(tiny_bert), get_recipe("simlm"), precision="exact").encode("query", TEXTS[:1])
    if not encoder._uses_bf16():
        np.testing.assert_allclose(encoder.encode("query", TEXTS[:1]), exact, atol=1e-5, rtol=0)
    assert torch.get_num_threads() == before
