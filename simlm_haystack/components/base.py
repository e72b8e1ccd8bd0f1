"""What the document and the text embedder share: settings, serialisation and the loaded model.

Both embedders also take the init parameters of sentence-transformers-haystack's embedders, so that a
pipeline YAML written with ``SentenceTransformersTextEmbedder`` / ``SentenceTransformersDocumentEmbedder``
loads with only its ``type:`` line changed. Those that mean what ours mean are used; those that agree
with the recipe are accepted; those that would change the vectors are refused in one error; those
that do not apply are ignored with one warning (see :func:`check_sentence_transformers_settings`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

from haystack import component, default_from_dict, default_to_dict
from haystack.core.serialization import generate_qualified_class_name
from haystack.utils import ComponentDevice, Secret
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from simlm_haystack.backends import BACKEND_PRECISIONS, Backend, check_backend
from simlm_haystack.encoding import DualEncoder, Precision, load_encoder
from simlm_haystack.errors import RecipeError, SettingsError
from simlm_haystack.recipes import Recipe, Side, resolve_recipe, serialize_recipe
from simlm_haystack.stores.identity import run_guards

logger = logging.getLogger(__name__)

#: The default Hugging Face token: read from the environment at use, never serialised as a value.
HF_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)

#: sentence-transformers' ``precision``: ``"float32"`` is our ``"exact"``; the others quantise the vectors.
#: (``"int8"`` with ``backend="onnx"`` is ours instead: int8 weights, float vectors.)
SentenceTransformersPrecision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
QUANTISED_PRECISIONS: tuple[str, ...] = ("int8", "uint8", "binary", "ubinary")


def check_sentence_transformers_settings(
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
    ignored: dict[str, Any],
) -> Precision:
    """Reconcile sentence-transformers' embedder settings with the recipe; returns our precision.

    Raises one :class:`RecipeError` naming every setting that would change the vectors the model was
    trained to produce, and logs one warning naming every setting in ``ignored`` that is set.
    ``normalize_embeddings=False`` (their default) adds no normalisation to the model's own output, so
    it agrees with every recipe; ``True`` agrees only with a recipe that normalises.
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
    if normalize_embeddings and not recipe.normalize:
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
    return "exact" if precision == "float32" else precision  # type: ignore[return-value]


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")


def register_short_type(cls: type) -> type:
    """Let pipeline YAML name the class ``simlm_haystack.<Name>``, the path users import it from."""
    component.registry[f"simlm_haystack.{cls.__name__}"] = cls
    return cls


