"""The YAML swap: sentence-transformers-haystack's embedder parameters, reconciled with the recipe.

Our embedders take the init parameters of ``SentenceTransformersTextEmbedder`` /
``SentenceTransformersDocumentEmbedder`` too, so that a pipeline YAML written with those loads with only
its ``type:`` line changed. Those that mean what ours mean are used; those that agree with the recipe
are accepted; those that would change the vectors are refused in one error; those that do not apply are
ignored with one warning (:func:`reconcile_sentence_transformers_settings`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

from simlm_haystack.backends import BACKEND_PRECISIONS, check_backend
from simlm_haystack.encoding import Precision
from simlm_haystack.errors import RecipeError, SettingsError
from simlm_haystack.recipes import Recipe, Side

logger = logging.getLogger(__name__)

#: sentence-transformers' ``precision``: ``"float32"`` is our ``"exact"``; the others quantise the vectors.
#: (``"int8"`` with ``backend="onnx"`` is ours instead: int8 weights, float vectors.)
SentenceTransformersPrecision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
QUANTISED_PRECISIONS: tuple[str, ...] = ("int8", "uint8", "binary", "ubinary")

#: Their parameters that our embedders take (the three ignored ones reach the reconciliation as ``ignored``).
SENTENCE_TRANSFORMERS_PARAMETERS: tuple[str, ...] = (
    "prefix",
    "suffix",
    "normalize_embeddings",
    "truncate_dim",
    "config_kwargs",
    "encode_kwargs",
    "quantization_ranges",
)
#: Of those, the ones that do not apply to our embedders: ignored with one warning.
IGNORED_PARAMETERS: tuple[str, ...] = ("config_kwargs", "encode_kwargs", "quantization_ranges")

#: Their parameters, documented once for both embedders (``simlm_haystack.docstrings.docstring_with`` puts it in place).
SENTENCE_TRANSFORMERS_DOC = """\
:param prefix: sentence-transformers' prefix: accepted when it is the recipe's prefix for this side
    (the recipe applies it either way), refused otherwise.
:param suffix: sentence-transformers' suffix: only ``""``.
:param normalize_embeddings: sentence-transformers' normalisation: ``False``/``None`` add nothing to the
    model's own output; ``True`` agrees with a recipe that normalises, gives unit vectors for a cosine recipe
    that does not (the same search: Qdrant keeps a cosine collection's vectors normalised), and is refused
    for a dot-product recipe that keeps its raw vectors.
:param truncate_dim: sentence-transformers' truncation: only ``None``.
:param config_kwargs: sentence-transformers' setting; ignored with a warning.
:param encode_kwargs: sentence-transformers' setting; ignored with a warning.
:param quantization_ranges: sentence-transformers' setting; ignored with a warning."""


def reconcile_sentence_transformers_settings(
    owner: str,
    recipe: Recipe,
    side: Side,
    *,
    precision: str,
    backend: str,
    prefix: str | None,
    suffix: str,
    normalize_embeddings: bool | None,
    truncate_dim: int | None,
    tokenizer_kwargs: dict[str, Any] | None,
    **ignored: Any,
) -> tuple[Precision, Recipe]:
    """Reconcile sentence-transformers' embedder settings with the recipe; returns our precision and the recipe
    (the same one, or for ``normalize_embeddings=True`` on a cosine recipe that does not normalise, one that does).

    Raises one :class:`RecipeError` naming every setting that would change the vectors the model was
    trained to produce, and logs one warning naming every setting in ``ignored`` (the
    :data:`IGNORED_PARAMETERS`) that is set.
    ``normalize_embeddings=False`` (their default) adds no normalisation to the model's own output, so
    it agrees with every recipe; ``True`` changes no search on a cosine recipe, only on a dot-product one.
    """
    if backend not in BACKEND_PRECISIONS:
        check_backend(backend, precision)  # names the backends
    ours = precision in BACKEND_PRECISIONS[backend]
    if not ours and precision != "float32" and precision not in QUANTISED_PRECISIONS:
        raise SettingsError(
            f"{owner}: precision must be one of {BACKEND_PRECISIONS[backend]} on backend {backend!r} "
            f"(or sentence-transformers' 'float32', which is 'exact'), not {precision!r}"
        )
    conflicts = []
    if not ours and precision in QUANTISED_PRECISIONS:
        conflicts.append(
            f"precision={precision!r} quantises the vectors (use 'exact', 'fast' or 'bf16'; "
            "or backend='onnx' with precision='int8' for int8 weights and float vectors)"
        )
    if prefix is not None and prefix != recipe.prefix(side):
        conflicts.append(f"prefix={prefix!r}, but recipe {recipe.name!r} puts {recipe.prefix(side)!r} before a {side}")
    if suffix:
        conflicts.append(f"suffix={suffix!r}, but recipe {recipe.name!r} adds no suffix")
    if normalize_embeddings and not recipe.normalize and recipe.similarity == "cosine":
        recipe = dataclasses.replace(recipe, normalize=True)
    elif normalize_embeddings and not recipe.normalize:
        conflicts.append(
            f"normalize_embeddings=True, but recipe {recipe.name!r} keeps the raw vectors ({recipe.similarity})"
        )
    if truncate_dim is not None:
        conflicts.append(f"truncate_dim={truncate_dim} cuts the vectors; they keep the model's full size")
    max_length = (tokenizer_kwargs or {}).get("model_max_length")
    if max_length is not None and max_length != recipe.max_length(side):
        conflicts.append(
            f"tokenizer_kwargs['model_max_length']={max_length}, but recipe {recipe.name!r} reads a {side} "
            f"up to {recipe.max_length(side)} tokens"
        )
    if conflicts:
        raise RecipeError(
            f"{owner} would not produce the vectors the model was trained to produce with: "
            + "; ".join(conflicts)
            + ". Remove these settings (the recipe applies the model's own prefix, normalisation and length), "
            "or pass recipe= a recipe that says what you want."
        )
    given = sorted(name for name, value in ignored.items() if value)
    if given:
        logger.warning("%s ignores %s: they do not apply to it", owner, ", ".join(given))
    return ("exact" if precision == "float32" else precision), recipe  # type: ignore[return-value]
