"""sentence-transformers' own arguments, reconciled with a recipe: what the swaps from langchain-huggingface and
from llama-index-embeddings-huggingface share.

Both wrap ``SentenceTransformer(...)`` and ``SentenceTransformer.encode``, so a user swapping either for this
package's embeddings may pass those two calls' arguments. Those that mean what our settings mean are used; those
that agree with the recipe are accepted; those that would change the vectors are refused in one error; those that
do not apply are ignored with one warning (:func:`reconcile_sentence_transformer_arguments`). Each framework adds
its own arguments' conflicts and ignored names, so that one error and one warning still name everything.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from simlm_haystack.errors import RecipeError, SettingsError
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.files import CheckpointFiles, HubUnreachableError
from simlm_haystack.st_checkpoint.reading import DOCUMENT_PROMPT_NAMES

logger = logging.getLogger(__name__)

#: ``SentenceTransformer(...)``'s arguments (langchain-huggingface's ``model_kwargs``, llama-index-embeddings-
#: huggingface's ``**model_kwargs``) that are our settings: of the same name, or of another (``use_auth_token`` and
#: ``processor_kwargs`` are spellings of ``token`` and ``tokenizer_kwargs``).
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


def model_argument(owner: str, model: str | None, model_name: str | None, named_by: str) -> str:
    """The model given as ``model=`` (ours) or ``model_name=`` (the name ``named_by``'s class uses), exactly one.

    :raises SettingsError: Both or neither.
    """
    if (model is None) == (model_name is None):
        raise SettingsError(
            f"{owner} takes the model as model= or as model_name= ({named_by}'s name), exactly one: "
            f"got {'both' if model is not None else 'neither'}"
        )
    return model if model is not None else model_name  # type: ignore[return-value]  # one is a str


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


def normalize_conflict(recipe: Recipe, name: str) -> str | None:
    """Why normalising (``name=True``) would change the vectors of ``recipe``, or ``None`` where it would not: a
    recipe that normalises already, or a cosine one (unit vectors, the same search; the caller then normalises)."""
    if recipe.normalize or recipe.similarity == "cosine":
        return None
    return f"{name}=True, but recipe {recipe.name!r} keeps the raw vectors"


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
    if kwargs.get("normalize_embeddings") and (
        conflict := normalize_conflict(recipe, f"{where}['normalize_embeddings']")
    ):
        conflicts.append(conflict)
    if kwargs.get("precision") not in (None, "float32"):
        conflicts.append(f"{where}['precision']={kwargs['precision']!r} quantises the vectors (not 'float32')")
    if kwargs.get("truncate_dim") is not None:
        conflicts.append(f"{where}['truncate_dim']={kwargs['truncate_dim']} cuts the vectors")
    if kwargs.get("output_value", "sentence_embedding") != "sentence_embedding":
        conflicts.append(f"{where}['output_value']={kwargs['output_value']!r} is not one vector per text")
    if kwargs.get("processing_kwargs"):
        conflicts.append(f"{where}['processing_kwargs'] change how texts are tokenised")
    return conflicts


def reconcile_sentence_transformer_arguments(
    owner: str,
    recipe: Recipe,
    files: CheckpointFiles,
    *,
    model_kwargs: Mapping[str, Any] | None,
    encode_kwargs: Mapping[str, Any] | None = None,
    query_encode_kwargs: Mapping[str, Any] | None = None,
    shared_note: str = "",
    conflicts: Sequence[str] = (),
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """Reconcile ``SentenceTransformer(...)``'s (``model_kwargs``) and ``encode``'s arguments with the recipe;
    returns the settings they give, by our name (``device``, ``token``, ..., ``batch_size``, ``progress_bar``: those
    given only), and ``normalize=True`` where ``normalize_embeddings`` asks a cosine recipe that does not normalise
    to.

    ``encode_kwargs`` are those for documents, and for queries too when ``query_encode_kwargs`` is empty (then
    ``shared_note`` says so in a prompt's conflict); ``files`` is the checkpoint, whose own prompts a prompt name
    may name (read only then); ``conflicts`` and ``ignored`` are the caller's own settings that would change the
    vectors, and that do not apply, reported with these. Raises a :class:`SettingsError` naming every argument that
    neither ``SentenceTransformer(...)`` nor ``encode`` takes, and one :class:`RecipeError` naming every setting
    that would change the vectors the model was trained to produce; logs one warning naming every setting that
    does not apply.
    """
    st, documents, queries = dict(model_kwargs or {}), dict(encode_kwargs or {}), dict(query_encode_kwargs or {})
    given = {"model_kwargs": st, "encode_kwargs": documents, "query_encode_kwargs": queries}
    unknown = [f"{where}[{name!r}]" for where, kw in given.items() for name in kw if name not in _KNOWN[where]]
    if unknown:
        raise SettingsError(
            f"{owner}: {', '.join(unknown)}: not arguments of SentenceTransformer(...) (model_kwargs) or of "
            "SentenceTransformer.encode (encode_kwargs, query_encode_kwargs)"
        )
    sides = {
        "query": ("query_encode_kwargs", queries, "") if queries else ("encode_kwargs", documents, shared_note),
        "document": ("encode_kwargs", documents, ""),
    }
    conflicts = [*conflicts, *_prompt_conflicts(recipe, files, st, sides)]
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
    ignored = [
        *ignored,
        *(f"{where}[{name!r}]" for where, kw in given.items() for name in kw if name in _IGNORED[where]),
    ]
    if ignored:
        logger.warning("%s ignores %s: they do not apply to it", owner, ", ".join(sorted(ignored)))
    settings = sentence_transformer_settings(st)
    if not recipe.normalize and any(kwargs.get("normalize_embeddings") for kwargs in (documents, queries)):
        settings["normalize"] = True  # a cosine recipe (others were refused): unit vectors, the same search
    if "batch_size" in documents:
        settings["batch_size"] = documents["batch_size"]
    if documents.get("show_progress_bar"):
        settings["progress_bar"] = True
    return settings
