"""A checkpoint of ours written so that sentence-transformers (and what builds on it: sentence-transformers-
haystack, langchain-huggingface, fastembed-style tooling) loads it and gives our vectors.

Beside the weights, the tokenizer and our recipe file, the trainers write ``modules.json`` (Transformer,
Pooling, and Normalize where the recipe normalises), ``sentence_bert_config.json`` (lengths, lowercasing),
``1_Pooling/config.json`` (in the long-standing flag form that every sentence-transformers version reads;
several modes in the order given need sentence-transformers 5 or later), ``config_sentence_transformers.json``
(the prompts as ``query`` / ``document``, the similarity) and a README that says how the checkpoint is read.

What sentence-transformers cannot express is said in that README and in one warning: a recipe that encodes a
document as the tokenizer pair ``(title, text)`` (SimLM) reads titles as sentence-transformers never does, and
dense layers (never trained here) are not written. Queries and documents of different maximum lengths are
written as ``query_length`` / ``document_length``, which ``encode_query`` / ``encode_document`` of
sentence-transformers 5 read; plain ``encode`` reads both up to the document length.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from simlm_haystack.recipes import RECIPE_FILE, Recipe
from simlm_haystack.st_checkpoint.reading import LEGACY_POOLING_FLAGS

logger = logging.getLogger(__name__)

MODULE_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
}


def not_expressible(recipe: Recipe) -> list[str]:
    """What of ``recipe`` a sentence-transformers configuration cannot say (empty: all of it)."""
    reasons = []
    if recipe.title_mode == "pair":
        reasons.append(
            f"documents are read as the tokenizer pair (title, text), with {recipe.default_title!r} for a missing "
            "title; sentence-transformers reads one text, so its document vectors differ from ours"
        )
    if recipe.dense:
        reasons.append("its dense layers after pooling are not written")
    return reasons


def _pooling_config(recipe: Recipe, hidden_size: int) -> dict[str, Any]:
    if isinstance(recipe.pooling, str):
        flags = {flag: mode == recipe.pooling for flag, mode in LEGACY_POOLING_FLAGS.items()}
        return {"word_embedding_dimension": hidden_size, **flags, "include_prompt": recipe.prompt_in_pooling}
    return {
        "embedding_dimension": hidden_size,
        "pooling_mode": list(recipe.pooling),
        "include_prompt": recipe.prompt_in_pooling,
    }


def sentence_transformers_files(recipe: Recipe, hidden_size: int) -> dict[str, Any]:
    """The sentence-transformers configuration files of a checkpoint read through ``recipe``: path -> JSON."""
    modules = [("Transformer", ""), ("Pooling", "1_Pooling")]
    if recipe.normalize:
        modules.append(("Normalize", "2_Normalize"))
    transformer: dict[str, Any] = {"max_seq_length": recipe.document_max_length, "do_lower_case": recipe.lowercase}
    if recipe.query_max_length != recipe.document_max_length:
        transformer |= {"query_length": recipe.query_max_length, "document_length": recipe.document_max_length}
    files: dict[str, Any] = {
        "modules.json": [
            {"idx": index, "name": str(index), "path": path, "type": MODULE_TYPES[kind]}
            for index, (kind, path) in enumerate(modules)
        ],
        "sentence_bert_config.json": transformer,
        "1_Pooling/config.json": _pooling_config(recipe, hidden_size),
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": recipe.query_prefix, "document": recipe.document_prefix},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if recipe.similarity == "cosine" else "dot",
        },
    }
    if recipe.normalize:
        files["2_Normalize/config.json"] = {}
    return files


def _readme(recipe: Recipe, reasons: list[str]) -> str:
    title = (
        '`title + " " + text` (no title: the text alone)'
        if recipe.title_mode == "concat"
        else "the tokenizer pair `(title, text)`"
    )
    lines = [
        "# A dual encoder trained with simlm-haystack",
        "",
        f"Recipe `{recipe.name}` ({RECIPE_FILE} beside the weights): queries up to {recipe.query_max_length} "
        f"tokens with the prompt {recipe.query_prefix!r}, documents up to {recipe.document_max_length} with "
        f"{recipe.document_prefix!r}, read as {title}; pooling {'+'.join(recipe.pooling_modes)}, "
        f"{'L2-normalised' if recipe.normalize else 'not normalised'}, {recipe.similarity}.",
        "",
        "```python",
        "from simlm_haystack import DualEncoderTextEmbedder  # finds the recipe beside the weights",
        "from sentence_transformers import SentenceTransformer",
        "model = SentenceTransformer(PATH)",
        "queries, documents = model.encode_query(queries), model.encode_document(texts)",
        "```",
        "",
    ]
    if reasons:
        lines += ["## What sentence-transformers does not read as this package does", ""]
        lines += [f"- {reason}." for reason in reasons]
    else:
        lines.append("sentence-transformers' `encode_query` / `encode_document` give the same vectors.")
    return "\n".join(lines) + "\n"


def save_sentence_transformers_config(directory: str | Path, recipe: Recipe, *, hidden_size: int) -> list[str]:
    """Write the sentence-transformers files and README beside a checkpoint saved with ``recipe``; returns (and
    warns once about) what sentence-transformers cannot express."""
    directory = Path(directory)
    for name, content in sentence_transformers_files(recipe, hidden_size).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    reasons = not_expressible(recipe)
    (directory / "README.md").write_text(_readme(recipe, reasons), encoding="utf-8")
    if reasons:
        logger.warning(
            "%s loads in sentence-transformers, but not exactly as recipe %r reads it: %s. Read it with "
            "simlm-haystack (its recipe file is beside the weights) for the vectors it was trained to give.",
            directory,
            recipe.name,
            "; ".join(reasons),
        )
    return reasons
