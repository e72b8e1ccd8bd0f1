"""The swap from langchain-huggingface: ``HuggingFaceEmbeddings``' arguments, reconciled with the recipe.

:class:`~simlm_haystack.langchain.DualEncoderEmbeddings` takes the keyword arguments of
``langchain_huggingface.HuggingFaceEmbeddings`` too, so that replacing one by the other changes only the class
name. There ``model_kwargs`` are ``SentenceTransformer(...)``'s arguments, and ``encode_kwargs`` /
``query_encode_kwargs`` those of ``SentenceTransformer.encode`` for documents / queries (``encode_kwargs`` for
both when ``query_encode_kwargs`` is empty). Those that mean what our settings mean are used; those that agree
with the recipe are accepted; those that would change the vectors are refused in one error; those that do not
apply are ignored with one warning (:func:`reconcile_huggingface_settings`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from simlm_haystack.errors import RecipeError, SettingsError
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.files import CheckpointFiles, HubUnreachableError
from simlm_haystack.st_checkpoint.reading import DOCUMENT_PROMPT_NAMES

logger = logging.getLogger(__name__)

#: ``SentenceTransformer(...)``'s arguments (langchain-huggingface's ``model_kwargs``) that are our settings: of the
#: same name, or of another (``use_auth_token`` and ``tokenizer_kwargs`` are its old spellings).
SAME_NAME = ("device", "token", "revision", "trust_remote_code", "local_files_only", "backend", "model_kwargs")
LOADING_ARGUMENTS = {name: name for name in (*SAME_NAME, "tokenizer_kwargs")}
LOADING_ARGUMENTS |= {"use_auth_token": "token", "processor_kwargs": "tokenizer_kwargs"}
#: Its other arguments: checked against the recipe, or ignored with a warning.
CHECKED_ARGUMENTS = ("prompts", "default_prompt_name", "similarity_fn_name", "truncate_dim")
IGNORED_ARGUMENTS = ("cache_folder", "config_kwargs", "model_card_data")
#: ``SentenceTransformer.encode``'s arguments (``encode_kwargs``, ``query_encode_kwargs``): used as our settings;
#: the prompt, checked against the recipe's; those checked not to change the vectors; those ignored with a warning.
ENCODE_USED = ("batch_size", "show_progress_bar")
ENCODE_PROMPT = ("prompt", "prompt_name")
ENCODE_CHECKED = ("normalize_embeddings", "precision", "truncate_dim", "output_value", "processing_kwargs")
ENCODE_IGNORED = ("convert_to_numpy", "convert_to_tensor", "device", "pool", "chunk_size", "task")
_ENCODE = (*ENCODE_USED, *ENCODE_PROMPT, *ENCODE_CHECKED, *ENCODE_IGNORED)
_KNOWN = {"model_kwargs": (*LOADING_ARGUMENTS, *CHECKED_ARGUMENTS, *IGNORED_ARGUMENTS)}
_KNOWN |= {"encode_kwargs": _ENCODE, "query_encode_kwargs": _ENCODE}
_IGNORED = {"model_kwargs": IGNORED_ARGUMENTS, "encode_kwargs": ENCODE_IGNORED, "query_encode_kwargs": ENCODE_IGNORED}

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


def sentence_transformer_settings(model_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``SentenceTransformer(...)``'s arguments that are our settings, by our name (those given only)."""
    st = model_kwargs or {}
    settings = {ours: st[theirs] for theirs, ours in LOADING_ARGUMENTS.items() if st.get(theirs) is not None}
    if settings.get("token") is True:  # the default token (from the environment), as ours
        del settings["token"]
    elif settings.get("token") is False:
        settings["token"] = None
    if settings.get("backend") == "ipex":  # as langchain-huggingface does
        settings["backend"] = "torch"
    return settings


def _prompt_conflicts(recipe: Recipe, files: CheckpointFiles, st: Mapping[str, Any], sides: dict) -> list[str]:
    """The prompts that would put something other than the recipe's prefix before a query or a document."""
    given_prompts, given_default = dict(st.get("prompts") or {}), st.get("default_prompt_name")
    saved: dict[str, Any] = {}
    if given_prompts or given_default or any(kwargs.get("prompt_name") for _, kwargs, _ in sides.values()):
        with contextlib.suppress(HubUnreachableError):  # the model's own prompts, which a prompt name may name
            saved = files.json("config_sentence_transformers.json") or {}
    prompts = {**(saved.get("prompts") or {}), **given_prompts}
    default = given_default or saved.get("default_prompt_name")
    by_name = {"query": "", "document": "", **prompts}  # SentenceTransformer's own empty prompts, then these
    conflicts = []
    for side, (where, kwargs, note) in sides.items():
        expected = recipe.prefix(side)
        if given_prompts or given_default:  # what encode_query / encode_document would prepend, as recipes read it
            names = ("query",) if side == "query" else DOCUMENT_PROMPT_NAMES
            picked = next((prompts[name] for name in names if name in prompts), prompts.get(default or "", ""))
            if picked != expected:
                conflicts.append(
                    f"model_kwargs['prompts'/'default_prompt_name'] make encode_{side} prepend {picked!r}, "
                    f"but recipe {recipe.name!r} puts {expected!r} before a {side}"
                )
        if kwargs.get("prompt") is not None:  # what langchain-huggingface's encode call prepends
            name, prompt = f"{where}['prompt']={kwargs['prompt']!r}", kwargs["prompt"]
        elif kwargs.get("prompt_name") is not None:
            name, prompt = f"{where}['prompt_name']={kwargs['prompt_name']!r}", by_name.get(kwargs["prompt_name"])
        elif given_default:
            name, note = f"model_kwargs['default_prompt_name']={given_default!r}", f" ({where} give no prompt)"
            prompt = by_name.get(given_default)
        else:
            continue
        if prompt is None:
            conflicts.append(f"{name} names none of the model's prompts {sorted(by_name)}{note}")
        elif prompt != expected:
            conflicts.append(
                f"{name} puts {prompt!r} before a {side}, but recipe {recipe.name!r} puts {expected!r}{note}"
            )
    return conflicts


