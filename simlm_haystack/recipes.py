"""Recipes: how one model family must be fed and read.

A recipe is data, not code. The encoder, the components, the Qdrant helpers and the trainer all
read these fields and never branch on a model's name, so adding a model family is adding one entry
to ``RECIPES``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from simlm_haystack.errors import RecipeError

#: The file the trainer writes beside a checkpoint, so that the embedders find its recipe.
RECIPE_FILE = "simlm_haystack_recipe.json"

Side = Literal["query", "document"]
Pooling = Literal["cls", "mean"]
Similarity = Literal["cosine", "dot_product"]
TitleMode = Literal["pair", "concat"]

#: The recipe fields that change a vector; a recipe's name, temperature and hub ids do not.
VECTOR_FIELDS: tuple[str, ...] = (
    "pooling",
    "normalize",
    "similarity",
    "query_max_length",
    "document_max_length",
    "title_mode",
    "default_title",
    "query_prefix",
    "document_prefix",
)


@dataclass(frozen=True)
class Recipe:
    """How a dual encoder was trained to read queries and documents.

    :param name: The registry name of the recipe.
    :param query_max_length: Maximum query length in tokens, special tokens included.
    :param document_max_length: Maximum document length in tokens, special tokens included.
    :param title_mode: ``"pair"`` encodes a document as the tokenizer pair ``(title, text)``
        (SimLM); ``"concat"`` as the single text ``title + " " + text`` (TAS-B, MiniLM, E5, BGE).
    :param default_title: For ``"pair"``: the title used when a document has none (SimLM: ``"-"``).
    :param query_prefix: Text put before every query (E5: ``"query: "``).
    :param document_prefix: Text put before every document (E5: ``"passage: "``).
    :param pooling: ``"cls"`` takes the first token of the last layer; ``"mean"`` averages the
        last layer over the attention mask.
    :param normalize: L2-normalise the vectors.
    :param similarity: The score the model was trained with, as Qdrant/Haystack name it.
    :param temperature: The contrastive temperature the family was fine-tuned with (scores are
        divided by it in the training losses); ``1.0`` for raw dot products.
    :param hub_ids: Hugging Face ids known to follow this recipe.
    """

    name: str
    query_max_length: int
    document_max_length: int
    title_mode: TitleMode = "concat"
    default_title: str = ""
    query_prefix: str = ""
    document_prefix: str = ""
    pooling: Pooling = "cls"
    normalize: bool = True
    similarity: Similarity = "cosine"
    temperature: float = 1.0
    hub_ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.title_mode not in ("pair", "concat"):
            raise RecipeError(f"Recipe {self.name!r}: title_mode must be 'pair' or 'concat', not {self.title_mode!r}")
        if self.pooling not in ("cls", "mean"):
            raise RecipeError(f"Recipe {self.name!r}: pooling must be 'cls' or 'mean', not {self.pooling!r}")
        if self.similarity not in ("cosine", "dot_product"):
            raise RecipeError(
                f"Recipe {self.name!r}: similarity must be 'cosine' or 'dot_product', not {self.similarity!r}"
            )
        if self.similarity == "cosine" and not self.normalize:
            # Qdrant normalises vectors of a cosine collection itself; say so rather than store
            # vectors that the encoder and the store would score differently.
            raise RecipeError(f"Recipe {self.name!r}: cosine similarity needs normalize=True")
        if min(self.query_max_length, self.document_max_length) < 4:
            raise RecipeError(f"Recipe {self.name!r}: max lengths must be at least 4 tokens")
        if self.temperature <= 0:
            raise RecipeError(f"Recipe {self.name!r}: temperature must be positive")

    def max_length(self, side: Side) -> int:
        return self.query_max_length if side == "query" else self.document_max_length

    def prefix(self, side: Side) -> str:
        return self.query_prefix if side == "query" else self.document_prefix

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hub_ids"] = list(self.hub_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RecipeError(f"Unknown recipe fields: {sorted(unknown)}; known fields: {sorted(known)}")
        values = dict(data)
        values["hub_ids"] = tuple(values.get("hub_ids", ()))
        return cls(**values)

    def save(self, directory: str | Path) -> Path:
        """Write the recipe beside a checkpoint, where :func:`resolve_recipe` finds it."""
        path = Path(directory) / RECIPE_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Recipe:
        path = Path(directory) / RECIPE_FILE
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as error:
            raise RecipeError(f"{path} is not a valid recipe file: {error}") from error


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        # SimLM model card: queries raw, max 32; passages tokenizer(title, text_pair=text, max 144)
        # with "-" for a missing title; [CLS] of last_hidden_state; L2; fine-tuned with t = 0.02.
        Recipe(
            name="simlm",
            query_max_length=32,
            document_max_length=144,
            title_mode="pair",
            default_title="-",
            pooling="cls",
            normalize=True,
            similarity="cosine",
            temperature=0.02,
            hub_ids=("intfloat/simlm-base-msmarco-finetuned", "intfloat/simlm-base-msmarco"),
        ),
        # TAS-B (Hofstätter et al., 2021): DistilBERT, [CLS], raw dot product, queries 30, passages 200.
        Recipe(
            name="tas-b",
            query_max_length=30,
            document_max_length=200,
            title_mode="concat",
            pooling="cls",
            normalize=False,
            similarity="dot_product",
            temperature=1.0,
            hub_ids=(
                "sebastian-hofstaetter/distilbert-dot-tas_b-b256-msmarco",
                "sentence-transformers/msmarco-distilbert-base-tas-b",
            ),
        ),
        # all-MiniLM-L6-v2: mean pooling, L2, 256 tokens; trained with scale 20 (t = 0.05).
        Recipe(
            name="minilm",
            query_max_length=256,
            document_max_length=256,
            title_mode="concat",
            pooling="mean",
            normalize=True,
            similarity="cosine",
            temperature=0.05,
            hub_ids=("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L12-v2"),
        ),
        # E5 v2: "query: " / "passage: " prefixes, mean pooling, L2, t = 0.01.
        Recipe(
            name="e5",
            query_max_length=512,
            document_max_length=512,
            title_mode="concat",
            query_prefix="query: ",
            document_prefix="passage: ",
            pooling="mean",
            normalize=True,
            similarity="cosine",
            temperature=0.01,
            hub_ids=("intfloat/e5-small-v2", "intfloat/e5-base-v2", "intfloat/e5-large-v2"),
        ),
        # BGE v1.5: an instruction before queries only, [CLS], L2, t = 0.02.
        Recipe(
            name="bge",
            query_max_length=512,
            document_max_length=512,
            title_mode="concat",
            query_prefix="Represent this sentence for searching relevant passages: ",
            pooling="cls",
            normalize=True,
            similarity="cosine",
            temperature=0.02,
            hub_ids=("BAAI/bge-small-en-v1.5", "BAAI/bge-base-en-v1.5", "BAAI/bge-large-en-v1.5"),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """Return a registered recipe by name."""
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"Unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))}") from None


def resolve_recipe(model: str | Path, recipe: str | Recipe | dict[str, Any] | None = None) -> Recipe:
    """Find the recipe of a model.

    In order: an explicit ``recipe`` (a name, a :class:`Recipe` or its dict), the recipe file
    saved beside a local checkpoint, the known hub ids, and otherwise an error listing the recipes.
    """
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, str):
        return get_recipe(recipe)
    if recipe is not None:
        raise RecipeError(f"recipe must be a name, a Recipe or a dict, not {type(recipe).__name__}")
    if (Path(model) / RECIPE_FILE).is_file():
        return Recipe.load(model)
    for known in RECIPES.values():
        if str(model) in known.hub_ids:
            return known
    raise RecipeError(
        f"No recipe is known for model {str(model)!r}. Pass recipe= one of: "
        + ", ".join(f"{name} ({', '.join(r.hub_ids) or 'no hub ids'})" for name, r in sorted(RECIPES.items()))
        + f"; or save a {RECIPE_FILE} beside the checkpoint (Recipe.save)."
    )


def serialize_recipe(recipe: Recipe | str | None) -> str | dict[str, Any] | None:
    """A registered recipe serialises as its name, any other as its fields."""
    if isinstance(recipe, Recipe) and RECIPES.get(recipe.name) == recipe:
        return recipe.name
    if isinstance(recipe, Recipe):
        return recipe.to_dict()
    return recipe
