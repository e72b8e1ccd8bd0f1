"""What the document and the text embedder share: the encoder settings they hold, serialisation, YAML names.

The settings themselves (validation, serialisation, loading, documentation) live in
:mod:`simlm_haystack.settings`; sentence-transformers' parameters, which both embedders also take, are
reconciled with the recipe in :mod:`simlm_haystack.components.sentence_transformers_settings`.
"""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.serialization import generate_qualified_class_name

from simlm_haystack.components.sentence_transformers_settings import (
    SENTENCE_TRANSFORMERS_PARAMETERS,
    reconcile_sentence_transformers_settings,
)
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Side
from simlm_haystack.settings import (
    SETTINGS_FIELDS,
    EncoderSettings,
    HoldsEncoderSettings,
    hub_options,
    settings_arguments,
)


def register_short_type(cls: type) -> type:
    """Let pipeline YAML name the class ``simlm_haystack.<Name>``, the path users import it from."""
    component.registry[f"simlm_haystack.{cls.__name__}"] = cls
    return cls


def canonical_type(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the short ``simlm_haystack.<Name>`` type replaced by the class's full path."""
    if data.get("type") == f"simlm_haystack.{cls.__name__}":
        return {**data, "type": generate_qualified_class_name(cls)}
    return data


#: How a document embedder reads a Document: its parameters, documented once (``docstring_with``).
DOCUMENT_READING_DOC = """\
:param title_field: The meta field that holds a document's title; ``None`` reads no title.
:param meta_fields_to_embed: Meta fields put before the content.
:param embedding_separator: The separator between those fields and the content."""


class ReadsDocuments:
    """How a document embedder (dense or BM25) reads a ``Document``: its title from ``meta[title_field]``, the
    values of ``meta_fields_to_embed`` joined before the content with ``embedding_separator`` (as Haystack's
    own embedders do). Subclasses set the three attributes."""

    title_field: str | None
    meta_fields_to_embed: list[str]
    embedding_separator: str

    def _title_and_text(self, document: Document) -> tuple[str | None, str]:
        title = document.meta.get(self.title_field) if self.title_field else None
        meta_values = [
            str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None
        ]
        text = self.embedding_separator.join([*meta_values, document.content or ""])
        return (None if title is None else str(title)), text

    def _titles_and_texts(self, documents: Any, *, text_embedder: str) -> tuple[list[str | None], list[str]]:
        """Each document's title and text; a ``TypeError`` naming the first item that is not a ``Document``
        (``text_embedder``: the component to use for a string instead)."""
        if not isinstance(documents, list):
            raise TypeError(
                f"{type(self).__name__} expects a list of Documents, got {type(documents).__name__}. "
                f"To embed a string, use {text_embedder}."
            )
        for position, document in enumerate(documents):
            if not isinstance(document, Document):
                raise TypeError(
                    f"{type(self).__name__} expects a list of Documents; item {position} is {type(document).__name__}"
                )
        read = [self._title_and_text(document) for document in documents]
        return [title for title, _ in read], [text for _, text in read]


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
        recipe = resolve_recipe(str(settings["model"]), settings["recipe"], **hub_options(settings))
        settings["precision"], reconciled = reconcile_sentence_transformers_settings(
            type(self).__name__,
            recipe,
            self.side,
            precision=settings["precision"],
            backend=settings["backend"],
            tokenizer_kwargs=settings["tokenizer_kwargs"],
            **theirs,
        )
        # A recipe changed by their settings (normalize_embeddings) is serialised, so that it is found again.
        given = settings["recipe"] is not None or reconciled is not recipe
        self.settings = EncoderSettings.create(**{**settings, "recipe": reconciled}, recipe_given=given)
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
