"""A LlamaIndex ``BaseEmbedding`` that reads a dual encoder as its recipe says, through the same encoder as Haystack."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from haystack.utils import ComponentDevice, Secret
from haystack.utils.auth import SecretType
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.schema import BaseNode, MetadataMode

from simlm_haystack.backends import Backend
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import DualEncoder, Precision
from simlm_haystack.errors import SettingsError
from simlm_haystack.llama_index.huggingface_settings import (
    HUGGINGFACE_DEFAULTS,
    HUGGINGFACE_DOC,
    reconcile_llama_index_settings,
)
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import (
    HF_TOKEN,
    SETTINGS_DOC,
    EncoderSettings,
    HoldsEncoderSettings,
    hub_options,
    settings_arguments,
)
from simlm_haystack.st_checkpoint.arguments import model_argument, sentence_transformer_settings
from simlm_haystack.st_checkpoint.files import CheckpointFiles
from simlm_haystack.text_checks import check_texts_and_titles

logger = logging.getLogger(__name__)

#: The settings' documentation, less ``batch_size`` (here LlamaIndex's ``embed_batch_size``, its last entry).
_SETTINGS_DOC = SETTINGS_DOC[: SETTINGS_DOC.index(":param batch_size:")].rstrip()


def node_title_and_text(node: BaseNode, title_key: str | None) -> tuple[str | None, str]:
    """A node's title (``metadata[title_key]`` as a string; ``None`` where there is none) and its text alone,
    without the metadata string LlamaIndex puts before it for embedding."""
    title = node.metadata.get(title_key) if title_key else None
    return (None if title is None else str(title)), node.get_content(metadata_mode=MetadataMode.NONE)


@docstring_with(encoder_settings=_SETTINGS_DOC, huggingface=HUGGINGFACE_DOC)
class DualEncoderEmbedding(HoldsEncoderSettings, BaseEmbedding):
    """SimLM, TAS-B, E5, ... in LlamaIndex, encoded exactly as each model was trained.

    The same :class:`~simlm_haystack.encoding.DualEncoder` the Haystack embedders and the LangChain embeddings use,
    sharing their loaded model: the same text gets the same vector in all three. Queries
    (``get_query_embedding``) and documents (``get_text_embedding``, ``get_text_embedding_batch``) are read as the
    recipe says for each side (lengths, prefixes); the ``aget_*`` methods run in a worker thread.

    Nodes are read with their titles: as a transformation (in an ``IngestionPipeline``, or among a
    ``VectorStoreIndex``'s ``transformations``) it embeds each node's text alone with ``metadata[title_key]`` as
    its title, SimLM's ``(title, text)`` pair (``"-"`` for a missing title), ``title + " " + text`` for other
    recipes, instead of the metadata string LlamaIndex puts before a text it embeds. A ``VectorStoreIndex`` embeds
    only nodes that have no vector yet, and through the text methods, which see no node; so give the nodes their
    vectors here first::

        index = VectorStoreIndex.from_documents(docs, embed_model=embedding, transformations=[splitter, embedding])

    ```python
    from simlm_haystack.llama_index import DualEncoderEmbedding

    embedding = DualEncoderEmbedding(model="intfloat/simlm-base-msmarco-finetuned")  # recipe: simlm
    query = embedding.get_query_embedding("what is the capital of France?")
    ```

    It also takes ``llama_index.embeddings.huggingface.HuggingFaceEmbedding``'s keyword arguments, so that swapping
    that class for this one changes only the class name (see
    :mod:`simlm_haystack.llama_index.huggingface_settings`): the same vectors for a sentence-transformers
    checkpoint, the recipe's for a model card this package knows.

    {encoder_settings}
    :param embed_batch_size: Texts per forward pass (the settings' ``batch_size``; LlamaIndex's name).
    :param progress_bar: Show a progress bar while embedding many texts or nodes.
    :param title_key: The metadata key that holds a node's title; ``None`` reads no title.
    :param callback_manager: LlamaIndex's callback manager.
    :param num_workers: LlamaIndex's workers for asynchronous batches.
    {huggingface}
    """

    title_key: str | None = Field(default="title", description="The metadata key of a node's title.")
    progress_bar: bool = Field(default=False, description="Show a progress bar while embedding.")
    # Typed Any for pydantic (which would rebuild a dataclass); they are an EncoderSettings and a DualEncoder | None.
    settings: Any = Field(exclude=True, repr=False, description="The encoder settings (EncoderSettings).")
    encoder: Any = Field(default=None, exclude=True, repr=False, description="The loaded DualEncoder, once loaded.")
    _warned_metadata: bool = PrivateAttr(default=False)

    def __init__(
        self,
        *,
        model: str | None = None,
        model_name: str | None = None,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: str | ComponentDevice | None = None,
        token: str | Secret | None = HF_TOKEN,
        embed_batch_size: int = 32,
        progress_bar: bool = False,
        precision: Precision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        title_key: str | None = "title",
        callback_manager: CallbackManager | None = None,
        num_workers: int | None = None,
        max_length: int | None = None,
        query_instruction: str | None = None,
        text_instruction: str | None = None,
        normalize: bool | None = None,
        cache_folder: str | None = None,
        parallel_process: bool = False,
        target_devices: list[str] | None = None,
        show_progress_bar: bool = False,
        **sentence_transformer_kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        model = model_argument(owner, model, model_name, "HuggingFaceEmbedding")
        arguments = {**locals(), "batch_size": embed_batch_size}
        ours = {**settings_arguments(arguments), "progress_bar": progress_bar}
        loading = {**ours, **sentence_transformer_settings(sentence_transformer_kwargs)}  # use_auth_token=, ...
        hub = hub_options(loading)
        # Resolved now, so that a wrong setting is an error at construction, not mid-query; equal settings load
        # the model once with the Haystack embedders and the LangChain embeddings.
        resolved = resolve_recipe(str(loading["model"]), recipe, **hub)
        given = {name: arguments[name] for name in HUGGINGFACE_DEFAULTS}
        reconciled, theirs = reconcile_llama_index_settings(
            owner, resolved, CheckpointFiles(str(loading["model"]), **hub), given, sentence_transformer_kwargs
        )
        twice = sorted(name for name, value in theirs.items() if ours[name] != _DEFAULTS[name] and ours[name] != value)
        if twice:
            raise SettingsError(f"{owner}: {', '.join(twice)} given twice, differently (under two names); give it once")
        settings = {**ours, **theirs}
        bar = bool(settings.pop("progress_bar"))
        given_recipe = recipe is not None or reconciled is not resolved
        super().__init__(
            model_name=str(settings["model"]),
            embed_batch_size=settings["batch_size"],
            callback_manager=callback_manager,
            num_workers=num_workers,
            title_key=title_key,
            progress_bar=bar,
            settings=EncoderSettings.create(**{**settings, "recipe": reconciled}, recipe_given=given_recipe),
        )

    @classmethod
    def class_name(cls) -> str:
        return "DualEncoderEmbedding"

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """LlamaIndex's serialised form (what ``to_json`` writes, and what an ``IngestionPipeline``'s cache hashes on
        every run): the encoder settings as the Haystack components write them and this class's own fields.
        :meth:`from_dict` makes an embedding of the same settings. A token given as a value is not written (it is
        ``None`` there): the Haystack components refuse to serialise it, and a cache key should not hold it."""
        token = self.settings.token
        written = self.settings
        if token is not None and token.type is not SecretType.ENV_VAR:
            written = dataclasses.replace(written, token=None)
        settings = written.to_dict()
        batch_size = settings.pop("batch_size")
        own = {"title_key": self.title_key, "progress_bar": self.progress_bar, "num_workers": self.num_workers}
        return {**settings, "embed_batch_size": batch_size, **own, "class_name": self.class_name()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> DualEncoderEmbedding:
        """The embedding :meth:`to_dict` describes (``kwargs`` override its values; ``data`` is not changed)."""
        values = {**data, **kwargs}
        values.pop("class_name", None)
        return cls(**EncoderSettings.init_values(values))

    @classmethod
    def from_encoder(
        cls, encoder: DualEncoder, *, embed_batch_size: int = 32, title_key: str | None = "title"
    ) -> DualEncoderEmbedding:
        """An embedding around an already loaded :class:`DualEncoder` (e.g. the model a trainer is training)."""
        settings = EncoderSettings.of_encoder(encoder, batch_size=embed_batch_size)
        arguments = settings.arguments()
        batch_size = arguments.pop("batch_size")
        embedding = cls(**arguments, embed_batch_size=batch_size, title_key=title_key)
        embedding.encoder = encoder
        return embedding

    def warm_up(self) -> DualEncoder:
        """Load the model (once per process and settings, shared with the Haystack embedders)."""
        return self.load_encoder()

    @property
    def embedding_dim(self) -> int:
        """The vector size, read from the model's config (no weights are loaded for it)."""
        if self.encoder is not None:
            return self.encoder.embedding_dim
        return model_embedding_dim(
            self.model,
            recipe=self.recipe,
            token=self.token.resolve_value() if self.token else None,
            local_files_only=self.local_files_only,
        )

    # --- Queries and texts (LlamaIndex's embedding methods) ---------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        if not isinstance(query, str):
            raise TypeError(f"{type(self).__name__} embeds a query string, got {type(query).__name__}")
        return self.load_encoder().encode("query", [query], batch_size=1)[0].tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        """Documents without titles (a text is all LlamaIndex passes here); see :meth:`embed_nodes` for titles."""
        texts, _ = check_texts_and_titles(texts, None)
        self._warn_metadata_string(texts)
        return self.embed_documents(texts, None)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def _warn_metadata_string(self, texts: Sequence[str]) -> None:
        """Say once when texts come with LlamaIndex's metadata string before them (``"title: ..."``): the title is
        then read as part of the text, not as the recipe says."""
        marker = f"{self.title_key}: "
        if self.title_key and not self._warned_metadata and any(text.startswith(marker) for text in texts):
            self._warned_metadata = True
            logger.warning(
                "%s got texts that begin with LlamaIndex's metadata string (%r...): their titles are read as part "
                "of the text, not as recipe %r says. Embed the nodes with this embedding as a transformation "
                "(IngestionPipeline, or VectorStoreIndex's transformations=[..., embedding]) to read titles.",
                type(self).__name__,
                marker,
                self.recipe.name,
            )

    # --- Documents with titles, and nodes ---------------------------------------------------------------------------

    def embed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[Embedding]:
        """Embed passages, each with its title if given (``None``: no title), as the recipe says.

        :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or ``None``.
        :raises ValueError: ``titles`` and ``texts`` differ in length.
        """
        texts, titles = check_texts_and_titles(texts, titles)
        if not texts:
            return []
        vectors = self.load_encoder().encode(
            "document", texts, titles, batch_size=self.batch_size, progress_bar=self.progress_bar
        )
        return vectors.tolist()

    def embed_nodes(self, nodes: Sequence[BaseNode]) -> list[Embedding]:
        """Each node's vector: its text alone, with ``metadata[title_key]`` as its title (see the class)."""
        read = [node_title_and_text(node, self.title_key) for node in nodes]
        texts, titles = [text for _, text in read], [title for title, _ in read]
        with self.callback_manager.event(
            CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: self.to_payload()}
        ) as event:
            vectors = self.embed_documents(texts, titles)
            event.on_end(payload={EventPayload.CHUNKS: texts, EventPayload.EMBEDDINGS: vectors})
        return vectors

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """As a transformation: set every node's ``embedding`` (:meth:`embed_nodes`)."""
        for node, vector in zip(nodes, self.embed_nodes(nodes), strict=True):
            node.embedding = vector
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Like :meth:`__call__`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.__call__, nodes)


#: The defaults of our parameters, against which a setting given under two names is told.
_DEFAULTS: dict[str, Any] = {
    "token": HF_TOKEN,
    "tokenizer_kwargs": None,
    "batch_size": 32,
    "progress_bar": False,
}
