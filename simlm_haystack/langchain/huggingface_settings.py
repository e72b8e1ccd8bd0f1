"""The swap from langchain-huggingface: ``HuggingFaceEmbeddings``' arguments, reconciled with the recipe.

:class:`~simlm_haystack.langchain.DualEncoderEmbeddings` takes the keyword arguments of
``langchain_huggingface.HuggingFaceEmbeddings`` too, so that replacing one by the other changes only the class
name. There ``model_kwargs`` are ``SentenceTransformer(...)``'s arguments, and ``encode_kwargs`` /
``query_encode_kwargs`` those of ``SentenceTransformer.encode`` for documents / queries (``encode_kwargs`` for
both when ``query_encode_kwargs`` is empty). Those that mean what our settings mean are used; those that agree
with the recipe are accepted; those that would change the vectors are refused in one error; those that do not
apply are ignored with one warning (:func:`reconcile_huggingface_settings`). The checks are shared with the
LlamaIndex swap (:mod:`simlm_haystack.st_checkpoint.arguments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.arguments import reconcile_sentence_transformer_arguments
from simlm_haystack.st_checkpoint.arguments import sentence_transformer_settings as sentence_transformer_settings
from simlm_haystack.st_checkpoint.files import CheckpointFiles

#: langchain-huggingface's parameters, documented once (``simlm_haystack.docstrings.docstring_with`` puts it in place).
HUGGINGFACE_DOC = """\
:param model_name: langchain-huggingface's name for ``model`` (give one of the two). With ``model_name``,
    ``model_kwargs`` are ``SentenceTransformer(...)``'s arguments, as there: ``device``, ``token``, ``revision``,
    ``trust_remote_code``, ``local_files_only``, ``backend``, ``model_kwargs`` (``AutoModel``'s) and
    ``processor_kwargs`` are used as our settings of those names (``processor_kwargs`` as ``tokenizer_kwargs``);
    ``prompts`` / ``default_prompt_name`` only when what they prepend is the recipe's prefix, ``similarity_fn_name``
    only the recipe's similarity, ``truncate_dim`` only ``None``; ``cache_folder``, ``config_kwargs`` and
    ``model_card_data`` are ignored with a warning.
:param cache_folder: langchain-huggingface's setting; ignored with a warning (models are read from the
    Hugging Face cache).
:param encode_kwargs: ``SentenceTransformer.encode``'s arguments for documents, and for queries when
    ``query_encode_kwargs`` is empty (as langchain-huggingface does): ``batch_size`` and ``show_progress_bar``
    are used; ``prompt`` / ``prompt_name`` are accepted when they resolve to the recipe's prefix for that side
    (the recipe applies it either way), ``normalize_embeddings=True`` for a recipe that normalises or a cosine
    one (whose vectors it then normalises: the same search), not for a dot-product one that keeps raw vectors,
    ``precision`` only ``"float32"``, ``output_value`` only ``"sentence_embedding"``, ``truncate_dim`` only
    ``None``, ``processing_kwargs`` not at all; ``convert_to_numpy``, ``convert_to_tensor``, ``device``, ``pool``,
    ``chunk_size`` and ``task`` are ignored with a warning.
:param query_encode_kwargs: The same for queries.
:param multi_process: langchain-huggingface's setting; ignored with a warning (one process encodes, on ``device``).
:param show_progress: langchain-huggingface's name for ``progress_bar``."""


def reconcile_huggingface_settings(
    owner: str,
    recipe: Recipe,
    files: CheckpointFiles,
    *,
    model_kwargs: Mapping[str, Any] | None,
    encode_kwargs: Mapping[str, Any] | None,
    query_encode_kwargs: Mapping[str, Any] | None,
    cache_folder: str | None,
    multi_process: bool,
    show_progress: bool,
) -> dict[str, Any]:
    """Reconcile langchain-huggingface's arguments with the recipe; returns the settings they give, by our name
    (``device``, ``token``, ..., ``batch_size``, ``progress_bar``: those given only), and ``normalize=True`` where
    ``normalize_embeddings`` asks a cosine recipe that does not normalise to.

    ``model_kwargs`` are ``SentenceTransformer(...)``'s arguments (``None`` where the caller's keep our meaning);
    the checks, the one error and the one warning are
    :func:`~simlm_haystack.st_checkpoint.arguments.reconcile_sentence_transformer_arguments`', with
    ``cache_folder`` and ``multi_process`` among the settings ignored.
    """
    settings = reconcile_sentence_transformer_arguments(
        owner,
        recipe,
        files,
        model_kwargs=model_kwargs,
        encode_kwargs=encode_kwargs,
        query_encode_kwargs=query_encode_kwargs,
        shared_note=" (langchain-huggingface uses encode_kwargs for queries when query_encode_kwargs is empty)",
        ignored=[name for name, value in (("cache_folder", cache_folder), ("multi_process", multi_process)) if value],
    )
    if show_progress:
        settings["progress_bar"] = True
    return settings
