"""Recipes: how one model family must be fed and read.

A recipe is data, not code. The encoder, the components, the Qdrant helpers and the trainer all
read these fields and never branch on a model's name, so adding a model family is adding one entry
to ``RECIPES``; a sentence-transformers checkpoint describes its own (:mod:`simlm_haystack.st_checkpoint`).
Which recipe a model gets is decided in :mod:`simlm_haystack.recipe_resolution`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from simlm_haystack.errors import RecipeError

#: The file the trainer writes beside a checkpoint, so that the embedders find its recipe.
RECIPE_FILE = "simlm_haystack_recipe.json"

Side = Literal["query", "document"]
#: sentence-transformers' pooling modes, by its names: the first token, the last real token, the mean over real
#: tokens, that sum divided by the square root of the length instead, the mean weighted by position (1, 2, ...),
#: and the element-wise maximum. Several modes are concatenated in the order given.
PoolingMode = Literal["cls", "lasttoken", "mean", "mean_sqrt_len_tokens", "weightedmean", "max"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)
Pooling = PoolingMode | tuple[PoolingMode, ...]
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
    "lowercase",
    "prompt_in_pooling",
    "dense",
)


@dataclass(frozen=True)
class DenseLayer:
    """One sentence-transformers ``Dense`` module after pooling: ``activation(linear(x))`` (``+ x`` or
    ``+ residual(x)`` with ``use_residual``), its weights in the checkpoint's folder ``path``.

    :param path: The module's folder inside the checkpoint (``"2_Dense"``), where its weights are.
    :param activation: The activation's class as sentence-transformers writes it
        (``"torch.nn.modules.activation.Tanh"``); only ``torch.nn`` classes are run.
    """

    path: str
    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "torch.nn.modules.activation.Tanh"
    use_residual: bool = False

    def __post_init__(self) -> None:
        if not self.activation.startswith("torch.nn."):
            raise RecipeError(
                f"Dense layer {self.path!r}: activation {self.activation!r} is not a torch.nn class; "
                "a custom activation is the checkpoint's own code, which is not run"
            )
        if min(self.in_features, self.out_features) < 1:
            raise RecipeError(f"Dense layer {self.path!r}: in_features and out_features must be positive")


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
    :param pooling: How the last layer's token vectors become one vector: a :data:`PoolingMode` (``"cls"``, the
        first token; ``"mean"``, the average over real tokens; ...) or a tuple of them, concatenated in that order.
    :param normalize: L2-normalise the vectors (after pooling and the dense layers).
    :param similarity: The score the model was trained with, as Qdrant/Haystack name it. A ``"cosine"`` model
        that does not normalise (some sentence-transformers checkpoints) gives its raw vectors; Qdrant scores
        them by cosine all the same.
    :param lowercase: Lowercase the whole input (prefix included) before the tokenizer, as
        sentence-transformers' ``do_lower_case`` does (with the tokenizers library's own ``Lowercase``).
    :param prompt_in_pooling: Whether the prefix's tokens take part in pooling (sentence-transformers'
        ``include_prompt``); ``False`` pools only the tokens after it.
    :param dense: The :class:`DenseLayer` modules applied after pooling, in order (before normalising).
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
    lowercase: bool = False
    prompt_in_pooling: bool = True
    dense: tuple[DenseLayer, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.title_mode not in ("pair", "concat"):
            raise RecipeError(f"Recipe {self.name!r}: title_mode must be 'pair' or 'concat', not {self.title_mode!r}")
        # One mode is kept as its name (the form recipes and collection identities always had), several as a tuple.
        modes = (self.pooling,) if isinstance(self.pooling, str) else tuple(self.pooling)
        unknown = [mode for mode in modes if mode not in POOLING_MODES]
        if not modes or unknown:
            raise RecipeError(
                f"Recipe {self.name!r}: pooling must be one of {POOLING_MODES} or a tuple of them, not {self.pooling!r}"
            )
        object.__setattr__(self, "pooling", modes[0] if len(modes) == 1 else modes)
        dense = tuple(DenseLayer(**layer) if isinstance(layer, dict) else layer for layer in self.dense)
        object.__setattr__(self, "dense", dense)
        if self.similarity not in ("cosine", "dot_product"):
            raise RecipeError(
                f"Recipe {self.name!r}: similarity must be 'cosine' or 'dot_product', not {self.similarity!r}"
            )
        if min(self.query_max_length, self.document_max_length) < 4:
            raise RecipeError(f"Recipe {self.name!r}: max lengths must be at least 4 tokens")
        if self.temperature <= 0:
            raise RecipeError(f"Recipe {self.name!r}: temperature must be positive")

    @property
    def pooling_modes(self) -> tuple[str, ...]:
        """The pooling modes, one or more, in the order their vectors are concatenated."""
        return (self.pooling,) if isinstance(self.pooling, str) else self.pooling

    @property
    def reads_first_token_only(self) -> bool:
        """Whether the vector is the first token's alone (so the last layer is needed at [CLS] only)."""
        return self.pooling == "cls" and (self.prompt_in_pooling or not (self.query_prefix or self.document_prefix))

    def embedding_dim(self, hidden_size: int) -> int:
        """The size of this recipe's vectors from a model whose last layer has ``hidden_size`` values a token."""
        return self.dense[-1].out_features if self.dense else len(self.pooling_modes) * hidden_size

    def max_length(self, side: Side) -> int:
        return self.query_max_length if side == "query" else self.document_max_length

    def prefix(self, side: Side) -> str:
        return self.query_prefix if side == "query" else self.document_prefix

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hub_ids"] = list(self.hub_ids)
        data["pooling"] = self.pooling if isinstance(self.pooling, str) else list(self.pooling)
        data["dense"] = [asdict(layer) for layer in self.dense]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RecipeError(f"Unknown recipe fields: {sorted(unknown)}; known fields: {sorted(known)}")
        values = dict(data)
        values["hub_ids"] = tuple(values.get("hub_ids", ()))
        if isinstance(values.get("pooling"), list):
            values["pooling"] = tuple(values["pooling"])
        try:
            values["dense"] = tuple(DenseLayer(**layer) for layer in values.get("dense", ()))
            return cls(**values)
        except TypeError as error:
            raise RecipeError(f"Malformed recipe {data!r}: {error}") from None

    def save(self, directory: str | Path) -> Path:
        """Write the recipe beside a checkpoint, where
        :func:`~simlm_haystack.recipe_resolution.resolve_recipe` finds it."""
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


def vector_fields(recipe: dict[str, Any]) -> dict[str, Any]:
    """The :data:`VECTOR_FIELDS` of a recipe's dict (as :meth:`Recipe.to_dict` writes it) as a collection holds
    its vectors: a field missing from it (a record written before that field existed) at its default, and
    ``normalize`` true for cosine (Qdrant normalises a cosine collection's vectors itself, so whether the
    encoder did changes nothing stored or found)."""
    defaults = Recipe("defaults", query_max_length=4, document_max_length=4).to_dict()
    fields = {name: recipe.get(name, defaults[name]) for name in VECTOR_FIELDS}
    if fields["similarity"] == "cosine":
        fields["normalize"] = True
    return fields


def get_recipe(name: str) -> Recipe:
    """Return a registered recipe by name."""
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"Unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))}") from None


def serialize_recipe(recipe: Recipe | str | None) -> str | dict[str, Any] | None:
    """A registered recipe serialises as its name, any other as its fields."""
    if isinstance(recipe, Recipe) and RECIPES.get(recipe.name) == recipe:
        return recipe.name
    if isinstance(recipe, Recipe):
        return recipe.to_dict()
    return recipe