def canonical_type(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the short ``simlm_haystack.<Name>`` type replaced by the class's full path."""
    if data.get("type") == f"simlm_haystack.{cls.__name__}":
        return {**data, "type": generate_qualified_class_name(cls)}
    return data


def serialize_model_kwargs(model_kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-able copy (``torch.dtype`` as its name); the component's own dict is left as it is."""
    if model_kwargs is None:
        return None
    serialized = copy.deepcopy(model_kwargs)
    serialize_hf_model_kwargs(serialized)
    return serialized


def deserialize_model_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``init_parameters.model_kwargs`` read back into a new dict (``data`` is not changed)."""
    init_parameters = data.get("init_parameters", {})
    if init_parameters.get("model_kwargs") is None:
        return data
    model_kwargs = copy.deepcopy(init_parameters["model_kwargs"])
    deserialize_hf_model_kwargs(model_kwargs)
    return {**data, "init_parameters": {**init_parameters, "model_kwargs": model_kwargs}}


def load_encoder_with_settings(settings: Any) -> DualEncoder:
    """The encoder an embedder's settings describe (``model, recipe, precision, backend, device, token,
    local_files_only, revision, trust_remote_code, model_kwargs, tokenizer_kwargs``): what both
    Haystack embedders and the LangChain embeddings load on ``warm_up``, so equal settings share it."""
    return load_encoder(
        settings.model,
        settings.recipe,
        precision=settings.precision,
        backend=settings.backend,
        device=settings.device.to_torch(),
        token=settings.token.resolve_value() if settings.token else None,
        local_files_only=settings.local_files_only,
        revision=settings.revision,
        trust_remote_code=settings.trust_remote_code,
        model_kwargs=settings.model_kwargs,
        tokenizer_kwargs=settings.tokenizer_kwargs,
    )


class DualEncoderComponentBase:
    """The settings both embedders keep, their serialisation, and the shared model loaded on ``warm_up``.

    Each embedder's ``__init__`` lists its parameters and calls :meth:`_configure`.
    """

    #: Which side of the recipe the component encodes.
    side: Side

    def _configure(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None,
        device: ComponentDevice | None,
        token: Secret | None,
        precision: Precision | SentenceTransformersPrecision,
        backend: Backend,
        local_files_only: bool,
        trust_remote_code: bool,
        revision: str | None,
        model_kwargs: dict[str, Any] | None,
        tokenizer_kwargs: dict[str, Any] | None,
        prefix: str | None,
        suffix: str,
        normalize_embeddings: bool | None,
        truncate_dim: int | None,
        ignored: dict[str, Any],
    ) -> None:
        self.model = str(model)
        # Resolved now, so that a wrong or missing recipe is an error at construction, not mid-pipeline.
        self.recipe = resolve_recipe(self.model, recipe)
        # Serialised only when given: a recipe found from the model is found again when loading.
        self._recipe_given = recipe is not None
        self.precision: Precision = check_sentence_transformers_settings(
            type(self).__name__,
            self.recipe,
            self.side,
            precision=precision,
            backend=backend,
            prefix=prefix,
            suffix=suffix,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            tokenizer_kwargs=tokenizer_kwargs,
            ignored=ignored,
        )
        check_backend(backend, self.precision)
        self.device = ComponentDevice.resolve_device(device)
        self.token = token
        self.backend: Backend = backend
        self.local_files_only = local_files_only
        self.trust_remote_code = trust_remote_code
        self.revision = revision
        self.model_kwargs = model_kwargs
        self.tokenizer_kwargs = tokenizer_kwargs
        self.encoder: DualEncoder | None = None

    def _init_parameters(self) -> dict[str, Any]:
        """The init parameters to serialise, as Python objects (``default_to_dict`` converts them)."""
        return {
            "model": self.model,
            "recipe": serialize_recipe(self.recipe) if self._recipe_given else None,
            "device": self.device,
            "token": self.token,
            "precision": self.precision,
            "backend": self.backend,
            "local_files_only": self.local_files_only,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
            "model_kwargs": serialize_model_kwargs(self.model_kwargs),
            "tokenizer_kwargs": self.tokenizer_kwargs,
        }

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component; secrets are stored as environment-variable references only."""
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialise a component written by :meth:`to_dict` (or by a sentence-transformers embedder
        whose ``type`` was changed to this class); ``data`` is not changed."""
        return default_from_dict(cls, deserialize_model_kwargs(canonical_type(cls, data)))

    @classmethod
    def from_encoder(cls, encoder: DualEncoder, **init_parameters: Any) -> Any:
        """A component around an already loaded :class:`DualEncoder` (e.g. the model a trainer is
        training): no second copy of the weights is loaded, and ``warm_up`` keeps this encoder.

        ``init_parameters`` are the component's other settings (``batch_size``, ``progress_bar``, ...);
        ``model``, ``recipe``, ``precision`` and ``backend`` come from the encoder. Serialising the component
        records ``encoder.loaded.source``, the checkpoint the encoder was loaded from.
        """
        component = cls(
            model=encoder.loaded.source,
            recipe=encoder.recipe,
            precision=encoder.precision,
            backend=encoder.backend,
            **init_parameters,
        )
        component.encoder = encoder
        return component

    def warm_up(self) -> None:
        """Load the model (once; components with the same model and settings share it), then check the
        collections this embedder was set to write to or search (see :mod:`simlm_haystack.stores.identity`)."""
        if self.encoder is not None:
            run_guards(self)
            return
        self.encoder = load_encoder_with_settings(self)
        run_guards(self)

    def _warm_encoder(self) -> DualEncoder:
        if self.encoder is None:
            self.warm_up()
        assert self.encoder is not None
        return self.encoder

    @property
    def embedding_dim(self) -> int:
        """The vector size (loads the model)."""
        return self._warm_encoder().embedding_dim