def _encode_conflicts(recipe: Recipe, where: str, kwargs: Mapping[str, Any]) -> list[str]:
    """``encode``'s settings other than the prompt that would change the vectors."""
    conflicts = []
    if kwargs.get("normalize_embeddings") and not recipe.normalize and recipe.similarity != "cosine":
        conflicts.append(f"{where}['normalize_embeddings']=True, but recipe {recipe.name!r} keeps the raw vectors")
    if kwargs.get("precision") not in (None, "float32"):
        conflicts.append(f"{where}['precision']={kwargs['precision']!r} quantises the vectors (not 'float32')")
    if kwargs.get("truncate_dim") is not None:
        conflicts.append(f"{where}['truncate_dim']={kwargs['truncate_dim']} cuts the vectors")
    if kwargs.get("output_value", "sentence_embedding") != "sentence_embedding":
        conflicts.append(f"{where}['output_value']={kwargs['output_value']!r} is not one vector per text")
    if kwargs.get("processing_kwargs"):
        conflicts.append(f"{where}['processing_kwargs'] change how texts are tokenised")
    return conflicts


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
    ``files`` is the checkpoint, whose own prompts a prompt name may name (read only then). Raises a
    :class:`SettingsError` naming every argument that neither ``SentenceTransformer(...)`` nor ``encode`` takes,
    and one :class:`RecipeError` naming every setting that would change the vectors the model was trained to
    produce; logs one warning naming every setting that does not apply.
    """
    st, documents, queries = dict(model_kwargs or {}), dict(encode_kwargs or {}), dict(query_encode_kwargs or {})
    given = {"model_kwargs": st, "encode_kwargs": documents, "query_encode_kwargs": queries}
    unknown = [f"{where}[{name!r}]" for where, kw in given.items() for name in kw if name not in _KNOWN[where]]
    if unknown:
        raise SettingsError(
            f"{owner}: {', '.join(unknown)}: not arguments of SentenceTransformer(...) (model_kwargs) or of "
            "SentenceTransformer.encode (encode_kwargs, query_encode_kwargs)"
        )
    shared = " (langchain-huggingface uses encode_kwargs for queries when query_encode_kwargs is empty)"
    sides = {
        "query": ("query_encode_kwargs", queries, "") if queries else ("encode_kwargs", documents, shared),
        "document": ("encode_kwargs", documents, ""),
    }
    conflicts = _prompt_conflicts(recipe, files, st, sides)
    similarity = getattr(st.get("similarity_fn_name"), "value", st.get("similarity_fn_name"))  # or a SimilarityFunction
    agreeing = {None, recipe.similarity, "dot" if recipe.similarity == "dot_product" else "cosine"}
    if recipe.normalize:  # on unit vectors, Euclidean distance ranks as cosine and dot product do
        agreeing.add("euclidean")
    if similarity not in agreeing:
        conflicts.append(
            f"model_kwargs['similarity_fn_name']={similarity!r}, but recipe {recipe.name!r} is {recipe.similarity}"
        )
    if st.get("truncate_dim") is not None:
        conflicts.append(f"model_kwargs['truncate_dim']={st['truncate_dim']} cuts the vectors")
    for where in ("encode_kwargs", "query_encode_kwargs"):
        conflicts += _encode_conflicts(recipe, where, given[where])
    if conflicts:
        raise RecipeError(
            f"{owner} would not produce the vectors the model was trained to produce with: "
            + "; ".join(conflicts)
            + ". Remove these settings (the recipe applies the model's own prompts, normalisation and length), "
            "or pass recipe= a recipe that says what you want."
        )
    ignored = [name for name, value in (("cache_folder", cache_folder), ("multi_process", multi_process)) if value]
    ignored += [f"{where}[{name!r}]" for where, kw in given.items() for name in kw if name in _IGNORED[where]]
    if ignored:
        logger.warning("%s ignores %s: they do not apply to it", owner, ", ".join(sorted(ignored)))
    settings = sentence_transformer_settings(st)
    if not recipe.normalize and any(kwargs.get("normalize_embeddings") for kwargs in (documents, queries)):
        settings["normalize"] = True  # a cosine recipe (others were refused): unit vectors, the same search
    if "batch_size" in documents:
        settings["batch_size"] = documents["batch_size"]
    if show_progress or documents.get("show_progress_bar"):
        settings["progress_bar"] = True
    return settings
