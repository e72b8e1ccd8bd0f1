"""What the document and the text embedder share: the encoder settings they hold, serialisation, YAML names.

The settings themselves (validation, serialisation, loading, documentation) live in
:mod:`simlm_haystack.settings`; sentence-transformers' parameters, which both embedders also take, are
reconciled with the recipe in :mod:`simlm_haystack.components.sentence_transformers_settings`.
"""

from __future__ import annotations

from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.core.serialization import generate_qualified_class_name

from simlm_haystack.components.sentence_transformers_settings import (
    SENTENCE_TRANSFORMERS_PARAMETERS,
    reconcile_sentence_transformers_settings,
)
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.recipes import Side, resolve_recipe
from simlm_haystack.settings import SETTINGS_FIELDS, EncoderSettings, HoldsEncoderSettings, settings_arguments


def register_short_type(cls: type) -> type:
    """Let pipeline YAML name the class ``simlm_haystack.<Name>``, the path users import it from."""
    component.registry[f"simlm_haystack.{cls.__name__}"] = cls
    return cls


def canonical_type(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the short ``simlm_haystack.<Name>`` type replaced by the class's full path."""
    if data.get("type") == f"simlm_haystack.{cls.__name__}":
        return {**data, "type": generate_qualified_class_name(cls)}
    return data


class DualEncoderComponentBase(HoldsEncoderSettings):
    """The settings both embedders hold (as ``self.settings`` and as attributes: ``embedder.model``, ...),
    their serialisation, and the shared model loaded on ``warm_up``.

    Each embedder's ``__init__`` lists its parameters and calls :meth:`_configure`.
    """

    #: Which side of the recipe the component encodes.
    side: Side

    def _configure(self, arguments: dict[str, Any]) -> None:
        """Build the settings once from an embedder's ``__init__`` arguments (its ``locals()``: the signature
        stays the one list of parameters, as Haystack serialises them): the
        :data:`~simlm_haystack.settings.SETTINGS_FIELDS`, and sentence-transformers' parameters
        (:data:`~simlm_haystack.components.sentence_transformers_settings.SENTENCE_TRANSFORMERS_PARAMETERS`)
        reconciled with the recipe. The embedder keeps its own other arguments itself."""
        settings = settings_arguments(arguments)
        theirs = {name: arguments[name] for name in SENTENCE_TRANSFORMERS_PARAMETERS}
        # Resolved now, so that a wrong or missing recipe is an error at construction, not mid-pipeline.
        recipe = resolve_recipe(str(settings["model"]), settings["recipe"])
        settings["precision"] = reconcile_sentence_transformers_settings(
            type(self).__name__,
            recipe,
            self.side,
            precision=settings["precision"],
            backend=settings["backend"],
            tokenizer_kwargs=settings["tokenizer_kwargs"],
            **theirs,
        )
        self.settings = EncoderSettings.create(
            **{**settings, "recipe": recipe}, recipe_given=settings["recipe"] is not None
        )
        self.encoder: DualEncoder | None = None

    def _init_parameters(self) -> dict[str, Any]:
        """The init parameters to serialise beyond the settings (each embedder adds its own)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component; secrets are stored as environment-variable references only."""
        return default_to_dict(self, **self.settings.to_dict(), **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialise a component written by :meth:`to_dict` (or by a sentence-transformers embedder
        whose ``type`` was changed to this class); ``data`` is not changed."""
        return default_from_dict(cls, canonical_type(cls, data))

    @classmethod
    def from_encoder(cls, encoder: DualEncoder, **init_parameters: Any) -> Any:
        """A component around an already loaded :class:`DualEncoder` (e.g. the model a trainer is
        training): no second copy of the weights is loaded, and ``warm_up`` keeps this encoder.

        ``init_parameters`` are the component's other settings (``batch_size``, ``progress_bar``, ...);
        ``model``, ``recipe``, ``precision``, ``backend`` and ``device`` come from the encoder. Serialising the
        component records ``encoder.loaded.source``, the checkpoint the encoder was loaded from.
        """
        given = {name: init_parameters.pop(name) for name in SETTINGS_FIELDS if name in init_parameters}
        component = cls(**EncoderSettings.of_encoder(encoder, **given).arguments(), **init_parameters)
        component.encoder = encoder
        return component

    def warm_up(self) -> None:
        """Load the model (once; components with the same settings share it)."""
        self.load_encoder()
