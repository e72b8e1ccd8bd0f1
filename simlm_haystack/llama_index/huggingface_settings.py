"""The swap from llama-index-embeddings-huggingface: ``HuggingFaceEmbedding``'s arguments, reconciled with the recipe.

:class:`~simlm_haystack.llama_index.DualEncoderEmbedding` takes the keyword arguments of
``llama_index.embeddings.huggingface.HuggingFaceEmbedding`` too, so that replacing one by the other changes only
the class name. That class builds ``SentenceTransformer(model_name, prompts={"query": query_instruction, "text":
text_instruction}, **model_kwargs)``, sets ``max_seq_length = max_length``, and encodes with
``normalize_embeddings=normalize`` (``True`` by default) and ``prompt_name="query"`` / ``"text"``. Its extra
keyword arguments are ``SentenceTransformer(...)``'s, which are ours where the names meet (``device``, ``token``,
``revision``, ``trust_remote_code``, ``local_files_only``, ``backend``, ``model_kwargs``, ``tokenizer_kwargs``);
the rest are checked by :func:`~simlm_haystack.st_checkpoint.arguments.reconcile_sentence_transformer_arguments`,
the checks the LangChain swap makes, together with this class's own (:func:`reconcile_llama_index_settings`), so
that one error names every setting that would change the vectors and one warning every setting ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from simlm_haystack.errors import SettingsError
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.arguments import normalize_conflict, reconcile_sentence_transformer_arguments
from simlm_haystack.st_checkpoint.files import CheckpointFiles

#: llama-index-embeddings-huggingface's parameters, documented once (``docstring_with`` puts it in place).
HUGGINGFACE_DOC = """\
:param model_name: llama-index-embeddings-huggingface's name for ``model`` (give one of the two).
:param max_length: ``HuggingFaceEmbedding``'s length for queries and documents alike: accepted only when it is the
    recipe's length for both sides (the recipe reads each side up to its own length either way).
:param query_instruction: Accepted only when it is the recipe's query prefix (which the recipe applies anyway).
:param text_instruction: Accepted only when it is the recipe's document prefix.
:param normalize: ``None`` (default): the recipe's vectors. ``False`` adds no normalisation to the model's own
    output, so it agrees with every recipe; ``True`` agrees with a recipe that normalises, gives unit vectors for
    a cosine recipe that does not (the same search), and is refused for a dot-product recipe that keeps its raw
    vectors (``HuggingFaceEmbedding`` normalises by default, which would change a dot-product model's search).
:param cache_folder: Ignored with a warning (models are read from the Hugging Face cache).
:param parallel_process: Ignored with a warning (one process encodes, on ``device``).
:param target_devices: Ignored with a warning.
:param show_progress_bar: ``HuggingFaceEmbedding``'s name for ``progress_bar``.
:param sentence_transformer_kwargs: ``HuggingFaceEmbedding``'s other keyword arguments, which it passes to
    ``SentenceTransformer(...)``: ``use_auth_token`` and ``processor_kwargs`` are used as ``token`` and
    ``tokenizer_kwargs``; ``similarity_fn_name`` only when it is the recipe's similarity, ``truncate_dim`` only
    ``None``; ``config_kwargs`` and ``model_card_data`` are ignored with a warning; any other name is an error."""

#: ``HuggingFaceEmbedding``'s own parameters that this class takes, and their defaults there ("not given").
HUGGINGFACE_DEFAULTS: dict[str, Any] = {
    "max_length": None,
    "query_instruction": None,
    "text_instruction": None,
    "normalize": None,
    "cache_folder": None,
    "parallel_process": False,
    "target_devices": None,
    "show_progress_bar": False,
}
#: What ``HuggingFaceEmbedding`` refuses itself: its deprecated parameters, and ``prompts`` (which it builds).
NOT_TAKEN = ("tokenizer_name", "pooling", "model", "tokenizer", "prompts")


def _own_conflicts(recipe: Recipe, given: Mapping[str, Any]) -> list[str]:
    """``HuggingFaceEmbedding``'s own settings that would change the vectors of ``recipe``."""
    conflicts = []
    max_length = given["max_length"]
    lengths = {side: recipe.max_length(side) for side in ("query", "document")}
    if max_length is not None and set(lengths.values()) != {max_length}:
        conflicts.append(
            f"max_length={max_length} reads queries and documents up to {max_length} tokens, but recipe "
            f"{recipe.name!r} reads a query up to {lengths['query']} and a document up to {lengths['document']}"
        )
    for name, side in (("query_instruction", "query"), ("text_instruction", "document")):
        if given[name] is not None and given[name] != recipe.prefix(side):
            conflicts.append(
                f"{name}={given[name]!r}, but recipe {recipe.name!r} puts {recipe.prefix(side)!r} before a {side}"
            )
    if given["normalize"] and (conflict := normalize_conflict(recipe, "normalize")):
        conflicts.append(conflict)
    return conflicts


def reconcile_llama_index_settings(
    owner: str,
    recipe: Recipe,
    files: CheckpointFiles,
    given: Mapping[str, Any],
    sentence_transformer_kwargs: Mapping[str, Any],
) -> tuple[Recipe, dict[str, Any]]:
    """Reconcile ``HuggingFaceEmbedding``'s arguments with the recipe.

    :param given: Its own parameters (:data:`HUGGINGFACE_DEFAULTS`' names) as the caller got them.
    :param sentence_transformer_kwargs: Its ``**model_kwargs``, ``SentenceTransformer(...)``'s arguments that are
        not our settings' names.
    :returns: The recipe (the same one, or for ``normalize=True`` on a cosine recipe that does not normalise, one
        that does) and the settings these arguments give, by our name (``token``, ``tokenizer_kwargs``,
        ``progress_bar``: those given only).
    :raises SettingsError: An argument ``HuggingFaceEmbedding`` refuses, or one ``SentenceTransformer(...)`` does
        not take.
    :raises RecipeError: Settings that would change the vectors, all named.
    """
    refused = sorted(name for name in sentence_transformer_kwargs if name in NOT_TAKEN)
    if refused:
        raise SettingsError(
            f"{owner}: {', '.join(refused)}: not taken, as HuggingFaceEmbedding does not take them (its deprecated "
            "tokenizer_name, pooling, model and tokenizer; prompts it builds from query_instruction and "
            "text_instruction); the recipe says how the model reads and pools"
        )
    ignored = [name for name in ("cache_folder", "parallel_process", "target_devices") if given[name]]
    settings = reconcile_sentence_transformer_arguments(
        owner,
        recipe,
        files,
        model_kwargs=sentence_transformer_kwargs,
        conflicts=_own_conflicts(recipe, given),
        ignored=ignored,
    )
    if given["normalize"] and not recipe.normalize:  # a cosine recipe (others were refused): the same search
        recipe = dataclasses.replace(recipe, normalize=True)
    if given["show_progress_bar"]:
        settings["progress_bar"] = True
    return recipe, settings
