"""Which recipe a model gets, in one place.

In order: ``recipe=`` (a name, a :class:`~simlm_haystack.Recipe` or its dict); the recipe file saved beside a
checkpoint (the trainer writes it); the model cards this package knows (SimLM's title pair, TAS-B, the E5 and
BGE prompts, which their own sentence-transformers configurations do not all carry); the checkpoint's own
sentence-transformers configuration (:mod:`simlm_haystack.st_checkpoint.reading`); otherwise an error that
says what was looked for and how to name a recipe. A recipe read from a checkpoint is logged once per model
and process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from simlm_haystack.errors import RecipeError
from simlm_haystack.recipes import RECIPE_FILE, RECIPES, Recipe, get_recipe
from simlm_haystack.st_checkpoint.files import CheckpointFiles, HubUnreachableError, local_model_path
from simlm_haystack.st_checkpoint.reading import describe_recipe, sentence_transformers_recipe

logger = logging.getLogger(__name__)

_logged: set[str] = set()
_logged_lock = threading.Lock()


def _known_card(model: str) -> Recipe | None:
    return next((known for known in RECIPES.values() if model in known.hub_ids), None)


def _log_derived(model: str, recipe: Recipe) -> None:
    with _logged_lock:
        if model in _logged:
            return
        _logged.add(model)
    logger.info("Reading %r as its sentence-transformers configuration says: %s", model, describe_recipe(recipe))


def resolve_recipe(
    model: str | Path,
    recipe: str | Recipe | dict[str, Any] | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    local_files_only: bool = False,
) -> Recipe:
    """Find the recipe of a model (see the module docstring for the order).

    ``revision``, ``token`` and ``local_files_only`` say how a hub id's configuration files are fetched (the
    Hugging Face cache first, the Hub only if they are not there).

    :raises RecipeError: no recipe can be found, or the checkpoint's configuration has a module that cannot be
        run exactly (the message names it).
    """
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, str):
        return get_recipe(recipe)
    if recipe is not None:
        raise RecipeError(f"recipe must be a name, a Recipe or a dict, not {type(recipe).__name__}")
    model = str(model)
    local = Path(local_model_path(model))
    is_folder = local.is_dir()
    if is_folder and (local / RECIPE_FILE).is_file():
        return Recipe.load(local)
    known = _known_card(model)
    if known is not None:
        return known
    files = CheckpointFiles(model, revision=revision, token=token, local_files_only=local_files_only)
    unreachable = ""
    try:
        if not is_folder and (saved := files.path(RECIPE_FILE, optional=True)) is not None:
            return Recipe.load(saved.parent)
        derived = sentence_transformers_recipe(files)
    except HubUnreachableError as error:
        derived, unreachable = None, f" Its files could not be read ({error})."
    if derived is not None:
        _log_derived(model, derived)
        return derived
    where = "local folder" if is_folder else "model"
    raise RecipeError(
        f"No recipe is known for {where} {model!r}: it has no {RECIPE_FILE}, is not a model card this package "
        "knows, and has no sentence-transformers configuration (modules.json) to read one from."
        + unreachable
        + " Pass recipe= one of: "
        + ", ".join(f"{name} ({', '.join(r.hub_ids) or 'no hub ids'})" for name, r in sorted(RECIPES.items()))
        + f", or a Recipe(...) of your own; or save a {RECIPE_FILE} beside the checkpoint (Recipe.save)."
    )
